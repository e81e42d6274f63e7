"""What the service holds while it runs: settings, store, model worker, describer, agent graph, caches.

Built once in the app's lifespan by :func:`build_runtime` (models are never loaded at import).
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from agent.api.settings import Settings
from agent.api.storage import Store
from agent.api.worker import ModelWorker
from agent.deps import AgentDeps
from agent.graph import build_agent, sqlite_checkpointer
from agent.planner import LLMPlanner, RulePlanner
from artemis_model.types import Box, Description, Track
from tools.describers import (
    Describer,
    ModelDescriber,
    build_describer,
    choose_describer,
    describer_name,
)
from tools.video import VideoLike, load_video

logger = logging.getLogger(__name__)


class RunCancelled(Exception):
    """The client of a running job went away; the job stops at its next check."""


class ReportingDescriber:
    """Wraps the describer: reports progress of each call and stops when the job is cancelled.

    One job runs at a time (the model worker), so the current job's hooks are plain attributes.
    """

    def __init__(self, inner: Describer) -> None:
        self.inner = inner
        self.on_progress: Callable[[dict[str, Any]], None] | None = None
        self.cancel: threading.Event | None = None
        self.calls = 0

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("the client disconnected")

    def _report(self, **data: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(data)

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        self._check()
        self.calls += 1
        self._report(stage="describe", status="start", frame_idx=frame_idx, box=list(box))
        out = self.inner(video, box, frame_idx=frame_idx, question=question)
        self._report(stage="describe", status="done", frame_idx=frame_idx)
        self._check()
        return out

    def describe_many(
        self,
        video: VideoLike,
        boxes: list[Box],
        *,
        frame_idxs: list[int],
        question: str | None,
        tracks: list[Track] | None = None,
    ) -> list[Description]:
        many = getattr(self.inner, "describe_many", None)
        if callable(many):
            self._check()
            self._report(stage="describe", status="start", targets=len(boxes))
            out = many(video, boxes, frame_idxs=frame_idxs, question=question, tracks=tracks)
            self._report(stage="describe", status="done", targets=len(boxes))
            return out
        out = []
        for i, (b, f) in enumerate(zip(boxes, frame_idxs, strict=True)):
            out.append(self(video, b, frame_idx=f, question=question))
            self._report(stage="describe", status="progress", done=i + 1, total=len(boxes))
        return out


@dataclass
class Runtime:
    settings: Settings
    store: Store
    worker: ModelWorker
    describer: ReportingDescriber
    deps: AgentDeps
    graph: CompiledStateGraph
    feature_cache: Any = None
    model_name: str = "heuristic"
    _videos: OrderedDict[str, VideoLike] = field(default_factory=OrderedDict)
    _videos_lock: threading.Lock = field(default_factory=threading.Lock)

    def open_video(self, video_id: str) -> VideoLike:
        """The opened video of ``video_id`` (a few kept open), for frames and tools."""
        with self._videos_lock:
            if video_id in self._videos:
                self._videos.move_to_end(video_id)
                return self._videos[video_id]
        video = load_video(self.store.video_path(video_id))
        with self._videos_lock:
            self._videos[video_id] = video
            while len(self._videos) > 8:
                self._videos.popitem(last=False)
        return video

    def forget_video(self, video_id: str, content_hash: str) -> None:
        """Drop every in-memory handle and cached feature of a deleted video."""
        with self._videos_lock:
            self._videos.pop(video_id, None)
        clear = getattr(self.deps.open_video, "cache_clear", None)
        if callable(clear):
            clear()
        if self.feature_cache is not None:
            self.feature_cache.evict_video(content_hash)

    def close(self) -> None:
        self.worker.shutdown()
        self.store.close()


def _torch_dtype(name: str):
    if name == "auto":
        return None
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_describer(settings: Settings) -> tuple[Describer, Any, str]:
    """(describer, feature cache or None, name) by the rule of every entry point
    (:func:`tools.describers.choose_describer` on ``settings.model_dir`` and ``settings.describer``); a model
    shares one feature cache sized by the settings."""
    choice = choose_describer(settings.model_dir, settings.describer)
    cache = None
    if choice.kind != "heuristic":
        from artemis_model.features import FeatureCache

        cache = FeatureCache(max_bytes=settings.feature_cache_bytes, disk_dir=settings.features_dir)
    describer = build_describer(
        choice, device=settings.device, dtype=_torch_dtype(settings.dtype), cache=cache
    )
    return describer, cache, describer_name(describer)


def _load_chat_model(spec: str):
    module, _, factory = spec.partition(":")
    if not module or not factory:
        raise ValueError(f"llm {spec!r} must be 'module:factory'")
    return getattr(importlib.import_module(module), factory)()


def build_runtime(settings: Settings, *, describer: Describer | None = None) -> Runtime:
    """Open the store, load the describer (or use ``describer``), build the agent on the SQLite checkpointer."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.data_dir)
    cache = None
    if describer is not None:
        name = describer_name(describer)
        if isinstance(describer, ModelDescriber):
            cache = describer.pipeline.cache
    else:
        describer, cache, name = load_describer(settings)
    chat_model = _load_chat_model(settings.llm) if settings.llm else None
    if settings.planner == "llm" and chat_model is None:
        raise ValueError("planner 'llm' needs ARTEMIS_LLM=module:factory (a LangChain chat model)")
    reporting = ReportingDescriber(describer)
    summarizer: Any = settings.summarizer
    if chat_model is not None:
        from agent.lc_tools import as_text_llm

        summarizer = as_text_llm(chat_model)
    deps = AgentDeps(
        describer=reporting,
        planner=LLMPlanner(chat_model) if settings.planner == "llm" else RulePlanner(),
        summarizer=summarizer,
        open_video=functools.lru_cache(maxsize=4)(load_video),
    )
    graph = build_agent(deps, checkpointer=sqlite_checkpointer(settings.checkpoints_db))
    worker = ModelWorker(settings.queue_size, settings.queue_timeout_s)
    return Runtime(
        settings=settings,
        store=store,
        worker=worker,
        describer=reporting,
        deps=deps,
        graph=graph,
        feature_cache=cache,
        model_name=name,
    )
