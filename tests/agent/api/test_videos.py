"""Videos over HTTP: upload, list, metadata, frames, file, delete; bad uploads are 4xx with a message."""

from __future__ import annotations

import tempfile

import cv2
import numpy as np
import pytest

from tests.agent.api.conftest import ask, upload


def test_upload_list_meta_frame_file_delete(client, red_circle, tmp_path):
    clip, data = red_circle
    r = upload(client, data, name="../../etc/passwd.mp4")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert (meta["num_frames"], meta["width"], meta["height"]) == (16, 160, 120)
    assert meta["size_bytes"] == len(data) and meta["filename"] == "passwd.mp4"
    vid = meta["id"]
    assert r.headers["x-request-id"]

    listed = client.get("/videos").json()
    assert [v["id"] for v in listed["videos"]] == [vid]
    assert listed["used_bytes"] >= len(data)
    assert client.get(f"/videos/{vid}").json() == meta

    r = client.get(f"/videos/{vid}/frames/8")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    frame = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert frame.shape == (120, 160, 3)
    assert np.abs(frame.astype(int) - clip.frames[8].astype(int)).mean() < 8  # JPEG of the right frame
    other = np.abs(frame.astype(int) - clip.frames[0].astype(int)).mean()
    assert other > np.abs(frame.astype(int) - clip.frames[8].astype(int)).mean()

    r = client.get(f"/videos/{vid}/file")
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "video/mp4"

    data_dir = tmp_path / "data"
    assert (data_dir / "videos" / vid / "frames").is_dir()
    conv = client.post("/conversations", json={"video_id": vid}).json()
    events = ask(client, conv["id"], text="What is it doing?", box=[15, 20, 45, 50])
    assert any(e == "answer" for e, _ in events)
    assert list((data_dir / "videos" / vid / "evidence").rglob("*.jpg")), "evidence frames are written"

    r = client.delete(f"/videos/{vid}")
    assert r.status_code == 200 and r.json() == {"id": vid, "deleted": True}
    assert not (data_dir / "videos" / vid).exists(), "file, frames and evidence are removed"
    assert client.get(f"/videos/{vid}").status_code == 404
    assert client.get(f"/videos/{vid}/frames/0").status_code == 404
    assert client.get("/videos").json()["videos"] == []
    r = client.post(f"/conversations/{conv['id']}/messages", json={"text": "and now?"})
    assert r.status_code == 409 and "deleted" in r.json()["detail"]


def test_upload_never_uses_the_system_temp_dir(client, red_circle):
    _, data = red_circle
    tmp = tempfile.gettempdir()
    import os

    before = set(os.listdir(tmp))
    assert upload(client, data * 1).status_code == 201
    assert set(os.listdir(tmp)) - before == set()


@pytest.mark.parametrize(
    "payload, name, status, words",
    [
        (b"", "empty.mp4", 422, "empty"),
        (b"hello, I am not a video" * 20, "notes.txt", 415, "not a decodable video"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8, "corrupt.mp4", 415, "not a decodable video"),
    ],
)
def test_bad_uploads_are_4xx_with_a_message(client, payload, name, status, words):
    r = upload(client, payload, name=name)
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["detail"] and body["request_id"] == r.headers["x-request-id"]
    assert client.get("/videos").json()["videos"] == []


def test_truncated_video_is_rejected(client, red_circle):
    _, data = red_circle
    r = upload(client, data[: len(data) // 3], name="cut.mp4")
    assert r.status_code in (201, 415)  # a truncated mp4 may still hold its first frames
    if r.status_code == 201:
        meta = r.json()
        assert client.get(f"/videos/{meta['id']}/frames/{meta['num_frames'] - 1}").status_code == 200


def test_upload_not_multipart_or_without_file_field(client, red_circle):
    _, data = red_circle
    r = client.post("/videos", content=data, headers={"content-type": "video/mp4"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]
    r = client.post("/videos", files={"video": ("a.mp4", data, "video/mp4")})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = client.post(
        "/videos", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"}
    )
    assert r.status_code == 422


def test_over_limit_upload_is_413_and_leaves_nothing(make_client, red_circle, tmp_path):
    _, data = red_circle
    client = make_client(max_upload_bytes=len(data) - 1)
    r = upload(client, data)
    assert r.status_code == 413 and str(len(data) - 1) in r.json()["detail"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    assert list((tmp_path / "data" / "videos").iterdir()) == []


def test_disk_quota_full_is_507(make_client, red_circle):
    _, data = red_circle
    client = make_client(disk_quota_bytes=int(len(data) * 1.5))
    assert upload(client, data).status_code == 201
    r = upload(client, data)
    assert r.status_code == 507 and "quota" in r.json()["detail"]
    vid = client.get("/videos").json()["videos"][0]["id"]
    assert client.delete(f"/videos/{vid}").status_code == 200
    assert upload(client, data).status_code == 201, "deleting frees the quota"


@pytest.mark.parametrize("idx, status", [(16, 422), (-1, 422), (10**30, 422), ("x", 422)])
def test_out_of_range_frames(client, red_circle, idx, status):
    vid = upload(client, red_circle[1]).json()["id"]
    r = client.get(f"/videos/{vid}/frames/{idx}")
    assert r.status_code == status
    assert "frame" in r.json()["detail"].lower()


def test_unknown_and_malformed_ids(client):
    unknown = "0" * 32
    for method, path in [
        ("GET", f"/videos/{unknown}"),
        ("DELETE", f"/videos/{unknown}"),
        ("GET", f"/videos/{unknown}/frames/0"),
        ("GET", f"/videos/{unknown}/file"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 404 and unknown in r.json()["detail"], (method, path)
    for bad in ["abc", "0" * 31 + "G", "%2e%2e%2fetc", "A" * 32]:
        r = client.get(f"/videos/{bad}")
        assert r.status_code in (404, 422), bad
        assert r.status_code < 500
