"""Hardening (issue #22): bad input is a 4xx with a request id (never a 500 that drops the connection),
the missing checks, and crash recovery of turns left running."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from tests.agent.api.conftest import upload

BIG = 2**63  # one past SQLite's largest integer


def _start(client, data) -> tuple[str, str]:
    vid = upload(client, data).json()["id"]
    cid = client.post("/conversations", json={"video_id": vid}).json()["id"]
    return vid, cid


def _raw_json(client, path: str, body: str, **kwargs):
    return client.post(
        path, content=body.encode("utf-8"), headers={"content-type": "application/json"}, **kwargs
    )


def _is_clean_4xx(r, status: int = 422) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["request_id"] == r.headers["x-request-id"] and len(body["request_id"]) >= 8
    assert body["status"] == status and body["detail"]
    return body


def test_huge_integers_and_lone_surrogates_are_422_with_request_id(client, red_circle):
    vid, cid = _start(client, red_circle[1])
    cases = [
        ("GET", f"/conversations/{cid}/messages/{BIG}/evidence/0", None, "message_id"),
        ("GET", f"/conversations/{cid}/messages/1/evidence/{BIG}", None, "frame_idx"),
        ("GET", f"/videos/{vid}/frames/{BIG}", None, "frame_idx"),
        (
            "POST",
            f"/conversations/{cid}/messages?stream=false",
            json.dumps({"text": "hi", "box": [1, 1, 9, 9], "frame_idx": BIG}),
            "frame_idx",
        ),
        (
            "POST",
            "/v1/chat/completions",
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "video_id": vid, "frame_idx": BIG}),
            "frame_idx",
        ),
        (
            "POST",
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": "\\ud800"}], "video_id": "' + vid + '"}',
            "surrogate",
        ),
        ("POST", "/tools/summarize", '{"texts": ["\\ud800"], "instruction": "x"}', "surrogate"),
        (
            "POST",
            f"/conversations/{cid}/messages?stream=false",
            '{"text": "what is it \\udfff?"}',
            "text",
        ),
    ]
    for method, path, body, words in cases:
        if body is None:
            r = client.request(method, path)
        else:
            r = _raw_json(client, path, body)
        got = _is_clean_4xx(r)
        assert words in got["detail"], (path, got["detail"])
        assert r.headers.get("connection", "keep-alive") != "close"
    # none of the rejected calls left a conversation or a message behind
    assert [c["id"] for c in client.get("/conversations").json()["conversations"]] == [cid]
    assert client.get(f"/conversations/{cid}/messages").json()["messages"] == []


def test_an_unexpected_error_is_a_500_with_request_id(client):
    """A bug still answers a JSON 500 that names the request (Starlette's own handler would not)."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    client.app.include_router(router)
    r = client.get("/boom", headers={"X-Request-ID": "trace-me-1"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "trace-me-1"
    assert r.json()["request_id"] == "trace-me-1" and r.json()["code"] == "internal_error"


# ---- the missing checks (finding 7) -------------------------------------------------------------------------
def test_frame_idx_without_box_is_422_on_both_routes(client, red_circle):
    vid, cid = _start(client, red_circle[1])
    r = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "hi", "frame_idx": 1_000_000}
    )
    assert "without a box" in _is_clean_4xx(r)["detail"]
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "video_id": vid, "frame_idx": 3},
    )
    assert "without a box" in _is_clean_4xx(r)["detail"]
    assert len(client.get("/conversations").json()["conversations"]) == 1, "no empty conversation"


@pytest.mark.parametrize("blank", ["   ", "\n\t "])
def test_blank_questions_are_422_on_both_routes(client, red_circle, blank):
    vid, cid = _start(client, red_circle[1])
    r = client.post(f"/conversations/{cid}/messages?stream=false", json={"text": blank})
    assert "whitespace" in _is_clean_4xx(r)["detail"]
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": blank}], "video_id": vid}
    )
    assert "whitespace" in _is_clean_4xx(r)["detail"]
    assert client.get(f"/conversations/{cid}/messages").json()["messages"] == []


