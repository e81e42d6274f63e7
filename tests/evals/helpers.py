"""Fakes and fixture builders shared by the eval tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evals.protocol import EvalRecord
from tests import clipgen


class CountingPredictor:
    """Deterministic fake: the answer is a function of the record; counts the records it was asked about."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[str] = []

    def predict(self, records: list[EvalRecord]) -> list[str]:
        self.calls += 1
        self.seen.extend(r.record_id for r in records)
        out = []
        for r in records:
            x1, y1, x2, y2 = r.key_box
            out.append(
                f"the target {r.video_name} on frame {r.key_frame_idx} at {x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f} "
                f"tracked on {len(r.track)} frames moves"
            )
        return out


def write_frames(folder: Path, n: int, size: tuple[int, int] = (32, 24)) -> list[str]:
    """``n`` small flat JPEG frames named 00000.jpg...; returns the file names."""
    frames = [np.full((size[1], size[0], 3), 10 * i % 255, dtype=np.uint8) for i in range(n)]
    return [p.name for p in clipgen.write_frames(folder, frames, ext="jpg")]


def write_hcstvg(tmp: Path, n_videos: int = 7) -> tuple[Path, Path]:
    """A hand-written HC-STVG-style eval file with frame folders; returns (json path, video root)."""
    root = tmp / "videos"
    records = []
    for v in range(n_videos):
        names = write_frames(root / "frames" / f"vid{v}", 6)
        track = [[2 + v, 3, 20, 18], [], [4, 4, 22, 20], [], [], [5, 5, 25, 21]]
        rec = {
            "video_name": f"vid{v}",
            "caption": f"The person number {v} walks to the left and sits down.",
            "frame_path": f"frames/vid{v}",
            "frame_id": names,
            "track_list": track,
            "clip_path": f"clip/vid{v}.pkl",
        }
        if v % 2 == 0:
            rec["key_frame_id"] = names[2]
            rec["key_frame_box"] = [4, 4, 22, 20]
        else:
            rec["key_frame_id"] = ""
            rec["key_frame_box"] = []
        records.append(rec)
    path = tmp / "hc_stvg_val.json"
    path.write_text(json.dumps(records))
    return path, root


def write_mp4(path: Path, n: int, size: tuple[int, int] = (32, 24), fps: int = 10) -> Path:
    """A small H.264 clip of ``n`` noise frames (seeded) at ``size`` (width, height)."""
    frames = clipgen.noise_frames(n, size[0], size[1], seed=n)
    return clipgen.write_mp4(frames, path, fps, crf=None, container_format="mp4")
