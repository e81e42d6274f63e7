"""A real server process (uvicorn, as ``artemis serve`` runs it) killed with SIGKILL keeps its videos and whole conversations."""

from __future__ import annotations

import httpx

from tests.agent.api.conftest import parse_sse
from tests.agent.api.live import free_port, process_server


def _ask(http: httpx.Client, cid: str, **body) -> dict:
    with http.stream("POST", f"/conversations/{cid}/messages", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return dict(parse_sse(r.iter_lines()))


def test_kill_9_then_restart_keeps_everything(tmp_path, red_circle, two_circles):
    # a world clip: the world's describer (the service's own default, ``auto``, is the track describer of real
    # footage; README "Which describer answers")
    env = {"ARTEMIS_DATA_DIR": str(tmp_path / "data"), "ARTEMIS_API_KEY": "pk", "ARTEMIS_DESCRIBER": "world"}
    env["ARTEMIS_GROUNDING_BACKEND"] = "offline"  # the synthetic world's clips: flat shapes
    port = free_port()
    headers = {"X-API-Key": "pk"}
    clip, data = red_circle
    with process_server(env, port) as (base, proc):
        http = httpx.Client(base_url=base, headers=headers, timeout=30)
        vid = http.post("/videos", files={"file": ("red.mp4", data, "video/mp4")}).json()["id"]
        vid2 = http.post("/videos", files={"file": ("circles.mp4", two_circles[1], "video/mp4")}).json()["id"]
        cid = http.post("/conversations", json={"video_id": vid}).json()["id"]
        first = _ask(http, cid, text="What is the boxed object doing?", box=list(clip.truth_box(0, 0)))
        assert "red circle" in first["answer"]["text"]
        cid2 = http.post("/conversations", json={"video_id": vid2}).json()["id"]
        assert "clarification" in _ask(http, cid2, text="What is the circle doing?")
        history = http.get(f"/conversations/{cid}/messages").json()
        frame = http.get(f"/videos/{vid}/frames/5").content
        http.close()
        proc.kill()  # SIGKILL: no shutdown hooks run
        proc.wait(10)

    with process_server(env, port) as (base, _proc):
        http = httpx.Client(base_url=base, headers=headers, timeout=30)
        assert {v["id"] for v in http.get("/videos").json()["videos"]} == {vid, vid2}
        assert http.get(f"/videos/{vid}/frames/5").content == frame
        assert http.get(f"/conversations/{cid}/messages").json() == history
        pending = http.get(f"/conversations/{cid2}/messages").json()["pending_clarification"]
        assert [c["label"] for c in pending["candidates"]] == ["green circle", "yellow circle"]

        follow = _ask(http, cid, text="Where does it go?")
        assert follow["plan"]["plan"]["target_source"] == "previous", "the memory survived"
        assert "red circle" in follow["answer"]["text"] and follow["done"]["turn"] == 2
        resumed = _ask(http, cid2, text="the right one", choice=2)
        assert "yellow circle" in resumed["answer"]["text"]
        hist = http.get(f"/conversations/{cid}/messages").json()
        assert [t["role"] for t in hist["transcript"]] == ["user", "assistant"] * 2

        # the official openai client against the real server, streaming and not
        from openai import OpenAI

        client = OpenAI(base_url=f"{base}/v1", api_key="pk", max_retries=0)
        out = client.chat.completions.create(
            model="artemis",
            messages=[{"role": "user", "content": "What is the boxed object doing?"}],
            extra_body={"video_id": vid, "box": list(clip.truth_box(0, 4)), "frame_idx": 4},
        )
        assert "red circle" in out.choices[0].message.content
        chunks = list(
            client.chat.completions.create(
                model="artemis",
                messages=[{"role": "user", "content": "What are the red objects doing?"}],
                extra_body={"video_id": vid},
                stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert "red circle" in text and chunks[-1].choices[0].finish_reason == "stop"
        http.close()
