"""API keys per user (issue #22, finding 3): each user sees only its own videos and conversations; the admin
key sees everything and manages users; keys are stored hashed; no key, no information (keys on)."""

from __future__ import annotations

import hashlib
import sqlite3

from tests.agent.api.conftest import upload

ADMIN = {"X-API-Key": "admin-secret"}


def _user(client, name: str) -> dict[str, str]:
    r = client.post("/admin/users", json={"name": name}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['api_key']}"}


def test_users_see_only_their_own(make_client, red_circle, tmp_path):
    client = make_client(api_key="admin-secret", data_dir=tmp_path / "data")
    alice, bob = _user(client, "alice"), _user(client, "bob")
    vid = upload(client, red_circle[1], headers=alice).json()["id"]
    cid = client.post("/conversations", json={"video_id": vid}, headers=alice).json()["id"]
    msg = client.post(
        f"/conversations/{cid}/messages?stream=false",
        json={"text": "What is it?", "box": [20, 20, 60, 60]},
        headers=alice,
    ).json()
    evidence = msg["evidence"]["frames"][0]["url"]
    oai = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "video_id": vid},
        headers=alice,
    )
    assert oai.status_code == 200, oai.text
    own_cids = {cid, oai.json()["conversation_id"]}

    # alice sees hers
    assert [v["id"] for v in client.get("/videos", headers=alice).json()["videos"]] == [vid]
    assert {c["id"] for c in client.get("/conversations", headers=alice).json()["conversations"]} == own_cids
    for path in (
        f"/videos/{vid}",
        f"/videos/{vid}/frames/2",
        f"/videos/{vid}/file",
        f"/conversations/{cid}",
        f"/conversations/{cid}/messages",
        evidence,
    ):
        assert client.get(path, headers=alice).status_code == 200, path

    # bob sees nothing of hers, cannot use or delete it, and learns nothing (404 as for an unknown id)
    assert client.get("/videos", headers=bob).json()["videos"] == []
    assert client.get("/conversations", headers=bob).json()["conversations"] == []
    assert client.get(f"/conversations?video_id={vid}", headers=bob).json()["conversations"] == []
    for path in (
        f"/videos/{vid}",
        f"/videos/{vid}/frames/2",
        f"/videos/{vid}/file",
        f"/conversations/{cid}",
        f"/conversations/{cid}/messages",
        evidence,
    ):
        r = client.get(path, headers=bob)
        assert r.status_code == 404, (path, r.status_code)
    for method, path, body in [
        ("POST", "/conversations", {"video_id": vid}),
        ("POST", f"/conversations/{cid}/messages?stream=false", {"text": "mine now?"}),
        ("POST", "/tools/track", {"video_id": vid, "box": [20, 20, 60, 60]}),
        ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "video_id": vid}),
        (
            "POST",
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "conversation_id": cid},
        ),
        ("DELETE", f"/conversations/{cid}", None),
        ("DELETE", f"/videos/{vid}", None),
    ]:
        r = client.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.text)
    assert (
        client.get(f"/conversations/{cid}/messages", headers=alice).json()["messages"][0]["status"] == "done"
    )
    assert client.get(f"/videos/{vid}", headers=alice).status_code == 200

    # the admin sees everyone's
    assert [v["id"] for v in client.get("/videos", headers=ADMIN).json()["videos"]] == [vid]
    assert client.get(f"/conversations/{cid}/messages", headers=ADMIN).status_code == 200
    assert [u["name"] for u in client.get("/admin/users", headers=ADMIN).json()["users"]] == ["alice", "bob"]
    assert client.get("/admin/users", headers=alice).status_code == 403

    # keys are stored hashed: never in clear in the database
    key = alice["Authorization"].split()[1]
    db = sqlite3.connect(tmp_path / "data" / "metadata.sqlite")
    stored = [r[0] for r in db.execute("SELECT key_sha256 FROM users WHERE name = 'alice'")]
    db.close()
    assert stored == [hashlib.sha256(key.encode()).hexdigest()]
    assert key.encode() not in (tmp_path / "data" / "metadata.sqlite").read_bytes()

    # a deleted user's key opens nothing; the name is unique
    assert client.post("/admin/users", json={"name": "bob"}, headers=ADMIN).status_code == 409
    assert client.delete("/admin/users/bob", headers=ADMIN).status_code == 200
    assert client.get("/videos", headers=bob).status_code == 401


def test_no_key_no_information(make_client):
    client = make_client(api_key="admin-secret")
    alice = _user(client, "alice")
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] is None and ready["worker"] is None
    assert client.get("/readyz", headers={"X-API-Key": "guess"}).json()["model"] is None
    assert client.get("/readyz", headers=alice).json()["model"] == "heuristic"
    for method, path in [
        ("GET", "/videos"),
        ("GET", "/conversations"),
        ("GET", "/admin/users"),
        ("GET", "/v1/models"),
    ]:
        assert client.request(method, path).status_code == 401, path
        assert client.request(method, path, headers={"X-API-Key": "guess"}).status_code == 401, path


def test_keys_off_is_one_local_user_who_sees_everything(client, red_circle):
    vid = upload(client, red_circle[1]).json()["id"]
    assert [v["id"] for v in client.get("/videos").json()["videos"]] == [vid]
    assert client.get("/readyz").json()["model"] == "heuristic"
    r = client.post("/admin/users", json={"name": "alice"})
    assert r.status_code == 409 and "ARTEMIS_API_KEY" in r.json()["detail"]


def test_a_data_dir_from_before_users_belongs_to_the_local_user(make_client, red_circle, tmp_path):
    """An old metadata DB (no owner column) is migrated: its videos are the admin's once keys are turned on."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "metadata.sqlite")
    db.executescript(
        "CREATE TABLE videos (id TEXT PRIMARY KEY, filename TEXT NOT NULL, size_bytes INTEGER NOT NULL,"
        " num_frames INTEGER NOT NULL, fps REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,"
        " content_hash TEXT NOT NULL, created_at REAL NOT NULL);"
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, video_id TEXT NOT NULL, title TEXT NOT NULL,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL);"
        f"INSERT INTO videos VALUES ('{'a' * 32}', 'old.mp4', 1, 1, 1.0, 8, 8, 'h', 1.0);"
    )
    db.commit()
    db.close()
    client = make_client(data_dir=data_dir, api_key="admin-secret")
    alice = _user(client, "alice")
    assert [v["id"] for v in client.get("/videos", headers=ADMIN).json()["videos"]] == ["a" * 32]
    assert client.get("/videos", headers=alice).json()["videos"] == []
