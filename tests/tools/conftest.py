from __future__ import annotations

import pytest

from tests.clipgen import Obj, make_clip, write_mp4


@pytest.fixture(scope="session")
def two_reds_clip():
    """A red circle moving right, a red square moving left, a blue star moving down (16 frames, 160x120)."""
    return make_clip(
        [
            Obj("red", "circle", (25, 25), (130, 30), radius=12),
            Obj("red", "square", (130, 95), (30, 90), radius=11),
            Obj("blue", "star", (80, 30), (80, 95), radius=14),
        ],
        textured=True,
    )


@pytest.fixture(scope="session")
def two_reds_mp4(two_reds_clip, tmp_path_factory):
    return write_mp4(two_reds_clip.frames, tmp_path_factory.mktemp("clips") / "two_reds.mp4")
