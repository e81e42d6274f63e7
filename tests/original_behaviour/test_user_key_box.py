"""Issue #18, point 7: the user's box reaches the describer as its key box, unchanged, on its frame.

A red square moves down; the user draws ``(56, 94, 83, 120)`` on frame 10, where the tracked box of frame 0 is
about ``(56, 38, 83, 64)``. Whatever the entry point (the Python tools, the agent graph, ``artemis chat``,
``artemis describe``, the service's chat route, ``/v1/chat/completions``, ``/tools/describe``), a recording
describer must receive frame 10 and exactly that box, while the track still gives the other frames' boxes.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.api import Settings, create_app
from agent.deps import AgentDeps
from agent.graph import ask, build_agent, final_state, sqlite_checkpointer
from artemis_model.types import box_iou
from cli.main import app
from tests.agent.api.conftest import parse_sse, upload
from tests.clipgen import Obj, make_clip, write_mp4
from tests.original_behaviour.recording import RecordingBatchDescriber, RecordingDescriber
from tools.describers import EMBEDDED_MODEL_DIR, ModelDescriber, has_model
from tools.grounding.backends import WORLD_GROUNDING
from tools.refer import refer, refer_segments, refer_targets
from tools.runtime import Runtime
from tools.schemas import Segment
from tools.track import user_target
from tools.video import load_video

USER_FRAME = 10
USER_BOX = (56.0, 94.0, 83.0, 120.0)
FRAME0_BOX = (56.0, 38.0, 83.0, 64.0)


@pytest.fixture(scope="module")
def falling_square(tmp_path_factory):
    """A red square (26 px) falling from y=51 to y=113 over 12 frames of 160x144: on frame 10 it fills
    ``USER_BOX``, on frame 0 ``FRAME0_BOX``."""
    clip = make_clip(
        [Obj("red", "square", (69.5, 51.0), (69.5, 112.6), radius=13)], num_frames=12, size=(160, 144)
    )
    assert box_iou(clip.truth_box(0, USER_FRAME), USER_BOX) > 0.9
    assert box_iou(clip.truth_box(0, 0), FRAME0_BOX) > 0.9
    return clip, write_mp4(clip.frames, tmp_path_factory.mktemp("key_box") / "falling.mp4")


def _assert_received_the_user_box(describer: RecordingDescriber) -> None:
    assert describer.received == [(USER_FRAME, USER_BOX)]


# -- the Python tools ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [RecordingDescriber, RecordingBatchDescriber])
def test_tools_refer_targets_sends_the_user_box_on_its_frame(falling_square, kind):
    _, path = falling_square
    video = load_video(path)
    target = user_target(video, USER_BOX, frame_idx=USER_FRAME)
    assert target.key_box() == (USER_FRAME, USER_BOX)
    tracked_frame0 = target.box_at(0)
    assert tracked_frame0 is not None and box_iou(tracked_frame0, FRAME0_BOX) > 0.5, "the track is kept"
    describer = kind()
    [out] = refer_targets(video, [target], describer=describer)
    _assert_received_the_user_box(describer)
    assert (out.frame_idx, out.box) == (USER_FRAME, USER_BOX)
    if isinstance(describer, RecordingBatchDescriber):
        [trk] = describer.tracks
        assert trk.boxes[USER_FRAME] == USER_BOX and trk.boxes[0] == tracked_frame0


def test_tools_refer_sends_the_user_box_on_its_frame(falling_square):
    describer = RecordingDescriber()
    desc = refer(falling_square[1], USER_BOX, frame_idx=USER_FRAME, describer=describer)
    _assert_received_the_user_box(describer)
    assert (desc.frame_idx, desc.box) == (USER_FRAME, USER_BOX)


def test_tools_refer_segments_keeps_the_user_box_in_its_segment(falling_square):
    _, path = falling_square
    video = load_video(path)
    target = user_target(video, USER_BOX, frame_idx=USER_FRAME)
    describer = RecordingDescriber()
    segs = [Segment(index=0, start=0, end=6), Segment(index=1, start=6, end=12)]
    first, second = refer_segments(video, target, segs, describer=describer)
    # segment 0 has no user box: its frame nearest to the key frame (5); segment 1 holds frame 10 (4 in it)
    assert describer.received == [(5, target.box_at(5)), (USER_FRAME - 6, USER_BOX)]
    assert (first.frame_idx, second.frame_idx, second.box) == (5, USER_FRAME, USER_BOX)


@pytest.mark.skipif(not has_model(EMBEDDED_MODEL_DIR), reason="the embedded world model is absent")
def test_the_model_itself_is_keyed_on_the_user_box(falling_square):
    """Through the real batched pipeline: the key frame fed to the model first is the user's, with its box."""
    _, path = falling_square
    video = load_video(path)
    model = ModelDescriber.from_pretrained(EMBEDDED_MODEL_DIR)
    [out] = refer_targets(video, [user_target(video, USER_BOX, frame_idx=USER_FRAME)], describer=model)
    assert (out.frame_idx, out.box) == (USER_FRAME, USER_BOX)
    assert out.selected_frames[0] == USER_FRAME


