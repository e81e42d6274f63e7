"""Describers: the callables the refer tool uses to say what a boxed target does.

``Describer`` is the seam to the model: ``ModelDescriber`` calls ``artemis_model.pipeline.describe``;
``HeuristicDescriber`` is a weight-free stand-in speaking the synthetic world's words (colour/shape of the box and
the direction it moves); ``tools.track_describer.TrackDescriber`` is the weight-free describer of real footage.
:func:`default_describer` is the one factory every entry point (CLI, agent, service) builds its describer with;
:func:`choose_describer` is its rule.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np

from artemis_model.types import Box, Description, GenerationOptions, Track
from tools.grounding.offline import name_region
from tools.video import VideoLike, as_video_source

logger = logging.getLogger(__name__)

DEFAULT_QUESTION = "What is the <region> doing in this video?"
SAMPLE_TEMPERATURE = 0.7
"""Temperature of :class:`Sampling` (the caption checks' re-asks)."""

EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "artemis-tiny-world"
"""The embedded world model shipped with the repository (``models/`` beside the package folders)."""

DescriberKind = Literal["auto", "world", "model", "track", "heuristic", "random"]
DESCRIBER_KINDS: tuple[str, ...] = get_args(DescriberKind)
"""``auto``: the rule of :func:`choose_describer` for real footage (the given model directory, else the
:class:`tools.track_describer.TrackDescriber`); ``world``: what the synthetic world's commands ask for (the given
model directory, else the embedded world model, else, with a warning, the heuristic); ``model``: an Artemis model
(the given directory, else the embedded one); ``track``: the weight-free track describer; ``heuristic``: the
weight-free :class:`HeuristicDescriber` (the synthetic world's words); ``random``: a randomly initialised tiny
Artemis (tests and benchmarks; its words are noise)."""


@runtime_checkable
class Describer(Protocol):
    """``(video, box, *, frame_idx, question) -> Description`` for a box in pixels on ``frame_idx``."""

    def __call__(
        self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None
    ) -> Description: ...


class ModelDescriber:
    """Describes with an Artemis model through :class:`artemis_model.pipeline.ArtemisPipeline` (the model seam).

    One feature cache is shared by every call, so follow-up questions and several targets on one video never
    encode a frame twice; :meth:`describe_many` sends all targets of a video through one batched pass.
    """

    def __init__(
        self,
        model,
        processor,
        *,
        options: GenerationOptions = GenerationOptions(),
        cache=None,
        model_dir: Path | None = None,
        name: str | None = None,
    ) -> None:
        from artemis_model.pipeline import ArtemisPipeline

        self.pipeline = ArtemisPipeline(model, processor, cache)
        self.options = options
        self.model_dir = model_dir
        """Where the weights were loaded from (``None``: built in memory)."""
        self.name = name or (model_dir.name if model_dir is not None else "artemis")

    @property
    def model(self):
        return self.pipeline.model

    @property
    def processor(self):
        return self.pipeline.processor

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        *,
        device: str | None = None,
        dtype=None,
        cache=None,
        options: GenerationOptions = GenerationOptions(),
    ) -> ModelDescriber:
        """Load the model and processor saved in ``model_dir`` (on first use of the CLI/agent, never at import).

        ``cache``: the feature cache to share (default: a fresh in-memory one)."""
        from artemis_model.pipeline import ArtemisPipeline

        model_dir = Path(model_dir)
        pipe = ArtemisPipeline.from_pretrained(model_dir, device=device, dtype=dtype, cache=cache)
        return cls(pipe.model, pipe.processor, cache=pipe.cache, options=options, model_dir=model_dir)

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        return self.pipeline.describe(
            as_video_source(video), box, frame_idx=frame_idx, question=question, options=self.options
        )

    def describe_many(
        self,
        video: VideoLike,
        boxes: list[Box],
        *,
        frame_idxs: list[int],
        question: str | None,
        tracks: list[Track] | None = None,
        sampling: Sampling | None = None,
    ) -> list[Description]:
        """Several targets of one video; ``tracks`` (one per box) skip the tracker when already known;
        ``sampling``: sampled decoding instead of the model's own options (the caption checks' re-asks,
        :func:`tools.refer.refer_checked`)."""
        options = self.options
        if sampling is not None:
            options = replace(options, do_sample=True, temperature=sampling.temperature, seed=sampling.seed)
        return self.pipeline.describe_many(
            as_video_source(video),
            boxes,
            frame_idx=frame_idxs,
            questions=question,
            options=options,
            tracks=tracks,
        )


