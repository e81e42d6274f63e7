"""The model workers as a Ray Serve application: one deployment, one replica per worker (GPU machine).

Ray Serve does the distributed part: its HTTP proxy takes every request (JSON
:class:`~tools.model_workers.wire.DescribeRequest`), routes it to the replica with the fewest requests in
flight, queues at most ``max_queued_requests`` beyond what the replicas hold (a 503 with ``Retry-After`` past
that: :class:`ray.serve.config.BackpressureConfig`), and ``@serve.batch`` gathers up to ``max_batch_size``
requests that arrive within ``batch_wait_timeout_s`` on one replica -- from any conversation and any API
replica -- into one call of :meth:`DescriberWorker.describe_batch` (one batched generation).

Imported only by what starts the workers (``artemis workers``, tests, benchmarks): nothing else needs Ray.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import ray
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve.config import BackpressureConfig
from starlette.requests import Request
from starlette.responses import JSONResponse

from tools.model_workers.wire import DescribeRequest, DescribeResponse, WorkerErrorOut
from tools.model_workers.worker import DescriberWorker, WorkerConfig

logger = logging.getLogger(__name__)

APP_NAME = "artemis-workers"
ROUTE_PREFIX = "/describe"


class ServeOptions(BaseModel):
    """How the workers run: ``replicas`` (one per GPU machine), each holding ``num_gpus`` GPUs (0: none) and
    ``num_cpus`` CPUs; batching (``max_batch_size`` requests gathered for at most ``batch_wait_timeout_s``);
    the bounded queue (``max_ongoing_requests`` per replica, default twice the batch so the next batch gathers
    while one runs; ``max_queued_requests`` waiting for a replica, then 503 with ``Retry-After:
    retry_after_s``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: int = Field(default=2, ge=1)
    num_gpus: float = Field(default=0.0, ge=0)
    num_cpus: float = Field(default=1.0, ge=0)
    max_batch_size: int = Field(default=8, ge=1)
    batch_wait_timeout_s: float = Field(default=0.05, ge=0)
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    max_queued_requests: int = Field(default=64, ge=1)
    retry_after_s: float = Field(default=2.0, ge=0)
    app_name: str = APP_NAME
    route_prefix: str = ROUTE_PREFIX

    @property
    def ongoing(self) -> int:
        return self.max_ongoing_requests or 2 * self.max_batch_size


@serve.deployment(name="describer")
class DescriberDeployment:
    """One model worker: the describer loaded once (:class:`DescriberWorker`), requests batched."""

    def __init__(self, config: WorkerConfig, max_batch_size: int, batch_wait_timeout_s: float) -> None:
        replica = serve.get_replica_context().replica_id.unique_id
        self.worker = DescriberWorker(config, name=f"{socket.gethostname()}:{os.getpid()}/{replica}")
        self.describe_batch.set_max_batch_size(max_batch_size)
        self.describe_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def describe_batch(
        self, items: list[tuple[DescribeRequest, float | None]]
    ) -> list[DescribeResponse | WorkerErrorOut]:
        """The requests Serve gathered (each with its deadline on this replica's clock), described together on
        a thread (the replica keeps accepting requests, which form the next batch)."""
        start = time.perf_counter()
        requests = [r for r, _ in items]
        deadlines = [d for _, d in items]
        results = await asyncio.to_thread(self.worker.describe_batch, requests, deadlines)
        logger.info(
            "worker %s: batch of %d requests in %.3f s",
            self.worker.name,
            len(requests),
            time.perf_counter() - start,
        )
        return results

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            body = DescribeRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            error = WorkerErrorOut(status=422, code="invalid_input", detail=str(exc), worker=self.worker.name)
            return JSONResponse(error.model_dump(mode="json"), status_code=422)
        # the caller's budget becomes a deadline on this machine's clock when the request arrives
        deadline = time.monotonic() + body.budget_s if body.budget_s is not None else None
        result = await self.describe_batch((body, deadline))
        status = result.status if isinstance(result, WorkerErrorOut) else 200
        return JSONResponse(result.model_dump(mode="json"), status_code=status)


def describer_app(config: WorkerConfig, options: ServeOptions = ServeOptions()) -> serve.Application:
    """The application of ``options.replicas`` model workers describing with ``config``."""
    actor: dict[str, float] = {"num_cpus": options.num_cpus}
    if options.num_gpus > 0:
        actor["num_gpus"] = options.num_gpus
    return DescriberDeployment.options(
        num_replicas=options.replicas,
        ray_actor_options=actor,
        max_ongoing_requests=options.ongoing,
        max_queued_requests=options.max_queued_requests,
        backpressure_config=BackpressureConfig(status_code=503, retry_after_s=options.retry_after_s),
    ).bind(config, options.max_batch_size, options.batch_wait_timeout_s)


def deploy(
    config: WorkerConfig,
    options: ServeOptions = ServeOptions(),
    *,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    num_cpus: int | None = None,
    log_to_driver: bool = True,
) -> str:
    """Deploy the workers on the Ray cluster at ``address`` (``"auto"``: the one ``ray start`` runs on this
    machine; ``None``: a local cluster of this process, ``num_cpus`` CPUs) and return the URL the service's
    ``ARTEMIS_MODEL_WORKERS`` names. Waits until every replica has loaded its describer. ``log_to_driver``:
    show the workers' logs here."""
    if not ray.is_initialized():
        kwargs: dict[str, object] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": log_to_driver,
        }
        if address is None:
            kwargs["num_cpus"] = num_cpus
        else:
            kwargs["address"] = address
        ray.init(**kwargs)
    serve.start(http_options={"host": host, "port": port})
    serve.run(describer_app(config, options), name=options.app_name, route_prefix=options.route_prefix)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}{options.route_prefix}"
    logger.info("%d model workers serve %s", options.replicas, url)
    return url


def shutdown() -> None:
    """Remove the Serve applications and disconnect from Ray (stops a local cluster this process started)."""
    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
