"""The service with its model on remote workers (``ARTEMIS_MODEL_WORKERS``): a live replica (uvicorn process,
PostgreSQL, several turn threads) answers turns and tool calls end to end over HTTP through Ray Serve, and a
full worker queue reaches the client as the service's 503 with Retry-After.

Ray and Serve start once for the module (2 replicas of the embedded world model, and one tight replica that
holds 1 request and queues 1 more), on the data directory the replicas share; shut down at its end.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from artemis_model.video import open_video
from tests.agent.api.conftest import parse_sse
from tests.agent.api.live import process_server
from tests.agent.api.test_postgres import postgres_server  # noqa: F401 - the session's PostgreSQL cluster
from tests.model_workers import local_workers
from tools.describers import EMBEDDED_MODEL_DIR, default_describer, has_model

pytestmark = pytest.mark.skipif(
    not has_model(EMBEDDED_MODEL_DIR), reason="the embedded world model is absent"
)


@dataclass
class Cluster:
    data_dir: Path
    database_url: str
    workers_url: str
    tight_url: str

    def env(self, workers_url: str, threads: int) -> dict[str, str]:
        return {
            "ARTEMIS_DATA_DIR": str(self.data_dir),
            "ARTEMIS_DATABASE_URL": self.database_url,
            "ARTEMIS_MODEL_WORKERS": workers_url,
            "ARTEMIS_TURN_THREADS": str(threads),
            "ARTEMIS_GROUNDING_BACKEND": "offline",  # the synthetic world's clips: flat shapes
            "ARTEMIS_REPLICA_ID": f"replica-{uuid.uuid4().hex[:6]}",
        }


@pytest.fixture(scope="module")
def cluster(postgres_server, tmp_path_factory) -> Iterator[Cluster]:  # noqa: F811
    """A database of the session's PostgreSQL, a shared data directory, and the model workers on it."""
    pytest.importorskip("ray")
    import psycopg

    host, pg_port = postgres_server
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://test@/postgres?host={host}&port={pg_port}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    data_dir = tmp_path_factory.mktemp("shared-data")
    try:
        with local_workers(data_dir, batch_wait_s=0.1) as (url, tight_url):
            yield Cluster(
                data_dir=data_dir,
                database_url=f"postgresql://test@/{name}?host={host}&port={pg_port}",
                workers_url=url,
                tight_url=tight_url,
            )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _turn(base: str, cid: str, body: dict) -> list[tuple[str, dict]]:
    with httpx.stream("POST", f"{base}/conversations/{cid}/messages", json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        return parse_sse(r.iter_lines())


def test_a_replica_answers_turns_on_the_model_workers(cluster, red_circle):
    clip, data = red_circle
    box = [float(v) for v in clip.truth_box(0, 0)]
    with process_server(cluster.env(cluster.workers_url, threads=2)) as (base, _proc):
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["model"].startswith("remote ") and ready["worker"]["threads"] == 2
        video = httpx.post(f"{base}/videos", files={"file": ("clip.mp4", data, "video/mp4")}).json()
        # the describe tool, through the workers, answers as the local world model does
        out = httpx.post(
            f"{base}/tools/describe", json={"video_id": video["id"], "box": box, "frame_idx": 0}, timeout=120
        )
        assert out.status_code == 200, out.text
        local = default_describer(kind="world")(
            open_video(cluster.data_dir / "videos" / video["id"] / "video"),
            tuple(box),
            frame_idx=0,
            question=None,
        )
        assert out.json()["answer"] == local.answer
        assert out.json()["selected_frames"] == list(local.selected_frames)
        # two conversations' turns at once (two turn threads), each ends done with the workers' answer
        convs = [
            httpx.post(f"{base}/conversations", json={"video_id": video["id"]}).json()["id"] for _ in range(2)
        ]
        body = {"text": "What is the boxed object doing?", "box": box, "frame_idx": 0}
        with ThreadPoolExecutor(2) as pool:
            streams = list(pool.map(lambda cid: _turn(base, cid, body), convs))
        answers = []
        for cid, events in zip(convs, streams, strict=True):
            done = [d for e, d in events if e == "done"]
            assert done == [{"status": "done", "turn": 1}], events
            answers.append(next(d["text"] for e, d in events if e == "answer"))
            stored = httpx.get(f"{base}/conversations/{cid}/messages").json()["messages"]
            assert stored[-1]["status"] == "done" and stored[-1]["answer"] == answers[-1]
        # the world model's words (the weight-free describers never say "In this/the video"), the same for both
        assert answers[0] == answers[1] and re.match(
            r"In (this|the) video, the (\w+ )?red circle", answers[0]
        ), answers


def test_a_full_worker_queue_is_busy_with_retry_after(cluster, red_circle):
    clip, data = red_circle
    box = [float(v) for v in clip.truth_box(0, 0)]
    with process_server(cluster.env(cluster.tight_url, threads=8)) as (base, _proc):
        video = httpx.post(f"{base}/videos", files={"file": ("clip.mp4", data, "video/mp4")}).json()
        barrier = threading.Barrier(8)

        def ask(_):
            barrier.wait()
            return httpx.post(
                f"{base}/tools/describe",
                json={"video_id": video["id"], "box": box, "frame_idx": 0},
                timeout=120,
            )

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(ask, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
    for r in responses:
        if r.status_code == 503:
            assert r.json()["code"] == "busy" and "model workers are busy" in r.json()["detail"]
            assert r.headers["retry-after"] == "3"


def test_several_turn_threads_need_remote_workers_and_postgres(tmp_path):
    from pydantic import ValidationError

    from agent.api import Settings

    with pytest.raises(ValidationError, match="turn_threads=2 needs model_workers and database_url"):
        Settings(data_dir=tmp_path, turn_threads=2)
    with pytest.raises(ValidationError, match="turn_threads=3 needs database_url"):
        Settings(data_dir=tmp_path, turn_threads=3, model_workers="http://head:8000/describe")
    with pytest.raises(ValidationError, match="'head:8000' must be an http"):
        Settings(data_dir=tmp_path, model_workers="head:8000")
    settings = Settings(
        data_dir=tmp_path,
        turn_threads=4,
        model_workers="http://head:8000/describe",
        database_url="postgresql://u@db/artemis",
    )
    assert settings.turn_threads == 4


def test_the_model_worker_runs_as_many_jobs_at_once_as_it_has_threads():
    import asyncio

    from agent.api.worker import ModelWorker

    worker = ModelWorker(8, 10.0, threads=2)
    both = threading.Barrier(2, timeout=10)  # passes only when two jobs run at the same time

    async def main() -> None:
        await asyncio.gather(*(worker.run("turn", lambda _cancel: both.wait()) for _ in range(2)))

    try:
        asyncio.run(main())
        assert worker.stats()["threads"] == 2 and worker.stats()["completed"] == 2
    finally:
        worker.shutdown()


def test_a_turn_stopped_by_busy_workers_keeps_their_retry_after(tmp_path):
    """A turn whose describer call finds the workers full fails as 503 busy; its error event and the 503 the
    turn's route raises carry the workers' Retry-After (a tool route already did)."""
    from types import SimpleNamespace

    from agent.api.errors import BusyError
    from agent.api.turn_runner import as_service_error
    from agent.api.turns import TurnRequest, run_turn

    class FullWorkers:
        checkpointer = None

        def stream(self, *args, **kwargs):
            raise BusyError("the model workers are busy", headers={"Retry-After": "7"})

    runtime = SimpleNamespace(graph=FullWorkers(), settings=SimpleNamespace(turn_budget_s=None))
    events: list[tuple[str, dict]] = []
    req = TurnRequest(thread_id="t", text="What is it doing?", video_path=tmp_path / "v.mp4")
    result = run_turn(runtime, req, lambda e, d: events.append((e, d)), threading.Event())
    assert result.status == "error" and result.error["code"] == "busy" and result.error["retry_after"] == "7"
    assert ("error", result.error) in events and events[-1][0] == "done"
    exc = as_service_error(result.error)
    assert exc.status == 503 and exc.code == "busy" and exc.headers == {"Retry-After": "7"}
    assert as_service_error({"status": 500, "code": "internal_error", "detail": "x"}).headers == {}
