"""The model workers the tests run on: one local Ray cluster (2 CPUs) with Serve, shared by the worker tests
(``tests/tools/test_model_workers.py``) and the service tests on remote workers
(``tests/agent/api/test_model_workers_service.py``). The first to run starts it; each removes its Serve
applications when done; the cluster itself is shut down at the end of the session (``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.agent.api.live import free_port


@contextmanager
def local_workers(data_root: Path, *, batch_wait_s: float) -> Iterator[tuple[str, str]]:
    """``(url, tight_url)``: 2 replicas of the embedded world model on ``data_root`` (batches of up to 8 gathered
    for ``batch_wait_s``) and 1 "tight" replica that holds 1 request and queues 1 more (503 with ``Retry-After:
    3`` past that). Serve is shut down on exit; Ray stays up for the next user (see the module's docstring)."""
    from ray import serve

    from tools.model_workers import WorkerConfig
    from tools.model_workers.serve import ServeOptions, deploy, describer_app

    config = WorkerConfig(data_root=data_root, describer="world")
    port = free_port()
    try:
        url = deploy(
            config,
            ServeOptions(replicas=2, num_cpus=0.5, max_batch_size=8, batch_wait_timeout_s=batch_wait_s),
            port=port,
            num_cpus=2,
        )
        tight = ServeOptions(
            replicas=1,
            num_cpus=0.5,
            max_batch_size=1,
            max_ongoing_requests=1,
            max_queued_requests=1,
            retry_after_s=3,
            app_name="tight",
            route_prefix="/tight",
        )
        serve.run(describer_app(config, tight), name=tight.app_name, route_prefix=tight.route_prefix)
        yield url, f"http://127.0.0.1:{port}{tight.route_prefix}"
    finally:
        serve.shutdown()
