"""Evidence images: the boxes are drawn where the track says, on the selected frames, and the GIF covers the video."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artemis_model.evidence import PALETTE, save_evidence
from artemis_model.types import Description, Track
from artemis_model.video.array import ArrayVideo
from tests.clipgen import make_squares


def test_save_evidence_draws_selected_frames_and_gif(tmp_path):
    clip = make_squares(num_frames=20, num_targets=2)
    video = ArrayVideo(clip.frames)
    tracks = [Track(boxes=tuple(b), width=64, height=48) for b in clip.boxes]
    desc = Description(
        answer="x",
        question="q",
        frame_idx=2,
        box=tracks[0].boxes[2],
        track=tracks[0],
        selected_frames=(2, 5, 9, 9, 17),
    )
    paths = save_evidence(
        video, [desc, tracks[1]], tmp_path, labels=["a", "b"], max_gif_frames=10, track_frames=3
    )
    names = [p.name for p in paths]
    assert names[:4] == ["a_frame000002.jpg", "a_frame000005.jpg", "a_frame000009.jpg", "a_frame000017.jpg"]
    assert sum(n.startswith("b_") for n in names) == 3 and names[-1] == "evidence.gif"
    image = np.asarray(Image.open(tmp_path / "a_frame000009.jpg").convert("RGB")).astype(int)
    x1, y1, x2, y2 = (int(v) for v in tracks[0].boxes[9])
    edge = image[y1 + 4 : y2 - 4, x2]  # right edge of the drawn box (below the label)
    assert np.abs(edge - np.array(PALETTE[0])).sum(-1).mean() < 60
    gif = Image.open(tmp_path / "evidence.gif")
    assert gif.n_frames == 10 and gif.size == (64, 48)
