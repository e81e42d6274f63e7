"""What every referring evaluation hands to a model: :class:`EvalRecord`, and the :class:`Predictor` protocol.

The benchmarks (HC-STVG / VideoRef45K, VideoRefer-Bench-D and -Q) are all reduced to the same question: "describe
the target given by this box track in this video". A predictor answers a batch of such records with one string
each; the real Artemis model is wired behind it in :mod:`evals.predictors`, tests use fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from artemis_model.errors import ArtemisInputError
from artemis_model.types import Box


@dataclass(frozen=True)
class EvalRecord:
    """One referring query. Boxes are xyxy pixels of the original frame; frames are 0-based indices into
    ``frame_paths`` (a frame folder, in order) or into the decoded frames of ``video_path``."""

    record_id: str
    video_name: str
    groundtruth: str
    key_frame_idx: int
    key_box: Box
    track: tuple[tuple[int, Box], ...]
    """``(frame_idx, box)`` for every frame where the target has a box, sorted by frame; absent frames omitted."""
    frame_paths: tuple[Path, ...] | None = None
    video_path: Path | None = None
    question: str | None = None
    """The question to ask; ``None`` means the model's default referring question."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if (self.frame_paths is None) == (self.video_path is None):
            raise ArtemisInputError(
                f"record {self.record_id!r}: give exactly one of frame_paths and video_path "
                f"(got frame_paths={'set' if self.frame_paths is not None else None}, video_path={self.video_path})"
            )
        frames = [f for f, _ in self.track]
        if frames != sorted(set(frames)):
            raise ArtemisInputError(
                f"record {self.record_id!r}: track frames {frames} must be sorted and unique"
            )

    @property
    def num_frames(self) -> int | None:
        """Frames of a frame folder; ``None`` for a video file (known only after decoding)."""
        return len(self.frame_paths) if self.frame_paths is not None else None

    def track_list(self, num_frames: int) -> list[list[float]]:
        """The data sets' dense ``track_list`` (``[x1, y1, x2, y2]`` or ``[]`` per frame) over ``num_frames``."""
        dense: list[list[float]] = [[] for _ in range(num_frames)]
        for frame_idx, box in self.track:
            if frame_idx >= num_frames:
                raise ArtemisInputError(
                    f"record {self.record_id!r}: track frame {frame_idx} is beyond the video's {num_frames} frames"
                )
            dense[frame_idx] = list(box)
        return dense


@runtime_checkable
class Predictor(Protocol):
    """Answers a batch of referring records with one text each, in order. Decoding options (greedy by
    default, or the original's sampling at temperature 0.2) belong to the predictor's construction."""

    def predict(self, records: list[EvalRecord]) -> list[str]: ...


@runtime_checkable
class LimitReportingPredictor(Predictor, Protocol):
    """A :class:`Predictor` that also tells, per answer, whether it hit the answer length limit before ``</s>``
    (an answer that may be cut short): ``predict_with_limits`` -> ``[(text, hit_limit), ...]``."""

    def predict_with_limits(self, records: list[EvalRecord]) -> list[tuple[str, bool]]: ...
