"""Small synthetic training data written by the tests: coloured squares moving on a dark background.

Each clip shows a target square (colour, direction) and a distractor; captions name the target's colour and
motion, so answers depend on the video / the boxed region. Frames are 40x32 PNG files (non-square on purpose).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 220, 40)}
MOTIONS = {"moves right": (1, 0), "moves left": (-1, 0), "moves down": (0, 1), "moves up": (0, -1)}
WIDTH, HEIGHT, SIDE, NUM_FRAMES = 40, 32, 12, 12


def _clip(
    rng: np.random.Generator, colour: str, motion: str, other: str
) -> tuple[np.ndarray, list[list[float]]]:
    dx, dy = MOTIONS[motion]
    x0 = 14 - dx * 10 + int(rng.integers(-2, 3))
    y0 = 10 - dy * 8 + int(rng.integers(-2, 3))
    frames = np.full((NUM_FRAMES, HEIGHT, WIDTH, 3), 20, dtype=np.uint8)
    boxes = []
    for t in range(NUM_FRAMES):
        x = int(np.clip(x0 + dx * 2 * t, 0, WIDTH - SIDE))
        y = int(np.clip(y0 + dy * 1.5 * t, 0, HEIGHT - SIDE))
        frames[t, 0:6, 0:6] = COLOURS[other]  # a small static distractor in the corner
        frames[t, y : y + SIDE, x : x + SIDE] = COLOURS[colour]
        boxes.append([float(x), float(y), float(x + SIDE), float(y + SIDE)])
    return frames, boxes


def _write_frames(folder: Path, frames: np.ndarray) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for t, frame in enumerate(frames):
        name = f"{t:05d}.png"
        Image.fromarray(frame).save(folder / name)
        names.append(name)
    return names


def make_clips(root: Path, count: int, seed: int) -> list[dict]:
    """Write ``count`` clips under ``root/clips``; return their truth (folder, colour, motion, boxes)."""
    rng = np.random.default_rng(seed)
    colours, motions = list(COLOURS), list(MOTIONS)
    out = []
    for i in range(count):
        colour = colours[int(rng.integers(len(colours)))]
        motion = motions[int(rng.integers(len(motions)))]
        other = colours[(colours.index(colour) + 1 + int(rng.integers(len(colours) - 1))) % len(colours)]
        frames, boxes = _clip(rng, colour, motion, other)
        folder = f"clips/c{seed}_{i:03d}"
        names = _write_frames(root / folder, frames)
        out.append({"folder": folder, "names": names, "colour": colour, "motion": motion, "boxes": boxes})
    return out


def llava_records(root: Path, count: int, seed: int) -> list[dict]:
    """Stage 1-2 records: video captions, single images (first frame) and text-only turns."""
    clips = make_clips(root, count, seed)
    records = []
    for i, c in enumerate(clips):
        caption = f"The {c['colour']} square {c['motion']}."
        if i % 4 == 3:
            records.append(
                {
                    "id": f"t{seed}_{i}",
                    "conversations": [
                        {"from": "human", "value": "What is a square?"},
                        {"from": "gpt", "value": "A square is a shape."},
                    ],
                }
            )
        elif i % 4 == 2:
            records.append(
                {
                    "id": f"i{seed}_{i}",
                    "image": f"{c['folder']}/{c['names'][0]}",
                    "conversations": [
                        {"from": "human", "value": "<image>\nWhat is in the image?"},
                        {"from": "gpt", "value": f"A {c['colour']} square."},
                    ],
                }
            )
        else:
            records.append(
                {
                    "id": f"v{seed}_{i}",
                    "video": c["folder"],
                    "conversations": [
                        {"from": "human", "value": "<video>\nDescribe the video."},
                        {"from": "gpt", "value": caption},
                    ],
                }
            )
    return records


def videoref_records(root: Path, count: int, seed: int) -> list[dict]:
    """Stage 3 records with edge cases: empty track entries, missing key frames, a question with <bbox>."""
    clips = make_clips(root, count, seed)
    records = []
    for i, c in enumerate(clips):
        tracks = [list(b) for b in c["boxes"]]
        for t in (1, 5, 9):
            tracks[t] = []  # untracked frames
        rec = {"caption": f"The {c['colour']} square {c['motion']}.", "track_list": tracks}
        if i % 2:
            rec["video"] = c["folder"]
        else:
            rec["frame_path"], rec["frame_id"] = c["folder"], c["names"]
        if i % 3 == 0:
            rec["key_frame_id"], rec["key_frame_box"] = (
                (c["names"][2] if "frame_id" in rec else 2),
                c["boxes"][2],
            )
        elif i % 3 == 1:
            rec["key_frame_id"], rec["key_frame_box"] = "", []
        if i % 5 == 0:
            rec["question"] = "What is the <bbox> doing in this video?"
        records.append(rec)
    return records


def write_json(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path
