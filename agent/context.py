"""Per-turn values of one run of the graph: where progress goes and when to stop (never checkpointed).

The caller passes a :class:`TurnContext` with each run (``graph.stream(inp, config, context=TurnContext(...))``,
LangGraph's run context); the nodes that describe wrap the runtime's describer for that turn only
(:func:`turn_describer`), so nothing shared is mutated between turns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artemis_model.types import Box, Description, Track
from tools.describers import Describer, Sampling, accepts_keyword, can_sample, describer_name
from tools.video import VideoLike

Progress = Callable[[dict[str, Any]], None]


class RunCancelled(Exception):
    """The client of a running turn went away; the turn stops at its next check."""


class TurnTimedOut(RunCancelled):
    """The turn ran past its wall-time budget (``TurnContext.deadline``); it stops at its next check."""


@dataclass(frozen=True)
class TurnContext:
    """``on_progress`` receives ``{"stage": "describe", "status": ...}`` events of each describer call;
    ``cancel``, once set, stops the turn at its next describer call (:class:`RunCancelled`); past
    ``deadline`` (a :func:`time.monotonic` time) it stops there too (:class:`TurnTimedOut`)."""

    on_progress: Progress | None = None
    cancel: threading.Event | None = None
    deadline: float | None = None

    @classmethod
    def with_budget(
        cls,
        budget_s: float | None,
        *,
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> TurnContext:
        """A context whose deadline is ``budget_s`` seconds of wall time from now (None: no deadline)."""
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f"a turn's budget must be > 0 seconds, got {budget_s}")
        deadline = time.monotonic() + budget_s if budget_s is not None else None
        return cls(on_progress=on_progress, cancel=cancel, deadline=deadline)

    def check(self) -> None:
        """Raise :class:`RunCancelled` when cancelled, :class:`TurnTimedOut` past the deadline."""
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("the client disconnected")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TurnTimedOut("the turn ran past its wall-time budget")


class ReportingDescriber:
    """``inner`` reporting each call to ``on_progress`` and stopping when ``cancel`` is set or past
    ``deadline`` (one turn's)."""

    def __init__(
        self,
        inner: Describer,
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> None:
        self.inner = inner
        self.on_progress = on_progress
        self.context = TurnContext(on_progress=on_progress, cancel=cancel, deadline=deadline)
        self.can_sample = can_sample(
            inner
        )  # describe_many passes ``sampling`` on only to a describer that takes it

    def _check(self) -> None:
        self.context.check()

    def _report(self, **data: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(data)

    def _deadline(self, fn: Any) -> dict[str, float]:
        """The turn's deadline for a describer that takes one (remote workers drop requests past it)."""
        deadline = self.context.deadline
        return {"deadline": deadline} if deadline is not None and accepts_keyword(fn, "deadline") else {}

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` with the turn's deadline when it takes one; a failure once the deadline passed is the turn's
        timeout (the describer gave up because the budget was spent), not an error of its own."""
        try:
            return fn(*args, **kwargs, **self._deadline(fn))
        except Exception:
            self._check()
            raise

    def __call__(self, video: VideoLike, box: Box, *, frame_idx: int, question: str | None) -> Description:
        self._check()
        self._report(stage="describe", status="start", frame_idx=frame_idx, box=list(box))
        out = self._call(self.inner, video, box, frame_idx=frame_idx, question=question)
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
        labels: list[str] | None = None,
        sampling: Sampling | None = None,
    ) -> list[Description]:
        """The inner describer's ``describe_many`` (``labels``, the targets' class names, passed on when given:
        only describers that take them are handed them; ``sampling`` only to one that samples, :attr:`can_sample`)
        or one call per box."""
        if sampling is not None and not self.can_sample:
            raise ValueError(
                f"{describer_name(self.inner)} cannot sample: its describe_many takes no sampling"
            )
        many = getattr(self.inner, "describe_many", None)
        if callable(many):
            self._check()
            seed = {"sample": sampling.seed} if sampling is not None else {}
            self._report(stage="describe", status="start", targets=len(boxes), **seed)
            extra = {"labels": labels} if labels is not None and accepts_keyword(many, "labels") else {}
            if sampling is not None:
                extra["sampling"] = sampling
            out = self._call(
                many, video, boxes, frame_idxs=frame_idxs, question=question, tracks=tracks, **extra
            )
            self._report(stage="describe", status="done", targets=len(boxes), **seed)
            return out
        out = []
        for i, (b, f) in enumerate(zip(boxes, frame_idxs, strict=True)):
            out.append(self(video, b, frame_idx=f, question=question))
            self._report(stage="describe", status="progress", done=i + 1, total=len(boxes))
        return out


def turn_describer(describer: Describer, context: TurnContext | None) -> Describer:
    """``describer`` as this turn uses it: wrapped to report progress and stop on cancel or past the deadline
    when ``context`` asks for any, else as it is."""
    if context is None or (
        context.on_progress is None and context.cancel is None and context.deadline is None
    ):
        return describer
    return ReportingDescriber(describer, context.on_progress, context.cancel, context.deadline)
