"""The service with a real (tiny, random) Artemis model: loaded in the lifespan from ``model_dir``; deleting
a video evicts its feature-cache entries (memory and disk)."""

from __future__ import annotations

import pytest

from tests.agent.api.conftest import ask, upload


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from artemis_model.tiny import tiny_model_and_processor

    model, processor = tiny_model_and_processor(seed=0)
    out = tmp_path_factory.mktemp("tiny_artemis")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def test_tiny_model_answers_and_delete_evicts_features(make_client, tiny_model_dir, red_circle, tmp_path):
    clip, data = red_circle
    client = make_client(model_dir=tiny_model_dir, dtype="float32")
    assert client.get("/readyz").json()["model"] == tiny_model_dir.name
    vid = upload(client, data).json()["id"]
    box = list(clip.truth_box(0, 0))
    r = client.post("/tools/describe", json={"video_id": vid, "box": box, "question": "What is it doing?"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["answer"], str) and r.json()["track"]["span"] == [0, 15]
    cid = client.post("/conversations", json={"video_id": vid}).json()["id"]
    events = dict(ask(client, cid, text="What is the boxed object doing?", box=box))
    assert events["done"]["status"] == "done" and events["tool_result"]["tool"] == "refer"

    rt = client.app.state.runtime
    content_hash = rt.store.get_video(vid).content_hash
    cache = rt.runtime.feature_cache
    assert len(cache) > 0, "describing filled the feature cache (the only video)"
    assert len(rt.runtime.videos) == 1, "the route, the frames and the agent share one opened video"
    features_dir = tmp_path / "data" / "features"
    assert (features_dir / content_hash).is_dir()
    assert client.delete(f"/videos/{vid}").status_code == 200
    assert len(cache) == 0 and cache.memory_bytes == 0 and len(rt.runtime.videos) == 0
    assert not (features_dir / content_hash).exists()


def test_not_a_model_dir_fails_at_startup(tmp_path):
    from fastapi.testclient import TestClient

    from agent.api import Settings, create_app
    from artemis_model.errors import NotAnArtemisModelError

    app = create_app(Settings(data_dir=tmp_path / "d", model_dir=tmp_path))
    with pytest.raises(NotAnArtemisModelError), TestClient(app):
        pass
