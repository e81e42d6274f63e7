"""Tools over HTTP, the bounded model queue (503 + Retry-After), health and request ids."""

from __future__ import annotations

import threading
import time

import pytest

from artemis_model.types import box_iou
from tests.agent.api.conftest import SlowDescriber, upload


@pytest.fixture
def video(client, red_circle):
    return upload(client, red_circle[1]).json()["id"]


def test_ground_track_describe_summarize(client, red_circle, video):
    clip, _ = red_circle
    r = client.post("/tools/ground", json={"video_id": video, "query": "the red circle"})
    assert r.status_code == 200, r.text
    targets = r.json()["targets"]
    assert [t["label"] for t in targets] == ["red circle"]
    assert box_iou(targets[0]["boxes"][5], clip.truth_box(0, 5)) > 0.5

    box = list(clip.truth_box(0, 0))
    r = client.post("/tools/track", json={"video_id": video, "box": box, "frame_idx": 0})
    assert r.status_code == 200, r.text
    trk = r.json()
    assert (trk["width"], trk["height"], len(trk["boxes"])) == (160, 120, 16)
    assert box_iou(trk["boxes"][12], clip.truth_box(0, 12)) > 0.5

    r = client.post("/tools/describe", json={"video_id": video, "box": box, "question": "What does it do?"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert "red circle" in d["answer"] and "right" in d["answer"]
    assert d["question"] == "What does it do?" and d["selected_frames"][0] == 0

    r = client.post(
        "/tools/summarize",
        json={"texts": ["The red circle moves right.", "It stops."], "instruction": "sum up"},
    )
    assert r.status_code == 200 and r.json()["text"] == "The red circle moves right. It stops."
    desc = {
        "target_id": 0,
        "label": "red circle",
        "text": "The red circle moves right.",
        "span": [0, 15],
        "frame_idx": 0,
        "box": box,
    }
    r = client.post("/tools/summarize", json={"texts": [desc], "instruction": "What happens?"})
    assert r.status_code == 200 and "red circle (target 0, frames 0-15)" in r.json()["text"]


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/tools/track", {"box": [30, 30, 10, 10]}, "inverted"),
        ("/tools/track", {"box": [0, 0, 10, 10], "frame_idx": 99}, "out of range"),
        ("/tools/describe", {"box": [1000, 0, 1010, 10]}, "outside"),
        ("/tools/describe", {"box": [1, 2, 3]}, "box"),
        ("/tools/ground", {"query": 5}, "query"),
        ("/tools/summarize", {"texts": "abc"}, "texts"),
    ],
)
def test_tools_bad_input_is_422(client, video, path, body, words):
    if path != "/tools/summarize":
        body = {"video_id": video, **body}
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_tools_unknown_video_is_404(client):
    r = client.post("/tools/ground", json={"video_id": "a" * 32, "query": "x"})
    assert r.status_code == 404 and "a" * 32 in r.json()["detail"]


def _describe_in_thread(client, video, results, key):
    def run():
        results[key] = client.post("/tools/describe", json={"video_id": video, "box": [20, 20, 50, 50]})

    t = threading.Thread(target=run)
    t.start()
    return t


def test_queue_full_is_503_with_retry_after(make_client, red_circle):
    slow = SlowDescriber(1.0)
    client = make_client(describer=slow, queue_size=1)
    video = upload(client, red_circle[1]).json()["id"]
    worker = client.app.state.runtime.worker
    results: dict = {}
    a = _describe_in_thread(client, video, results, "a")
    assert slow.started.wait(10)
    b = _describe_in_thread(client, video, results, "b")
    deadline = time.time() + 5
    while worker.waiting < 1 and time.time() < deadline:
        time.sleep(0.01)
    r = client.post("/tools/describe", json={"video_id": video, "box": [20, 20, 50, 50]})
    assert r.status_code == 503, r.text
    assert "busy" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
    cid = client.post("/conversations", json={"video_id": video}).json()["id"]
    r = client.post(f"/conversations/{cid}/messages", json={"text": "what is the red circle doing?"})
    assert r.status_code == 503 and r.headers["retry-after"]
    a.join(10)
    b.join(10)
    assert results["a"].status_code == 200 and results["b"].status_code == 200
    assert worker.stats()["rejected"] == 2
    assert client.get("/readyz").json()["worker"]["waiting"] == 0


def test_waiting_too_long_is_503(make_client, red_circle):
    slow = SlowDescriber(1.5)
    client = make_client(describer=slow, queue_size=4, queue_timeout_s=0.3)
    video = upload(client, red_circle[1]).json()["id"]
    results: dict = {}
    a = _describe_in_thread(client, video, results, "a")
    assert slow.started.wait(10)
    t0 = time.time()
    r = client.post("/tools/describe", json={"video_id": video, "box": [20, 20, 50, 50]})
    assert r.status_code == 503 and "waited 0.3 s" in r.json()["detail"]
    assert time.time() - t0 < 1.4
    a.join(10)
    assert results["a"].status_code == 200
    assert client.app.state.runtime.worker.waiting == 0


def test_health_ready_and_request_ids(client):
    assert client.get("/healthz").json() == {"status": "ok", "model": None, "worker": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "heuristic"
    r = client.get("/videos", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    r = client.get("/videos/" + "0" * 32, headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(r.headers["x-request-id"]) == 32 and r.json()["request_id"] == r.headers["x-request-id"]
    a, b = client.get("/healthz"), client.get("/healthz")
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


def test_request_id_in_logs(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="agent.api.access"):
        client.get("/videos", headers={"X-Request-ID": "log-me-42"})
    rec = [r for r in caplog.records if r.name == "agent.api.access" and "/videos" in r.getMessage()]
    assert rec and getattr(rec[-1], "request_id", None) == "log-me-42" or "log-me-42" in caplog.text