class HeuristicDescriber:
    """A deterministic, weight-free describer: names the boxed region and how its track moves.

    ``tracker`` maps ``(video, box, frame_idx)`` to a Track (default: ``tools.track.track``).
    """

    name = "heuristic"

    def __init__(self, tracker=None) -> None:
        self.tracker = tracker

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        from tools.track import track

        trk: Track = (self.tracker or track)(video, box, frame_idx=frame_idx)
        colour, shape = name_region(video.get_frames([frame_idx])[0], box)
        noun = " ".join(w for w in (colour, shape) if w) or "object"
        answer = f"The {noun} {motion_phrase(trk)}."
        vis = trk.visible_frames
        return Description(
            answer=answer,
            question=question or DEFAULT_QUESTION,
            frame_idx=frame_idx,
            box=tuple(box),
            track=trk,
            selected_frames=tuple(
                [frame_idx] + [v for v in vis[:: max(1, len(vis) // 4)] if v != frame_idx][:4]
            ),
        )


def motion_phrase(trk: Track) -> str:
    """'moves to the right', 'moves up and to the left', 'stays still', ... from the first and last boxes."""
    vis = trk.visible_frames
    if len(vis) < 2:
        return "appears briefly"
    a, b = trk.boxes[vis[0]], trk.boxes[vis[-1]]
    dx = (b[0] + b[2] - a[0] - a[2]) / 2  # type: ignore[index]
    dy = (b[1] + b[3] - a[1] - a[3]) / 2  # type: ignore[index]
    size = max(np.hypot(a[2] - a[0], a[3] - a[1]), 1.0)  # type: ignore[index]
    parts = []
    if abs(dy) > 0.3 * size:
        parts.append("down" if dy > 0 else "up")
    if abs(dx) > 0.3 * size:
        parts.append("to the right" if dx > 0 else "to the left")
    if not parts:
        return "stays in place"
    return "moves " + " and ".join(parts)


@dataclass(frozen=True)
class DescriberChoice:
    """What :func:`choose_describer` decided: an Artemis model in ``model_dir``, the heuristic, or a random tiny
    model."""

    kind: Literal["model", "track", "heuristic", "random"]
    model_dir: Path | None = None


def has_model(model_dir: Path) -> bool:
    """``model_dir`` holds a saved model (a ``config.json``)."""
    return (model_dir / "config.json").is_file()


def choose_describer(
    model_dir: str | Path | None = None, kind: str = "auto", *, embedded_dir: Path | None = None
) -> DescriberChoice:
    """The one rule that picks the describer of every entry point (CLI, agent, service).

    1. An explicit model directory (``--model``, ``ARTEMIS_MODEL_DIR``): that Artemis model (kinds ``auto``,
       ``world``, ``model``).
    2. ``auto`` (the default of every real-footage entry point: ``chat``, ``describe``, ``serve``, the service,
       ``AgentDeps()``): the weight-free track describer, which says only what the track and the pixels show.
    3. ``world`` (the default of the synthetic world's commands: ``demo``, ``eval agent``): the embedded world
       model (``embedded_dir``, default :data:`EMBEDDED_MODEL_DIR`) when present, else, with a warning, the
       heuristic describer (both speak the synthetic world's language, wrong on real footage).
    4. ``model``: the embedded model, an error when it is absent; ``track``, ``heuristic``, ``random``: that one.

    Nothing is guessed from the video: the entry point names its kind. Raises ``ValueError`` for an unknown
    ``kind`` or a model directory given with ``kind`` 'track', 'heuristic' or 'random'.
    """
    if kind not in DESCRIBER_KINDS:
        raise ValueError(f"describer {kind!r} is unknown; allowed: {', '.join(DESCRIBER_KINDS)}")
    if model_dir is not None:
        if kind not in ("auto", "world", "model"):
            raise ValueError(
                f"a model directory ({model_dir}) and describer {kind!r} exclude each other; with a model "
                "directory the describer is 'auto', 'world' or 'model'"
            )
        return DescriberChoice("model", Path(model_dir))
    if kind == "auto":
        return DescriberChoice("track")
    if kind in ("track", "heuristic", "random"):
        return DescriberChoice(kind)  # type: ignore[arg-type]
    embedded = embedded_dir if embedded_dir is not None else EMBEDDED_MODEL_DIR
    if has_model(embedded):
        return DescriberChoice("model", embedded)
    if kind == "model":
        raise ValueError(
            f"describer 'model' needs a model: no model directory given and the embedded model {embedded} is "
            f"absent (no config.json); pass a model directory or choose one of {', '.join(DESCRIBER_KINDS)}"
        )
    logger.warning(
        "the embedded model %s is absent (no config.json): describing the world with the weight-free heuristic "
        "describer; pass a model directory for real descriptions",
        embedded,
    )
    return DescriberChoice("heuristic")


def build_describer(
    choice: DescriberChoice,
    *,
    device: str | None = None,
    dtype: Any = None,
    options: GenerationOptions = GenerationOptions(),
    cache: Any = None,
) -> Describer:
    """The describer ``choice`` names (loads the model's weights: call it once per process)."""
    if choice.kind == "heuristic":
        return HeuristicDescriber()
    if choice.kind == "track":
        from tools.track_describer import TrackDescriber

        return TrackDescriber()
    if choice.kind == "random":
        from artemis_model.tiny import tiny_model_and_processor

        logger.warning("describing with a randomly initialised tiny Artemis: its answers are noise")
        model, processor = tiny_model_and_processor(seed=0)
        if device is not None:
            model = model.to(device)
        return ModelDescriber(model, processor, options=options, cache=cache, name="random tiny artemis")
    assert choice.model_dir is not None  # DescriberChoice("model") always names its directory
    describer = ModelDescriber.from_pretrained(
        choice.model_dir, device=device, dtype=dtype, cache=cache, options=options
    )
    logger.info("describing with the Artemis model in %s", choice.model_dir)
    return describer


def default_describer(
    model_dir: str | Path | None = None,
    kind: str = "auto",
    *,
    device: str | None = None,
    dtype: Any = None,
    options: GenerationOptions = GenerationOptions(),
    cache: Any = None,
    embedded_dir: Path | None = None,
) -> Describer:
    """The describer of every entry point: :func:`choose_describer`'s rule, then :func:`build_describer`."""
    choice = choose_describer(model_dir, kind, embedded_dir=embedded_dir)
    return build_describer(choice, device=device, dtype=dtype, options=options, cache=cache)


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding for a ``describe_many`` that takes ``sampling=``: other hypotheses of the model; the same
    seed and inputs give the same captions."""

    seed: int
    temperature: float = SAMPLE_TEMPERATURE


def can_sample(describer: object) -> bool:
    """Whether ``describer.describe_many`` takes ``sampling`` (a :class:`Sampling`): only such describers are
    re-asked by the caption checks. A wrapper says so with its ``can_sample`` attribute (True only when what it
    wraps can)."""
    flag = getattr(describer, "can_sample", None)
    if isinstance(flag, bool):
        return flag
    return accepts_keyword(getattr(describer, "describe_many", None), "sampling")


def accepts_keyword(fn: object, name: str) -> bool:
    """``fn`` accepts the keyword argument ``name`` (e.g. a ``describe_many`` taking the targets' ``labels``)."""
    try:
        return name in inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def describer_name(describer: Describer) -> str:
    """A short name of ``describer`` for logs and reports (its ``name``, else its class name)."""
    return str(getattr(describer, "name", type(describer).__name__))
