"""Conversations over HTTP: streamed events, clarification by choice, follow-ups, history, delete, cancel."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from tests.agent.api.conftest import SlowDescriber, ask, upload


def _start(client, data) -> tuple[str, str]:
    vid = upload(client, data).json()["id"]
    cid = client.post("/conversations", json={"video_id": vid, "title": "test"}).json()["id"]
    return vid, cid


def test_message_stream_history_and_delete(client, red_circle):
    clip, data = red_circle
    vid, cid = _start(client, data)
    box = list(clip.truth_box(0, 0))
    events = ask(client, cid, text="What is the boxed object doing?", box=box, frame_idx=0)
    names = [e for e, _ in events]
    assert names[0] == "message" and names[-1] == "done"
    for expected in ("plan", "tool_call", "tool_result", "progress", "answer", "evidence", "tracks"):
        assert expected in names, expected
    assert names.index("plan") < names.index("tool_call") < names.index("answer")
    data_by = {e: d for e, d in events}
    assert "track the user's box" in data_by["plan"]["steps"]
    answer = data_by["answer"]["text"]
    assert "red" in answer and "right" in answer, answer  # the red circle moves to the right
    track = data_by["tracks"]["tracks"][0]["boxes"]
    assert len(track) == 16
    last_truth = clip.truth_box(0, 15)
    assert abs((track[15][0] + track[15][2]) / 2 - (last_truth[0] + last_truth[2]) / 2) < 10
    ev = data_by["evidence"]
    assert ev["targets"][0]["span"] == [0, 15] and ev["frames"]
    img = client.get(ev["frames"][0]["url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert data_by["done"] == {"status": "done", "turn": 1}

    # a follow-up with a pronoun reuses the previous target (memory in the checkpointer)
    events = ask(client, cid, text="Where does it go?")
    plan = dict(events)["plan"]
    assert plan["plan"]["target_source"] == "previous"

    hist = client.get(f"/conversations/{cid}/messages").json()
    assert [m["text"] for m in hist["messages"]] == ["What is the boxed object doing?", "Where does it go?"]
    assert hist["messages"][0]["box"] == box and hist["messages"][0]["status"] == "done"
    assert hist["messages"][0]["answer"] == answer
    assert [t["role"] for t in hist["transcript"]] == ["user", "assistant", "user", "assistant"]
    assert {s["turn"] for s in hist["steps"]} == {1, 2}
    assert hist["pending_clarification"] is None

    assert [c["id"] for c in client.get("/conversations").json()["conversations"]] == [cid]
    assert client.get(f"/conversations?video_id={vid}").json()["conversations"][0]["id"] == cid
    assert client.delete(f"/conversations/{cid}").status_code == 200
    assert client.get(f"/conversations/{cid}").status_code == 404
    assert client.get(f"/conversations/{cid}/messages").status_code == 404
    rt = client.app.state.runtime
    assert rt.graph.get_state({"configurable": {"thread_id": cid}}).values == {}, "memory deleted"


def test_clarification_answered_by_choice(client, two_circles):
    clip, data = two_circles
    _, cid = _start(client, data)
    events = ask(client, cid, text="What is the circle doing?")
    clar = dict(events)["clarification"]
    assert dict(events)["done"]["status"] == "clarification"
    assert [c["number"] for c in clar["candidates"]] == [1, 2]
    assert [c["label"] for c in clar["candidates"]] == ["green circle", "yellow circle"]  # left to right
    hist = client.get(f"/conversations/{cid}/messages").json()
    assert hist["pending_clarification"]["candidates"] == clar["candidates"]

    r = client.post(f"/conversations/{cid}/messages", json={"text": "this one", "choice": 3})
    assert r.status_code == 422 and "choose 1 to 2" in r.json()["detail"]

    events = ask(client, cid, text="the right one", choice=2)
    answer = dict(events)["answer"]["text"]
    assert "yellow" in answer and "up" in answer, answer
    r = client.post(f"/conversations/{cid}/messages", json={"text": "2", "choice": 2})
    assert r.status_code == 409 and "no clarification is pending" in r.json()["detail"]


def test_json_mode_returns_one_document(client, red_circle):
    _, data = red_circle
    _, cid = _start(client, data)
    r = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "What are the red objects doing?"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "done" and "red circle" in body["answer"]
    assert [e["event"] for e in body["events"]][-1] == "done"
    assert body["tracks"] and len(body["tracks"][0]["boxes"]) == 16


def test_a_memory_answer_carries_its_structured_result_and_follow_ups_reuse_the_memory(client, red_circle):
    """Counting is answered from the video's object memory: the answer's structured result is in the evidence,
    and the next question of the conversation ("which object appears first?") queries the kept memory."""
    _, data = red_circle
    _, cid = _start(client, data)
    r = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "How many objects are there?"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    result = body["evidence"]["result"]
    assert (
        result["kind"] == "count" and result["count"] == 2 and body["answer"].startswith("I count 2 objects")
    )
    assert sorted(t["target_id"] for t in body["evidence"]["targets"]) == sorted(result["target_ids"])
    r = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "Which object appears first?"}
    )
    assert r.status_code == 200, r.text
    later = r.json()["evidence"]["result"]
    assert later["kind"] == "order" and later["target_ids"][0] in result["target_ids"]  # the same memory ids


@pytest.mark.parametrize(
    "box, frame_idx, words",
    [
        ([float("nan"), 0, 10, 10], 0, "NaN"),
        ([50, 50, 10, 10], 0, "inverted"),
        ([500, 500, 600, 600], 0, "outside"),
        ([10, 10, 10, 40], 0, "zero area"),
        ([10, 10, 40, 40], 16, "out of range"),
        ([10, 10, 40], 0, "box"),
        (["a", 1, 2, 3], 0, "box"),
    ],
)
def test_bad_boxes_and_frames_are_422(client, red_circle, box, frame_idx, words):
    _, cid = _start(client, red_circle[1])
    body = json.dumps({"text": "what is it?", "box": box, "frame_idx": frame_idx}, allow_nan=True)
    r = client.post(
        f"/conversations/{cid}/messages", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "JSON"),
        ('{"text": ""}', "text"),
        ('{"box": [1, 2, 3, 4]}', "text"),
        ('{"text": "hi", "surprise": 1}', "surprise"),
        ("[1, 2]", "body"),
    ],
)
def test_malformed_bodies_are_422(client, red_circle, content, words):
    _, cid = _start(client, red_circle[1])
    r = client.post(
        f"/conversations/{cid}/messages", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert words.lower() in r.json()["detail"].lower()


def test_unknown_conversation_and_video(client):
    unknown = "f" * 32
    r = client.post(f"/conversations/{unknown}/messages", json={"text": "hi"})
    assert r.status_code == 404 and unknown in r.json()["detail"]
    r = client.post("/conversations", json={"video_id": unknown})
    assert r.status_code == 404
    r = client.post("/conversations", json={"video_id": "../../etc"})
    assert r.status_code == 422 and "32 lowercase hex" in r.json()["detail"]


def test_disconnect_cancels_the_run(make_client, two_circles):
    """A client that goes away mid-stream stops its run: no more describer calls, status 'cancelled'."""
    slow = SlowDescriber(0.4)
    client = make_client(describer=slow)
    _, cid = _start(client, two_circles[1])
    app = client.app
    body = json.dumps({"text": "What are all the objects doing?"}).encode()
    seen: list[bytes] = []

    async def go() -> None:
        got_progress = anyio.Event()
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await got_progress.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.body":
                seen.append(message.get("body", b""))
                if b'"stage": "describe"' in message.get("body", b""):
                    got_progress.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/conversations/{cid}/messages",
            "raw_path": f"/conversations/{cid}/messages".encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
            "client": ("test", 1),
            "server": ("testserver", 80),
            "root_path": "",
        }
        with anyio.fail_after(20):
            await app(scope, receive, send)

    client.portal.call(go)
    deadline = time.time() + 10
    rt = client.app.state.runtime
    while rt.worker.running and time.time() < deadline:
        time.sleep(0.05)
    calls = slow.calls
    msgs = client.get(f"/conversations/{cid}/messages").json()["messages"]
    assert msgs[0]["status"] == "cancelled"
    assert 1 <= calls < 3, "the run stopped before describing all 3 objects"
    time.sleep(0.5)
    assert slow.calls == calls
    # the conversation still works afterwards
    events = ask(client, cid, text="What is the orange square doing?")
    assert dict(events)["done"]["status"] == "done"
