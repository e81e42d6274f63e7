"""Describers that record what they receive: the key frame and box each entry point hands the model seam."""

from __future__ import annotations

from tools.describers import HeuristicDescriber


class RecordingDescriber:
    """Records the ``(frame_idx, box)`` it is called with, then answers like the heuristic describer."""

    def __init__(self) -> None:
        self.received: list[tuple[int, tuple[float, ...]]] = []
        self.inner = HeuristicDescriber()

    def __call__(self, video, box, *, frame_idx, question):
        self.received.append((frame_idx, tuple(box)))
        return self.inner(video, box, frame_idx=frame_idx, question=question)


class RecordingBatchDescriber(RecordingDescriber):
    """The batched seam of :class:`ModelDescriber` (``describe_many`` with the targets' tracks), recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.tracks: list = []

    def describe_many(self, video, boxes, *, frame_idxs, question, tracks=None):
        self.tracks += list(tracks or [])
        return [
            self(video, b, frame_idx=f, question=question) for b, f in zip(boxes, frame_idxs, strict=True)
        ]
