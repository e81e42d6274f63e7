"""``artemis serve`` builds the app from ARTEMIS_* settings plus its options and hands it to uvicorn."""

from __future__ import annotations

import logging

from fastapi import FastAPI


def test_serve_passes_settings_and_address(monkeypatch, tmp_path):
    import uvicorn

    from cli.serve import serve

    seen = {}

    def fake_run(app, **kwargs):
        seen.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("ARTEMIS_API_KEY", "from-env")
    monkeypatch.setenv("ARTEMIS_QUEUE_SIZE", "3")
    # serve() configures the root logger (basicConfig(force=True) closes and replaces its handlers): let it do
    # that on an empty handler list, then put the session's handlers and level back for the tests that follow.
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    root.handlers = []
    try:
        serve(
            host="0.0.0.0",
            port=8123,
            data_dir=tmp_path / "d",
            model_dir=None,
            describer=None,
            log_level="warning",
        )
        assert root.level == logging.WARNING and len(root.handlers) == 1
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)
    app = seen["app"]
    assert isinstance(app, FastAPI) and (seen["host"], seen["port"]) == ("0.0.0.0", 8123)
    settings = app.state.settings
    assert settings.data_dir == tmp_path / "d" and settings.queue_size == 3
    assert settings.api_key.get_secret_value() == "from-env"
    assert app.state.runtime is None, "models load in the lifespan, not when the app is built"