def test_long_questions_are_refused_not_cut(client, red_circle):
    vid, cid = _start(client, red_circle[1])
    long = "what " * 1000  # 5,000 characters
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": long}], "video_id": vid}
    )
    assert "4000" in _is_clean_4xx(r)["detail"]
    r = client.post(f"/conversations/{cid}/messages?stream=false", json={"text": long})
    assert "4000" in _is_clean_4xx(r)["detail"]


def test_big_json_bodies_are_413_before_being_read(make_client):
    client = make_client(max_body_bytes=64 * 1024)
    body = json.dumps({"texts": ["a" * (200 * 1024)], "instruction": "x"})
    r = _raw_json(client, "/tools/summarize", body)
    assert "over the limit of 65536 bytes" in _is_clean_4xx(r, 413)["detail"]

    def chunked():  # no Content-Length: the limit counts what arrives
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192].encode()

    r = client.post("/tools/summarize", content=chunked(), headers={"content-type": "application/json"})
    assert "over the limit" in _is_clean_4xx(r, 413)["detail"]
    small = _raw_json(client, "/tools/summarize", json.dumps({"texts": ["a b"], "instruction": "x"}))
    assert small.status_code == 200, small.text


def _png_bytes() -> bytes:
    ok, buf = cv2.imencode(".png", np.full((48, 64, 3), 200, np.uint8))
    assert ok
    return buf.tobytes()


def test_an_image_renamed_mp4_is_415(client, tmp_path):
    r = upload(client, _png_bytes(), name="holiday.mp4")
    body = _is_clean_4xx(r, 415)
    assert "image" in body["detail"] and "PNG" in body["detail"]
    assert client.get("/videos").json()["videos"] == []


def test_upload_errors_never_show_the_data_path(make_client, tmp_path):
    data_dir = tmp_path / "secret-place"
    client = make_client(data_dir=data_dir)
    for payload in (b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100, io.BytesIO(b"not a video at all").read()):
        r = upload(client, payload, name="x.mp4")
        assert 400 <= r.status_code < 500
        assert str(tmp_path) not in r.text and "secret-place" not in r.text, r.text


