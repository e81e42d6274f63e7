"""``artemis serve``: run the HTTP service (web page at /, API docs at /docs) with uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.describer import DESCRIBER_HELP, MODEL_HELP


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Overrides ARTEMIS_DATA_DIR."),
    model_dir: Path | None = typer.Option(None, "--model", help=f"Overrides ARTEMIS_MODEL_DIR. {MODEL_HELP}"),
    describer: str | None = typer.Option(
        None, "--describer", help=f"Overrides ARTEMIS_DESCRIBER. {DESCRIBER_HELP}"
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the Artemis API and web page. Settings come from ARTEMIS_* environment variables."""
    import logging

    import uvicorn

    from agent.api import Settings, create_app

    given = {"data_dir": data_dir, "model_dir": model_dir, "describer": describer}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
        force=True,
    )
    from agent.api.request_id import install_log_filter

    install_log_filter()
    typer.echo(f"Artemis on http://{host}:{port}/ (data in {settings.data_dir})")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, log_config=None)
