"""The state that lives longer than one call, owned by one object: :class:`Runtime`.

It holds the opened videos (:class:`VideoStore`), the feature cache, the grounding tracks (a
:data:`~tools.grounding.TrackCache`) with the grounding backend, the describer and the summary LLM, each with
its limit. The CLI builds one per command (:func:`Runtime.build`) and the service one in its lifespan; the agent
carries it in :class:`agent.deps.AgentDeps`; the tools take its pieces as arguments
(``ground(video, q, backend=rt.grounding_backend, settings=rt.grounding_settings, cache=rt.track_cache)``). No
module holds a cache of its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artemis_model.lru import LRUCache
from artemis_model.types import GenerationOptions
from artemis_model.video import open_video
from tools import describers
from tools.describers import Describer, DescriberChoice, ModelDescriber
from tools.grounding import GroundingBackend, GroundingSettings, TrackCache, make_backend, new_track_cache
from tools.grounding.grounder import evict_video_tracks
from tools.smollm import default_cache_dir
from tools.summarize import TextLLM, resolve_llm
from tools.video import VideoLike

if TYPE_CHECKING:
    from artemis_model.features import FeatureCache

MAX_VIDEOS = 8
"""Opened videos a runtime keeps (least recently used dropped first)."""
MAX_TRACK_SETS = 16
"""Grounding results (all tracks of one video for one backend and kind of query) a runtime keeps."""
FEATURE_CACHE_BYTES = 2 * 2**30


class VideoStore:
    """Opened videos by file (its resolved path, size and modification time: a replaced file is opened anew)
    or by the name they were added under (:meth:`add`: in-memory clips), at most ``max_open``; the least
    recently used is dropped first (closed when nothing else holds it, by the garbage collector: a job may still
    be reading it)."""

    def __init__(self, max_open: int = MAX_VIDEOS) -> None:
        self._open: LRUCache[tuple[str | int, ...], VideoLike] = LRUCache(max_open)
        self._files: weakref.WeakKeyDictionary[VideoLike, Path] = weakref.WeakKeyDictionary()
        self._files_lock = threading.Lock()

    def add(self, name: str, video: VideoLike) -> None:
        """Keep the opened ``video`` under ``name``: :meth:`open` of that name returns it."""
        self._open.put(("name", name), video)

    def open(self, source: str | os.PathLike | VideoLike) -> VideoLike:
        """The opened video of ``source``: a name given to :meth:`add`, a path (opened on first use), or an
        opened video (passes through)."""
        if isinstance(source, VideoLike):
            return source
        if isinstance(source, str) and ("name", source) in self._open:
            return self._open.get(("name", source))  # type: ignore[return-value]
        path = Path(source).resolve()
        stat = path.stat() if path.exists() else None
        key = ("file", str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1)
        video = self._open.get_or_compute(key, lambda: open_video(path))
        with self._files_lock:
            self._files[video] = path
        return video

    def path_of(self, video: VideoLike) -> Path | None:
        """The file ``video`` was opened from by :meth:`open` (known while anything holds the video, also after
        it left the store), else ``None`` (an added or in-memory video)."""
        try:
            with self._files_lock:
                return self._files.get(video)
        except TypeError:  # not weakly referenceable: never opened here
            return None

    def forget(self, content_hash: str, path: str | os.PathLike | None = None) -> int:
        """Drop the opened videos of ``path`` (when given) or with this content; how many. A file that is gone
        is matched by its path only (its content can no longer be read)."""
        where = str(Path(path).resolve()) if path is not None else None

        def select(key: tuple[str | int, ...], video: VideoLike) -> bool:
            if key[0] == "file":
                if key[1] == where:
                    return True
                if not Path(str(key[1])).exists():
                    return False
            return getattr(video, "content_hash", None) == content_hash

        return len(self._open.pop_where(select))

    def close(self) -> None:
        """Close every opened video and forget them."""
        for video in self._open.values():
            close = getattr(video, "close", None)
            if callable(close):
                close()
        self._open.clear()

    def __contains__(self, name: object) -> bool:
        """Whether a video was added under ``name`` (and is still kept)."""
        return ("name", name) in self._open

    def __len__(self) -> int:
        return len(self._open)


class Runtime:
    """What lives longer than a call: opened videos, the feature cache, grounding tracks and backend, the
    describer, the summary LLM.

    ``describer``: default the one the rule of every entry point names (:func:`tools.describers.default_describer`,
    sharing ``feature_cache``). ``grounding_backend``: default the one ``grounding_settings`` names, built once
    here. ``summarizer``: a ``str -> str`` LLM or ``"merge"`` / ``"smollm2"`` / ``"auto"``, resolved once
    (:func:`tools.summarize.resolve_llm`; SmolLM2 keeps its converted weights under ``cache_root``, default
    ``~/.cache/artemis``). ``max_videos`` / ``max_track_sets``: the limits of the opened videos and of the
    grounding results kept; ``videos``: the opened videos' store to use (a :class:`tools.model_workers.RemoteDescriber`
    finds their files in it), default a new one of ``max_videos``.

    Turns may run on several threads at once (the service's ``turn_threads`` with remote model workers): the
    opened videos, the grounding tracks and the feature cache are locked caches, and a video or a grounding
    result missing from its cache is computed once (:meth:`artemis_model.lru.LRUCache.get_or_compute`) while the other turns wait for
    it. The describer is not locked here: a local model describer is called from one thread only (the
    service allows several turn threads only with remote workers, whose describer is thread-safe).
    """

    def __init__(
        self,
        *,
        describer: Describer | None = None,
        feature_cache: FeatureCache | None = None,
        grounding_settings: GroundingSettings | None = None,
        grounding_backend: GroundingBackend | None = None,
        summarizer: TextLLM | str | None = "merge",
        cache_root: Path | None = None,
        max_videos: int = MAX_VIDEOS,
        max_track_sets: int = MAX_TRACK_SETS,
        videos: VideoStore | None = None,
    ) -> None:
        if describer is None:
            describer = describers.default_describer(cache=feature_cache)
        if feature_cache is None and isinstance(describer, ModelDescriber):
            feature_cache = describer.pipeline.cache
        self.describer: Describer = describer
        self.feature_cache: FeatureCache | None = feature_cache
        self.grounding_settings = grounding_settings or GroundingSettings()
        self.grounding_backend = grounding_backend or make_backend(self.grounding_settings)
        self.summarizer: TextLLM | str = (
            resolve_llm(summarizer, cache_dir=default_cache_dir(cache_root)) or "merge"
        )
        """The summary LLM, or ``"merge"`` (the deterministic merge, no LLM)."""
        self.videos = videos if videos is not None else VideoStore(max_videos)
        self.track_cache: TrackCache = new_track_cache(max_track_sets)

    @classmethod
    def build(
        cls,
        choice: DescriberChoice,
        *,
        device: str | None = None,
        dtype: Any = None,
        options: GenerationOptions = GenerationOptions(),
        feature_cache_bytes: int = FEATURE_CACHE_BYTES,
        features_dir: Path | None = None,
        **kwargs: Any,
    ) -> Runtime:
        """A runtime describing with the describer ``choice`` names (:func:`tools.describers.choose_describer`:
        the rule of every entry point); a model describer shares one feature cache of ``feature_cache_bytes``
        (and ``features_dir`` on disk). Loads the model: once per process. ``kwargs``: the other arguments of
        :class:`Runtime`."""
        cache = None
        if choice.kind != "heuristic":
            from artemis_model.features import FeatureCache

            cache = FeatureCache(max_bytes=feature_cache_bytes, disk_dir=features_dir)
        built = describers.build_describer(choice, device=device, dtype=dtype, options=options, cache=cache)
        return cls(describer=built, feature_cache=cache, **kwargs)

    def open_video(self, source: str | os.PathLike | VideoLike) -> VideoLike:
        """The opened video of ``source`` (see :class:`VideoStore`): every caller shares one opened object."""
        return self.videos.open(source)

    def forget_video(self, content_hash: str, path: str | os.PathLike | None = None) -> None:
        """Drop everything held about one video (its file ``path`` when known): its opened handles, its
        grounding tracks, its features."""
        self.videos.forget(content_hash, path)
        evict_video_tracks(self.track_cache, content_hash)
        if self.feature_cache is not None:
            self.feature_cache.evict_video(content_hash)

    def close(self) -> None:
        self.videos.close()