# ---- crash recovery (finding 5) -----------------------------------------------------------------------------
def test_a_turn_cut_off_by_a_dead_process_is_interrupted_after_restart(make_client, red_circle, tmp_path):
    """A real process is killed (SIGKILL) while its turn runs: at the next start that turn is ``interrupted``;
    the video, the finished turn and the memory stay; the conversation goes on."""
    import subprocess
    import sys
    import textwrap

    data_dir = tmp_path / "data"
    client = make_client(data_dir=data_dir)
    vid, cid = _start(client, red_circle[1])
    done = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "What are the red objects doing?"}
    )
    assert done.status_code == 200, done.text
    client.__exit__(None, None, None)

    # another process takes the data_dir, stores a question as a turn does, then dies while it "runs"
    script = textwrap.dedent(
        f"""
        import os, signal
        from agent.api.storage import Store
        store = Store({str(data_dir)!r})
        store.add_message({cid!r}, text="and then?", box=None, frame_idx=None, choice=None)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env={"PYTHONPATH": str(_repo())})
    assert proc.returncode == -9

    client = make_client(data_dir=data_dir)
    msgs = client.get(f"/conversations/{cid}/messages").json()["messages"]
    assert [m["status"] for m in msgs] == ["done", "interrupted"]
    assert "cut off" in msgs[1]["answer"] and msgs[0]["answer"] == done.json()["answer"]
    assert client.get(f"/videos/{vid}/frames/3").status_code == 200
    again = client.post(f"/conversations/{cid}/messages?stream=false", json={"text": "Where does it go?"})
    assert again.status_code == 200 and again.json()["status"] == "done"
    assert client.app.state.runtime.store.interrupted == 1


def test_one_process_per_data_dir(make_client, tmp_path):
    from agent.api.storage import DataDirBusyError, Store

    make_client(data_dir=tmp_path / "data")
    with pytest.raises(DataDirBusyError, match="one process per data_dir"):
        Store(tmp_path / "data")


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[3]


# ---- Retry-After and the turn's wall-time budget (finding 1) ------------------------------------------------
def test_a_turn_over_its_budget_is_stopped_and_shown_so(make_client, red_circle):
    from tests.agent.api.conftest import SlowDescriber

    clip, data = red_circle
    client = make_client(describer=SlowDescriber(0.6), turn_budget_s=0.3)
    vid, cid = _start(client, data)
    r = client.post(
        f"/conversations/{cid}/messages?stream=false",
        json={"text": "What is it doing?", "box": list(clip.truth_box(0, 0))},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "timed_out" and body["answer"] == ""
    assert {"event": "cancelled", "data": {"reason": "timeout", "budget_s": 0.3}} in body["events"]
    msgs = client.get(f"/conversations/{cid}/messages").json()["messages"]
    assert [m["status"] for m in msgs] == ["timed_out"], "stored as stopped, not left running"
    assert client.app.state.runtime.worker.stats()["running"] == 0


def test_retry_after_is_the_jobs_ahead_times_their_measured_mean(make_client, red_circle):
    import threading
    import time

    from tests.agent.api.conftest import SlowDescriber

    clip, data = red_circle
    slow = SlowDescriber(1.5)  # long enough that a guess (1 s, or a smoothed 1.1 s) would be told apart
    client = make_client(describer=slow, queue_size=1)
    vid, cid = _start(client, data)
    worker = client.app.state.runtime.worker
    box = list(clip.truth_box(0, 0))
    t0 = time.perf_counter()
    first = client.post(
        f"/conversations/{cid}/messages?stream=false", json={"text": "What is it?", "box": box}
    )
    assert first.status_code == 200
    measured = worker.mean_job_s("turn")
    assert 1.5 <= measured <= time.perf_counter() - t0

    # one turn running, one waiting: the next one is told to come back after both (2 x the measured mean)
    slow.started.clear()
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                client.post(
                    f"/conversations/{cid}/messages?stream=false", json={"text": "And now?", "box": box}
                )
            )
        )
        for _ in range(2)
    ]
    threads[0].start()
    assert slow.started.wait(10)
    threads[1].start()
    deadline = time.time() + 5
    while worker.waiting < 1 and time.time() < deadline:
        time.sleep(0.01)
    r = client.post(f"/conversations/{cid}/messages?stream=false", json={"text": "Me too?", "box": box})
    assert r.status_code == 503, r.text
    import math

    ahead_s = 2 * worker.mean_job_s("turn")
    assert int(r.headers["retry-after"]) == max(1, math.ceil(ahead_s)), (r.headers["retry-after"], ahead_s)
    for t in threads:
        t.join(20)
    assert [x.status_code for x in results] == [200, 200]
    assert client.get("/readyz").json()["worker"]["mean_job_s"]["turn"] > 1.5


# ---- the contract (finding 6) -------------------------------------------------------------------------------
def test_a_rejected_chat_completion_leaves_no_conversation(client, red_circle):
    vid = upload(client, red_circle[1]).json()["id"]
    for extra in ({"box": [90, 90, 10, 10]}, {"box": [10, 10, 60, 60], "frame_idx": 99}):
        r = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "video_id": vid, **extra},
        )
        _is_clean_4xx(r)
    assert client.get("/conversations").json()["conversations"] == []


def test_every_error_status_is_documented_with_the_error_body(client):
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"]["ErrorOut"]
    assert error["properties"]["detail"]["type"] == "string"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = {int(c) for c in op["responses"]}
            if path not in ("/healthz", "/readyz"):
                assert {401, 503} <= codes, (method, path, codes)
            if op.get("parameters") or op.get("requestBody"):
                assert 422 in codes, (method, path)
            if op.get("requestBody"):
                assert {400, 413} <= codes, (method, path)
            if "{" in path:
                assert 404 in codes, (method, path)
            for code, response in op["responses"].items():
                if int(code) >= 400 and int(code) != 499:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
    for path in ("/conversations/{conversation_id}/messages", "/v1/chat/completions"):
        assert {"404", "409", "499"} <= set(doc["paths"][path]["post"]["responses"])
