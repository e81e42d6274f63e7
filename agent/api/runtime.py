"""What the service holds while it runs: settings, store, model worker, the tools' runtime, the agent graph.

Built once in the app's lifespan by :func:`build_service` (models are never loaded at import). The
:class:`~tools.runtime.Runtime` inside owns the opened videos (the only place the service opens one), the
feature cache, the grounding tracks, the describer and the summary LLM.
"""

from __future__ import annotations

import importlib
import logging
import math
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agent.api.errors import BusyError
from agent.api.quota import DiskQuota
from agent.api.settings import Settings
from agent.api.storage import BaseStore, Store
from agent.api.worker import ModelWorker
from agent.deps import AgentDeps
from agent.graph import build_agent, postgres_checkpointer, sqlite_checkpointer
from agent.planner import LLMPlanner, RulePlanner
from tools.describers import Describer, choose_describer, describer_name
from tools.runtime import Runtime, VideoStore
from tools.video import VideoLike

logger = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """The service's state: its settings, the metadata store, the model worker, the tools'
    :class:`~tools.runtime.Runtime`, the agent's deps (carrying that runtime) and graph."""

    settings: Settings
    store: BaseStore
    worker: ModelWorker
    runtime: Runtime
    deps: AgentDeps
    graph: CompiledStateGraph
    quota: DiskQuota
    model_name: str = "heuristic"

    @property
    def describer(self) -> Describer:
        return self.runtime.describer

    def open_video(self, video_id: str) -> VideoLike:
        """The opened video of ``video_id`` (the runtime's: frames, tools and the agent share it)."""
        return self.runtime.open_video(self.store.video_path(video_id))

    def forget_video(self, video_id: str, content_hash: str) -> None:
        """Drop every in-memory handle, grounding track and cached feature of a deleted video."""
        self.runtime.forget_video(content_hash, self.store.video_path(video_id))

    def close(self) -> None:
        self.worker.shutdown()
        self.runtime.close()
        close_describer = getattr(self.runtime.describer, "close", None)
        if callable(close_describer):
            close_describer()
        self.store.close()


def workers_busy(message: str, retry_after_s: float) -> BusyError:
    """The service's 503 for full or unreachable model workers, with their ``Retry-After``."""
    return BusyError(message, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def _load_chat_model(spec: str):
    module, _, factory = spec.partition(":")
    if not module or not factory:
        raise ValueError(f"llm {spec!r} must be 'module:factory'")
    return getattr(importlib.import_module(module), factory)()


def build_runtime(
    settings: Settings, *, describer: Describer | None = None, chat_model: Any = None
) -> Runtime:
    """The tools' runtime of the service: the describer by the rule of every entry point
    (:func:`tools.describers.choose_describer` on ``settings.model_dir`` and ``settings.describer``, sharing
    one feature cache sized by the settings) unless ``describer`` is given or ``settings.model_workers`` names
    remote model workers (a :class:`tools.model_workers.RemoteDescriber`: no model in this process), the
    grounding backend and the summary LLM the settings name (``chat_model``, a LangChain chat model,
    summarizes when given)."""
    common: dict[str, Any] = {
        "grounding_settings": settings.grounding_settings(),
        "summarizer": settings.summarizer,
        "cache_root": settings.cache_dir,
        "max_videos": settings.max_open_videos,
    }
    if chat_model is not None:
        from agent.lc_tools import as_text_llm

        common["summarizer"] = as_text_llm(chat_model)
    if describer is None and settings.model_workers is not None:
        from tools.model_workers import RemoteDescriber

        videos = VideoStore(settings.max_open_videos)
        remote = RemoteDescriber(
            settings.model_workers,
            data_root=settings.data_dir,
            locate=videos.path_of,
            timeout_s=settings.model_workers_timeout_s,
            connections=max(4, 2 * settings.turn_threads),
            unavailable=workers_busy,
        )
        logger.info("describing on the model workers at %s", settings.model_workers)
        return Runtime(describer=remote, videos=videos, **common)
    if describer is not None:
        return Runtime(describer=describer, **common)
    from tools.model_workers.worker import torch_dtype

    return Runtime.build(
        choose_describer(settings.model_dir, settings.describer),
        device=settings.device,
        dtype=torch_dtype(settings.dtype),
        feature_cache_bytes=settings.feature_cache_bytes,
        features_dir=settings.features_dir,
        **common,
    )


def _open_state(settings: Settings) -> tuple[BaseStore, BaseCheckpointSaver]:
    """The metadata store and the LangGraph checkpointer: SQLite files in ``data_dir`` (one process), or
    PostgreSQL at ``settings.database_url`` (replicas; the checkpointer shares the store's connection pool)."""
    if settings.database_url is None:
        return Store(settings.data_dir), sqlite_checkpointer(settings.checkpoints_db)
    from agent.api.storage.postgres import PostgresStore

    store = PostgresStore(
        settings.data_dir,
        settings.database_url.get_secret_value(),
        replica_id=settings.replica_id,
        lease_s=settings.replica_lease_s,
        pool_size=settings.db_pool_size,
    )
    try:
        return store, postgres_checkpointer(store.pool)
    except Exception:
        store.close()
        raise


def build_service(settings: Settings, *, describer: Describer | None = None) -> ServiceRuntime:
    """Open the store, build the tools' runtime (loads the describer, or uses ``describer``), build the agent
    on the checkpointer of the store's database: SQLite files in ``data_dir`` by default; PostgreSQL (the
    store's connection pool) with ``settings.database_url``, where several replicas share the state."""
    chat_model = _load_chat_model(settings.llm) if settings.llm else None
    if settings.planner == "llm" and chat_model is None:
        raise ValueError("planner 'llm' needs ARTEMIS_LLM=module:factory (a LangChain chat model)")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store, checkpointer = _open_state(settings)
    runtime = build_runtime(settings, describer=describer, chat_model=chat_model)
    planner = LLMPlanner(chat_model) if settings.planner == "llm" else RulePlanner()
    deps = AgentDeps(runtime=runtime, planner=planner)
    graph = build_agent(deps, checkpointer=checkpointer)
    stats = getattr(runtime.describer, "stats", None) if settings.model_workers is not None else None
    worker = ModelWorker(
        settings.queue_size, settings.queue_timeout_s, threads=settings.turn_threads, remote_stats=stats
    )
    return ServiceRuntime(
        settings=settings,
        store=store,
        worker=worker,
        runtime=runtime,
        deps=deps,
        graph=graph,
        quota=DiskQuota(
            settings.disk_quota_bytes, lambda: store.used_bytes(partial=False), store.quota_reservations()
        ),
        model_name=describer_name(runtime.describer),
    )
