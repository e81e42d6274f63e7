from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel

from tests.clipgen import Obj, make_clip, write_mp4


class ScriptedChatModel(FakeMessagesListChatModel):
    """A fake chat model that replays scripted messages; ``bind_tools`` returns itself (LangGraph 1.2 fakes raise)."""

    def bind_tools(self, tools, **kwargs):
        return self


@pytest.fixture(scope="session")
def reds(tmp_path_factory):
    """Red circle moving right, red square moving left, blue star moving down."""
    clip = make_clip(
        [
            Obj("red", "circle", (25, 25), (130, 30), radius=12),
            Obj("red", "square", (130, 95), (30, 90), radius=11),
            Obj("blue", "star", (80, 30), (80, 95), radius=14),
        ],
        textured=True,
    )
    return clip, str(write_mp4(clip.frames, tmp_path_factory.mktemp("agent") / "reds.mp4"))


@pytest.fixture(scope="session")
def two_circles(tmp_path_factory):
    """A green circle on the left moving down, a yellow circle on the right moving up, an orange square."""
    clip = make_clip(
        [
            Obj("green", "circle", (30, 20), (35, 100), radius=12),
            Obj("yellow", "circle", (125, 100), (120, 20), radius=12),
            Obj("orange", "square", (60, 60), (100, 60), radius=9),
        ],
        num_frames=24,
    )
    return clip, str(write_mp4(clip.frames, tmp_path_factory.mktemp("agent") / "circles.mp4"))
