"""Security: traversal attempts in every string field stay inside data_dir; the API key is enforced."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from tests.agent.api.conftest import ask, no_files_outside, upload

TRAVERSALS = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "/proc/self/environ",
    "file:///etc/passwd",
    "\x00../../etc/passwd",
]


def _no_leak(body: bytes) -> None:
    assert b"root:x:0:0" not in body and b"PATH=" not in body


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_traversal_in_every_string_field(make_client, red_circle, tmp_path, evil):
    data_dir = tmp_path / "data"
    client = make_client(data_dir=data_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    with no_files_outside(data_dir, tmp_path, outside):
        r = upload(client, red_circle[1], name=evil)  # the file name is display-only
        assert r.status_code == 201
        vid = r.json()["id"]
        assert "/" not in r.json()["filename"] and "\\" not in r.json()["filename"]
        assert os.listdir(data_dir / "videos") == [vid]
        for raw in (evil, evil.replace("%2F", "/").replace("%2f", "/")):
            sent = quote(raw, safe="/%.:\\")
            for method, path in [
                ("GET", f"/videos/{sent}"),
                ("GET", f"/videos/{sent}/file"),
                ("GET", f"/videos/{sent}/frames/0"),
                ("DELETE", f"/videos/{sent}"),
                ("GET", f"/conversations/{sent}/messages"),
                ("GET", f"/videos/{vid}/frames/{sent}"),
            ]:
                r = client.request(method, path)
                assert r.status_code < 500, (method, path, r.status_code)
                assert r.status_code != 200 or r.headers["content-type"].startswith("text/html"), (
                    method,
                    path,
                )
                _no_leak(r.content)
        for path, body in [
            ("/conversations", {"video_id": evil}),
            ("/conversations", {"video_id": vid, "title": evil}),
            ("/tools/ground", {"video_id": evil, "query": "x"}),
            ("/tools/ground", {"video_id": vid, "query": evil}),
            ("/tools/track", {"video_id": evil, "box": [1, 1, 9, 9]}),
            ("/tools/describe", {"video_id": vid, "box": [1, 1, 9, 9], "question": evil}),
            ("/tools/summarize", {"texts": [evil], "instruction": evil}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "video_id": evil}),
            (
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}], "conversation_id": evil},
            ),
        ]:
            r = client.post(path, json=body)
            assert r.status_code < 500, (path, body, r.text)
            _no_leak(r.content)
        cid = client.post("/conversations", json={"video_id": vid, "title": evil}).json()["id"]
        events = ask(client, cid, text=evil)
        assert dict(events)["done"]["status"] == "done"
        _no_leak(str(events).encode())
    assert client.get(f"/videos/{vid}").status_code == 200, "the video is untouched"


def test_api_key_required_when_set(make_client, red_circle):
    client = make_client(api_key="s3cret")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/").status_code == 200  # the page itself; it sends the key with each call
    for method, path in [
        ("GET", "/videos"),
        ("POST", "/videos"),
        ("GET", "/conversations"),
        ("POST", "/tools/ground"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "API key" in r.json()["detail"]
    assert client.get("/videos", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/videos", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/videos", headers={"Authorization": "Basic czNjcmV0"}).status_code == 401
    assert client.get("/videos", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/videos", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    r = upload(client, red_circle[1])
    assert r.status_code == 401
    assert upload(client, red_circle[1], headers={"X-API-Key": "s3cret"}).status_code == 201
