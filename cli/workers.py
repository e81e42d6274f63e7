"""``artemis workers``: deploy the model workers (Ray Serve, one replica per GPU machine) and keep them up.

    ray start --head --port 6379                      # the head node (runs Serve's HTTP proxy)
    ray start --address HEAD:6379 --num-gpus 1         # each GPU machine
    artemis workers --address auto --replicas 2 --gpus-per-worker 1 --device cuda \\
        --data-dir /srv/artemis --host 0.0.0.0 --port 8000

The API replicas then set ``ARTEMIS_MODEL_WORKERS=http://HEAD:8000/describe`` (README "Deployment").
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import typer

from cli.describer import DESCRIBER_HELP, MODEL_HELP

logger = logging.getLogger(__name__)


def workers(
    data_dir: Path = typer.Option(
        ...,
        "--data-dir",
        help="The shared data store's root as this machine mounts it (the API replicas' ARTEMIS_DATA_DIR); "
        "every GPU machine mounts it at this same path. Workers refuse videos outside it.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster: 'auto' (the one `ray start` runs on this machine), HOST:6379, or none for a local "
        "cluster of this process (one machine).",
    ),
    replicas: int = typer.Option(2, "--replicas", min=1, help="Model workers (one per GPU machine)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0, help="GPUs each worker holds."),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0, help="CPUs each worker holds."),
    model_dir: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    describer: str = typer.Option("auto", "--describer", help=DESCRIBER_HELP),
    device: str | None = typer.Option(None, "--device", help="torch device of the model (e.g. cuda)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    max_batch_size: int = typer.Option(8, "--max-batch-size", min=1, help="Requests batched together."),
    batch_wait_s: float = typer.Option(0.05, "--batch-wait-s", min=0, help="How long a batch gathers."),
    max_queued: int = typer.Option(
        64, "--max-queued", min=1, help="Requests waiting for a worker; beyond: 503 with Retry-After."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Serve's HTTP proxy interface (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", help="Serve's HTTP proxy port."),
) -> None:
    """Deploy the model workers on a Ray cluster and keep them serving until interrupted."""
    from pydantic import ValidationError

    from cli.describer import describer_choice
    from tools.model_workers.serve import ServeOptions, deploy, shutdown
    from tools.model_workers.worker import WorkerConfig

    describer_choice(model_dir, describer)  # a bad combination of flags is a usage error, before Ray starts
    try:
        config = WorkerConfig(
            data_root=data_dir, model_dir=model_dir, describer=describer, device=device, dtype=dtype
        )
        options = ServeOptions(
            replicas=replicas,
            num_gpus=gpus_per_worker,
            num_cpus=cpus_per_worker,
            max_batch_size=max_batch_size,
            batch_wait_timeout_s=batch_wait_s,
            max_queued_requests=max_queued,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if not data_dir.is_dir():
        raise typer.BadParameter(f"{data_dir} is not a directory", param_hint="'--data-dir'")
    url = deploy(config, options, address=address, host=host, port=port)
    typer.echo(f"{replicas} model workers serve {url}: set ARTEMIS_MODEL_WORKERS={url} on the API replicas")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("stopping the model workers")
    finally:
        shutdown()