# -- the agent ----------------------------------------------------------------------------------------------


def test_agent_sends_the_user_box_on_its_frame_and_keeps_it_for_follow_ups(falling_square, tmp_path):
    _, path = falling_square
    describer = RecordingBatchDescriber()
    graph = build_agent(
        AgentDeps(Runtime(grounding_settings=WORLD_GROUNDING, describer=describer)),
        checkpointer=sqlite_checkpointer(tmp_path / "m.db"),
    )
    list(ask(graph, "t", "What is the boxed object doing?", video=str(path), box=USER_BOX, frame_idx=10))
    _assert_received_the_user_box(describer)
    state = final_state(graph, "t")
    [ref] = [s for s in state["steps"] if s.node == "refer"]
    assert ref.input["frame_idx"] == USER_FRAME and tuple(ref.input["box"]) == USER_BOX
    list(ask(graph, "t", "What does it do?"))  # the previous target, still keyed on the user's box
    assert describer.received[1] == (USER_FRAME, USER_BOX)


# -- the CLI ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_recorder(monkeypatch) -> RecordingBatchDescriber:
    """Every CLI command's describer (built by the one factory) is the recorder."""
    describer = RecordingBatchDescriber()
    monkeypatch.setattr("tools.describers.build_describer", lambda choice, **kwargs: describer)
    return describer


def test_cli_chat_sends_the_user_box_on_its_frame(falling_square, cli_recorder, tmp_path):
    _, path = falling_square
    box = ",".join(f"{v:g}" for v in USER_BOX)
    out = CliRunner().invoke(
        app,
        ["chat", str(path), "What is the boxed object doing?", "--box", box, "--frame", "10"]
        + ["--db", str(tmp_path / "c.sqlite")],
    )
    assert out.exit_code == 0, out.output
    _assert_received_the_user_box(cli_recorder)
    assert f"refer({json.dumps({'target_id': 0, 'frame_idx': 10, 'box': list(USER_BOX)})})" in out.output


def test_cli_describe_sends_the_user_box_on_its_frame(falling_square, cli_recorder):
    _, path = falling_square
    box = ",".join(f"{v:g}" for v in USER_BOX)
    out = CliRunner().invoke(app, ["describe", str(path), "--box", box, "--frame", "10"])
    assert out.exit_code == 0, out.output
    _assert_received_the_user_box(cli_recorder)


# -- the service --------------------------------------------------------------------------------------------


@pytest.fixture
def service(falling_square, tmp_path):
    """(client, video id, recorder): the service with the recording describer and the clip uploaded."""
    describer = RecordingBatchDescriber()
    with TestClient(
        create_app(Settings(data_dir=tmp_path / "data", grounding_backend="offline"), describer=describer)
    ) as client:
        vid = upload(client, falling_square[1].read_bytes()).json()["id"]
        yield client, vid, describer


def test_service_chat_route_sends_the_user_box_on_its_frame(service):
    client, vid, describer = service
    cid = client.post("/conversations", json={"video_id": vid}).json()["id"]
    body = {"text": "What is the boxed object doing?", "box": list(USER_BOX), "frame_idx": USER_FRAME}
    with client.stream("POST", f"/conversations/{cid}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        events = parse_sse(r.iter_lines())
    assert dict(events)["done"]["status"] == "done"
    _assert_received_the_user_box(describer)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_completions_sends_the_user_box_on_its_frame(service, stream):
    client, vid, describer = service
    body = {
        "model": "artemis",
        "messages": [{"role": "user", "content": "What is the boxed object doing?"}],
        "video_id": vid,
        "box": list(USER_BOX),
        "frame_idx": USER_FRAME,
        "stream": stream,
    }
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]")
    else:
        assert r.json()["artemis"]["status"] == "done"
    _assert_received_the_user_box(describer)


def test_service_describe_tool_sends_the_user_box_on_its_frame(service):
    client, vid, describer = service
    r = client.post("/tools/describe", json={"video_id": vid, "box": list(USER_BOX), "frame_idx": USER_FRAME})
    assert r.status_code == 200, r.text
    assert (r.json()["frame_idx"], tuple(r.json()["box"])) == (USER_FRAME, USER_BOX)
    _assert_received_the_user_box(describer)
