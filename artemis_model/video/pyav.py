"""A PyAV (FFmpeg) video source with its own seek planning.

Measured on 720p H.264 (``benchmarks/bench_video.py``): decord's ``get_batch`` pays ~55-60 ms of CPU per
seek on top of decoding, PyAV ~25-30 ms, so sparse sampling of long videos is about twice as cheap here.
The frame index is built on open by demuxing the packets (no decoding): frame ``i`` is the ``i``-th
presentation timestamp, key frames are the packets flagged as such. A request for sorted frames decodes
on from the current position unless the key frame before the next wanted frame lies more than
:data:`SEEK_COST_FRAMES` ahead (a seek costs about as much CPU as decoding that many 720p frames).
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from artemis_model.errors import VideoDecodeError
from artemis_model.video.source import DEFAULT_FOLDER_FPS, VideoSource, file_content_hash

SEEK_COST_FRAMES = 20


class PyAVVideo(VideoSource):
    """A video file or in-memory bytes decoded with PyAV (threaded FFmpeg decoding)."""

    def __init__(self, source: str | os.PathLike | bytes, *, name: str | None = None) -> None:
        super().__init__()
        import av

        self._path = None if isinstance(source, bytes) else Path(source)
        self._data = source if isinstance(source, bytes) else None
        self.name = name or (str(self._path) if self._path is not None else f"<{len(source)} bytes>")
        try:
            with av.open(self._open_arg()) as probe:
                if not probe.streams.video:
                    raise VideoDecodeError(f"cannot decode video {self.name}: no video stream")
                stream = probe.streams.video[0]
                pts, keys = [], []
                for packet in probe.demux(stream):
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    if stamp is None or packet.size == 0:
                        continue
                    pts.append(stamp)
                    if packet.is_keyframe:
                        keys.append(stamp)
                rate = stream.average_rate or stream.guessed_rate
            self._container = av.open(self._open_arg())
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"cannot decode video {self.name}: {exc}") from exc
        if not pts:
            raise VideoDecodeError(f"video {self.name} has no frames")
        self._pts = sorted(pts)
        self._index = {stamp: i for i, stamp in enumerate(self._pts)}
        key_idx = sorted({self._index[k] for k in keys if k in self._index})
        self._key_idx = key_idx if key_idx and key_idx[0] == 0 else [0, *key_idx]
        self._frames: Iterator | None = None
        self._cur = -1
        self._reformatter = None
        self.num_frames = len(self._pts)
        self.fps = float(rate) if rate else DEFAULT_FOLDER_FPS
        first = self._decode_sorted([0], None)[0]  # [H, W, 3]; validates that frames decode
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    def _open_arg(self) -> str | io.BytesIO:
        return io.BytesIO(self._data) if self._data is not None else str(self._path)

    @property
    def key_frames(self) -> list[int] | None:
        return list(self._key_idx)

    def _seek(self, frame_idx: int) -> None:
        group = bisect.bisect_right(self._key_idx, frame_idx) - 1
        key = self._key_idx[max(group, 0)]
        self._container.seek(self._pts[key], stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._cur = -1

    def _decode_sorted(self, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
        import av

        out: np.ndarray | None = None
        try:
            for k, target in enumerate(indices):
                group_start = self._key_idx[bisect.bisect_right(self._key_idx, target) - 1]
                if self._frames is None or target <= self._cur or group_start - self._cur > SEEK_COST_FRAMES:
                    self._seek(target)
                frame = self._advance_to(target)
                rgb = self._to_rgb(frame, size)  # [H, W, 3]
                if out is None:
                    out = np.empty((len(indices), *rgb.shape), dtype=np.uint8)
                out[k] = rgb
        except av.error.FFmpegError as exc:
            self._frames = None
            raise VideoDecodeError(f"cannot decode frames of {self.name}: {exc}") from exc
        assert out is not None
        return out

    def _advance_to(self, target: int) -> object:
        assert self._frames is not None
        for frame in self._frames:
            stamp = frame.pts if frame.pts is not None else frame.dts
            idx = self._index.get(stamp)
            if idx is None:
                continue
            self._cur = idx
            if idx == target:
                return frame
            if idx > target:
                break
        self._frames = None
        raise VideoDecodeError(f"cannot decode frame {target} of {self.name}: the stream ends or skips it")

    def _to_rgb(self, frame: object, size: tuple[int, int] | None) -> np.ndarray:
        if size is None:
            return frame.to_ndarray(format="rgb24")
        from av.video.reformatter import Interpolation, VideoReformatter

        if self._reformatter is None:
            self._reformatter = VideoReformatter()
        resized = self._reformatter.reformat(
            frame, width=size[0], height=size[1], format="rgb24", interpolation=Interpolation.AREA
        )
        return resized.to_ndarray()

    def _compute_hash(self) -> str:
        import hashlib

        if self._data is not None:
            return hashlib.sha256(self._data).hexdigest()
        return file_content_hash(self._path)

    def close(self) -> None:
        self._frames = None
        self._container.close()
        super().close()
