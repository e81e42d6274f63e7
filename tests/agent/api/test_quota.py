"""The disk quota holds for evidence frames and for concurrent uploads (issue #22, finding 4)."""

from __future__ import annotations

import threading
import time

import httpx

from agent.api import Settings
from tests.agent.api.conftest import upload
from tests.agent.api.live import thread_server


def _disk_used(client) -> int:
    return client.app.state.runtime.store.used_bytes()


def test_evidence_frames_stay_within_the_quota(make_client, red_circle):
    clip, data = red_circle
    quota = len(data) + 20_000  # the video and a little: not room for a turn's evidence frames
    client = make_client(disk_quota_bytes=quota)
    vid = upload(client, data).json()["id"]
    cid = client.post("/conversations", json={"video_id": vid}).json()["id"]
    for i in range(4):
        r = client.post(
            f"/conversations/{cid}/messages?stream=false",
            json={
                "text": "What is the boxed object doing?",
                "box": list(clip.truth_box(0, 0)),
                "frame_idx": 0,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "red" in body["answer"], "the turn still answers"
        assert _disk_used(client) <= quota, f"turn {i}: {_disk_used(client)} bytes on disk, quota {quota}"
        assert body["evidence"]["targets"] and body["evidence"]["frames"] == []
    assert client.app.state.runtime.quota.reserved == 0, "every reservation was released"


def test_evidence_frames_are_kept_when_they_fit(make_client, red_circle):
    clip, data = red_circle
    client = make_client(disk_quota_bytes=len(data) + 2_000_000)
    vid = upload(client, data).json()["id"]
    cid = client.post("/conversations", json={"video_id": vid}).json()["id"]
    r = client.post(
        f"/conversations/{cid}/messages?stream=false",
        json={"text": "What is it doing?", "box": list(clip.truth_box(0, 0))},
    )
    frames = r.json()["evidence"]["frames"]
    assert frames and client.get(frames[0]["url"]).status_code == 200
    assert client.app.state.runtime.quota.reserved == 0


def _slow_multipart(data: bytes, boundary: str, pause: float):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    yield head + data[: len(data) // 2]
    time.sleep(pause)  # every upload is in flight at once
    yield data[len(data) // 2 :] + f"\r\n--{boundary}--\r\n".encode()


def test_concurrent_uploads_share_the_quota(tmp_path, red_circle):
    data = red_circle[1]
    quota = int(len(data) * 2.5)  # room for two
    settings = Settings(
        data_dir=tmp_path / "data", describer="heuristic", grounding_backend="offline", disk_quota_bytes=quota
    )
    statuses: list[int] = []
    with thread_server(settings) as base:
        barrier = threading.Barrier(6)

        def one() -> None:
            barrier.wait()
            boundary = "artemis-test-boundary"
            r = httpx.post(
                f"{base}/videos",
                content=_slow_multipart(data, boundary, 0.5),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                timeout=30,
            )
            statuses.append(r.status_code)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        listed = httpx.get(f"{base}/videos").json()
    assert sorted(statuses) == [201, 201, 507, 507, 507, 507], statuses
    assert len(listed["videos"]) == 2 and listed["used_bytes"] <= quota
    assert not list((tmp_path / "data" / "uploads").iterdir()), "refused uploads leave nothing"


def test_reservations_add_up_and_release():
    import pytest

    from agent.api.errors import QuotaExceededError
    from agent.api.quota import DiskQuota

    on_disk = {"bytes": 1000}
    quota = DiskQuota(10_000, lambda: on_disk["bytes"])
    a, b = quota.reservation("upload a"), quota.reservation("upload b")
    a.ensure(5000)  # the 1 MiB step does not fit: exactly what was asked
    assert quota.reserved == 5000 and quota.left() == 4000
    with pytest.raises(QuotaExceededError, match="upload b needs 4001 more bytes but 4000 of 10000 are left"):
        b.ensure(4001)
    b.ensure(4000)
    assert quota.over() == 0 and quota.over(mine=b) == -4000
    on_disk["bytes"] += 5000  # a's file lands on disk, then a lets go of its reservation
    a.release()
    assert quota.used() == 10_000
    b.release()
    b.release()  # idempotent
    assert quota.reserved == 0 and quota.left() == 4000
