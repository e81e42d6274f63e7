"""Write a whole synthetic data set to disk: videos, frame folders, truth, stage 1-3 JSONs, questions.

Layout under ``out`` (all record paths are relative to ``out``, the ``video_folder``)::

    videos/clip_00000.mp4          frames/clip_00000/00000.jpg ...     truth/clip_00000.json
    videos/long_00000.mp4          truth/long_00000.json               (concatenated clips, no frames)
    stage1.json  stage2.json  stage3/synth_ref.json  questions.json  questions_heldout.json  manifest.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synth.datasets import stage1_record, stage2_record, stage3_records
from synth.questions import build_question_set
from synth.video_io import write_frames, write_mp4
from synth.world import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, Clip, concat_clips, generate_clip

logger = logging.getLogger(__name__)
CLIPS_PER_LONG_VIDEO = 3


@dataclass(frozen=True)
class DatasetManifest:
    out: str
    seed: int
    num_videos: int
    num_long_videos: int
    width: int
    height: int
    fps: int
    frame_ext: str
    files: dict[str, str]
    counts: dict[str, int]


def clip_seeds(seed: int, num_videos: int) -> list[int]:
    """The per-clip seeds of a data set (deterministic in ``seed``)."""
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, size=num_videos)]


def _dump(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))


def write_dataset(
    out: str | Path,
    num_videos: int,
    seed: int,
    *,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: int = DEFAULT_FPS,
    frame_ext: str = "jpg",
    num_long_videos: int | None = None,
) -> DatasetManifest:
    """Generate ``num_videos`` clips from ``seed`` and write every artefact; returns the manifest."""
    if num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {num_videos}")
    out = Path(out)
    n_long = num_videos // (2 * CLIPS_PER_LONG_VIDEO) if num_long_videos is None else num_long_videos
    if n_long * CLIPS_PER_LONG_VIDEO > num_videos:
        raise ValueError(
            f"{n_long} long videos need {n_long * CLIPS_PER_LONG_VIDEO} clips, only {num_videos}"
        )
    text_rng = np.random.default_rng([seed, 1])
    stage1, stage2, stage3 = [], [], []
    videos: list[tuple[str, str, Clip]] = []
    clips: list[Clip] = []
    for i, cs in enumerate(clip_seeds(seed, num_videos)):
        clip = generate_clip(cs, width=width, height=height, fps=fps)
        clips.append(clip)
        name = f"clip_{i:05d}"
        video, frame_dir = f"videos/{name}.mp4", f"frames/{name}"
        write_mp4(clip, out / video)
        frame_ids = write_frames(clip, out / frame_dir, ext=frame_ext)
        (out / "truth").mkdir(parents=True, exist_ok=True)
        (out / "truth" / f"{name}.json").write_text(clip.truth_json())
        stage1.append(stage1_record(clip, name, video, text_rng))
        stage2.append(stage2_record(clip, name, video, text_rng))
        stage3 += stage3_records(clip, name, video, frame_dir, frame_ids, text_rng)
        videos.append((name, video, clip))
    for k in range(n_long):
        long_clip = concat_clips(clips[k * CLIPS_PER_LONG_VIDEO : (k + 1) * CLIPS_PER_LONG_VIDEO])
        name = f"long_{k:05d}"
        write_mp4(long_clip, out / f"videos/{name}.mp4")
        (out / "truth" / f"{name}.json").write_text(long_clip.truth_json())
        videos.append((name, f"videos/{name}.mp4", long_clip))
    questions = build_question_set(videos, seed)
    heldout = build_question_set(videos, seed + 1, heldout=True)
    files = {
        "stage1": "stage1.json",
        "stage2": "stage2.json",
        "stage3": "stage3/synth_ref.json",
        "questions": "questions.json",
        "questions_heldout": "questions_heldout.json",
    }
    for key, data in (
        ("stage1", stage1),
        ("stage2", stage2),
        ("stage3", stage3),
        ("questions", questions),
        ("questions_heldout", heldout),
    ):
        _dump(data, out / files[key])
    manifest = DatasetManifest(
        out=str(out),
        seed=seed,
        num_videos=num_videos,
        num_long_videos=n_long,
        width=width,
        height=height,
        fps=fps,
        frame_ext=frame_ext,
        files=files,
        counts={
            "stage1": len(stage1),
            "stage2": len(stage2),
            "stage3": len(stage3),
            "questions": len(questions),
            "questions_heldout": len(heldout),
        },
    )
    _dump(asdict(manifest), out / "manifest.json")
    logger.info("wrote %d clips, %d long videos to %s: %s", num_videos, n_long, out, manifest.counts)
    return manifest
