"""Model workers behind Ray Serve: two replicas share the load, requests of different callers are batched into
one generation with the same answers as alone, paths outside the store are refused, a full queue is a 503.

Ray and Serve start once for the module (a local cluster of 2 CPUs: two worker replicas of the embedded world
model and one tight replica for the full queue) and are shut down at its end.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from artemis_model.video import open_video
from synth import generate_clip, write_mp4
from tests.agent.api.live import free_port
from tests.model_workers import local_workers
from tools.describers import EMBEDDED_MODEL_DIR, default_describer, has_model
from tools.model_workers import (
    DescribeRequest,
    DescribeResponse,
    DescriberWorker,
    ModelWorkerError,
    RemoteDescriber,
    TargetIn,
    WorkerConfig,
    WorkersUnavailableError,
)
from tools.runtime import VideoStore
from tools.video import SubVideo

pytestmark = pytest.mark.skipif(
    not has_model(EMBEDDED_MODEL_DIR), reason="the embedded world model is absent"
)


@dataclasses.dataclass
class Workers:
    root: Path
    url: str
    tight_url: str
    boxes: dict[str, list[tuple[float, float, float, float]]]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict[str, list[tuple[float, float, float, float]]]]:
    """A data store with two generated clips (``videos/a/video``, ``videos/b/video``) and their objects' boxes."""
    root = tmp_path_factory.mktemp("store")
    boxes = {}
    for seed, name in enumerate("ab"):
        clip = generate_clip(seed, num_objects=2, width=160, height=120, num_frames=16)
        (root / "videos" / name).mkdir(parents=True)
        write_mp4(clip, root / f"{name}.mp4").rename(root / "videos" / name / "video")
        boxes[name] = [
            tuple(float(v) for v in next(b for b in o.boxes if b is not None)) for o in clip.objects
        ]
    return root, boxes


@pytest.fixture(scope="module")
def workers(store) -> Workers:
    """Ray (2 CPUs) + Serve: 2 replicas of the world model at ``url`` (batches of up to 8 gathered for 0.3 s),
    1 replica at ``tight_url`` that holds 1 request and queues 1 more."""
    pytest.importorskip("ray")
    root, boxes = store
    with local_workers(root, batch_wait_s=0.3) as (url, tight_url):
        yield Workers(root=root, url=url, tight_url=tight_url, boxes=boxes)


def _remote(workers: Workers, url: str | None = None) -> tuple[RemoteDescriber, VideoStore]:
    videos = VideoStore()
    remote = RemoteDescriber(
        url or workers.url, data_root=workers.root, locate=videos.path_of, connections=32
    )
    return remote, videos


def _same(a, b) -> None:
    """Two descriptions agree on everything but their timings."""
    assert dataclasses.replace(a, timings={}) == dataclasses.replace(b, timings={})


def test_remote_descriptions_equal_the_local_describer(workers):
    local = default_describer(kind="world")
    remote, videos = _remote(workers)
    video = videos.open(workers.root / "videos" / "a" / "video")
    box = workers.boxes["a"][0]
    _same(remote(video, box, frame_idx=0, question=None), local(video, box, frame_idx=0, question=None))
    # several targets with known tracks (what the agent sends), and a segment of the video
    tracks = [local(video, b, frame_idx=0, question=None).track for b in workers.boxes["a"]]
    many = remote.describe_many(
        video, workers.boxes["a"], frame_idxs=[0, 0], question="What does it do?", tracks=tracks
    )
    expected = local.describe_many(
        video, workers.boxes["a"], frame_idxs=[0, 0], question="What does it do?", tracks=tracks
    )
    for got, want in zip(many, expected, strict=True):
        _same(got, want)
    seg = SubVideo(video, 4, 12)
    seg_box = next(b for b in tracks[0].boxes[4:12] if b is not None)
    _same(remote(seg, seg_box, frame_idx=0, question=None), local(seg, seg_box, frame_idx=0, question=None))
    remote.close()


def test_two_workers_share_the_load_and_batch_across_callers(workers):
    """16 requests at once, from different "conversations" on two videos (up to 3 such waves): both replicas
    serve, batches of more than one request form, and every batched answer equals the answer of the request
    alone."""
    remote, videos = _remote(workers)
    jobs = [(name, i % 2, q) for name in "ab" for i in range(4) for q in (None, "Where does it go?")]

    def ask(job):
        name, k, question = job
        video = videos.open(workers.root / "videos" / name / "video")
        request = DescribeRequest(
            video=f"videos/{name}/video",
            question=question,
            targets=[TargetIn(box=workers.boxes[name][k], frame_idx=0)],
        )
        response = httpx.post(workers.url, content=request.model_dump_json(), timeout=120)
        assert response.status_code == 200, response.text
        alone = remote(video, workers.boxes[name][k], frame_idx=0, question=question)
        return DescribeResponse.model_validate_json(response.content), alone

    results: list = []
    with ThreadPoolExecutor(len(jobs)) as pool:
        for _ in range(3):  # Serve's router picks replicas at random (two choices): a wave may land on one
            results += pool.map(ask, jobs)
            served = {r.worker for r, _ in results}
            if len(served) == 2:
                break
    assert len(served) == 2, f"one worker served everything in 3 waves of {len(jobs)}: {served}"
    assert max(r.batch_requests for r, _ in results) > 1
    for batched, alone in results:
        _same(batched.descriptions[0].to_description(), alone)
    remote.close()


def test_paths_outside_the_store_are_refused(workers, tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes((workers.root / "videos" / "a" / "video").read_bytes())
    (workers.root / "videos" / "link").symlink_to(outside)
    for value in ("../outside.mp4", str(outside), "videos/link"):
        request = DescribeRequest(video=value, targets=[TargetIn(box=(10, 10, 40, 40), frame_idx=0)])
        r = httpx.post(workers.url, content=request.model_dump_json(), timeout=60)
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["code"] == "outside_store" and repr(value) in body["detail"], body
    # the replica's side: a video opened from outside its data store is never sent
    remote, videos = _remote(workers)
    with pytest.raises(ModelWorkerError, match="outside the shared data store"):
        remote(videos.open(outside), (10, 10, 40, 40), frame_idx=0, question=None)
    remote.close()


def test_bad_input_raises_what_a_local_describer_raises(workers):
    from artemis_model.errors import FrameIndexError

    remote, videos = _remote(workers)
    video = videos.open(workers.root / "videos" / "a" / "video")
    with pytest.raises(FrameIndexError, match="out of range"):
        remote(video, (10, 10, 40, 40), frame_idx=99, question=None)
    remote.close()


def test_a_full_queue_is_busy_with_retry_after(workers):
    remote, videos = _remote(workers, workers.tight_url)
    video = videos.open(workers.root / "videos" / "b" / "video")

    def ask(_):
        try:
            remote(video, workers.boxes["b"][0], frame_idx=0, question=None)
            return None
        except WorkersUnavailableError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(ask, range(8)))
    busy = [e for e in outcomes if e is not None]
    assert busy, "8 requests at once on a worker holding 1 and queueing 1: some must be refused"
    assert len(busy) < 8
    assert all(e.retry_after_s == 3 and "busy" in str(e) for e in busy)
    remote.close()


def test_unreachable_workers_are_unavailable(workers):
    remote = RemoteDescriber(
        f"http://127.0.0.1:{free_port()}/describe",
        data_root=workers.root,
        locate=VideoStore().path_of,
        unavailable=lambda message, retry: TimeoutError(f"{retry}: {message}"),
    )
    video = open_video(workers.root / "videos" / "a" / "video")
    remote.locate = lambda _video: workers.root / "videos" / "a" / "video"
    with pytest.raises(TimeoutError, match="cannot be reached"):
        remote(video, (10, 10, 40, 40), frame_idx=0, question=None)
    remote.close()


def test_the_worker_alone_refuses_per_request(store):
    """Without Ray: one bad request of a batch is refused, the others are answered."""
    root, boxes = store
    worker = DescriberWorker(WorkerConfig(data_root=root, describer="heuristic"))
    results = worker.describe_batch(
        [
            DescribeRequest(video="videos/a/video", targets=[TargetIn(box=boxes["a"][0], frame_idx=0)]),
            DescribeRequest(video="../x", targets=[TargetIn(box=boxes["a"][0], frame_idx=0)]),
            DescribeRequest(video="videos/b/video", targets=[TargetIn(box=boxes["b"][0], frame_idx=99)]),
            DescribeRequest(video="videos/none/video", targets=[TargetIn(box=boxes["b"][0], frame_idx=0)]),
        ]
    )
    assert isinstance(results[0], DescribeResponse) and results[0].batch_requests == 4
    assert [getattr(r, "code", None) for r in results[1:]] == [
        "outside_store",
        "frame_out_of_range",
        "video_not_found",
    ]


def test_a_request_past_its_budget_is_dropped_by_the_workers(workers):
    """A turn's wall-time budget reaches the workers: the gathered batch (0.3 s) outlasts a 1 ms budget, so the
    worker answers 408 deadline_passed without describing; with budget left it answers as usual."""
    video = "videos/a/video"
    target = {"box": list(workers.boxes["a"][0]), "frame_idx": 0}
    late = httpx.post(workers.url, json={"video": video, "targets": [target], "budget_s": 0.001}, timeout=60)
    assert late.status_code == 408 and late.json()["code"] == "deadline_passed", late.text
    fine = httpx.post(workers.url, json={"video": video, "targets": [target], "budget_s": 60}, timeout=60)
    assert fine.status_code == 200 and fine.json()["descriptions"][0]["answer"]
    bad = httpx.post(workers.url, json={"video": video, "targets": [target], "budget_s": -1}, timeout=60)
    assert bad.status_code == 422 and "budget_s" in bad.text


def test_the_remote_describer_sends_no_request_once_the_budget_is_spent(workers):
    import time

    from tools.model_workers import DeadlinePassedError

    remote, videos = _remote(workers)
    video = videos.open(workers.root / "videos" / "a" / "video")
    with pytest.raises(DeadlinePassedError, match="budget is spent"):
        remote(video, workers.boxes["a"][0], frame_idx=0, question=None, deadline=time.monotonic() - 1)
    assert remote.stats()["requests"] == 0
    out = remote(video, workers.boxes["a"][0], frame_idx=0, question=None, deadline=time.monotonic() + 60)
    assert out.answer and remote.stats()["requests"] == 1
    remote.close()


def test_the_worker_alone_drops_requests_past_their_deadline(store):
    import time

    root, boxes = store
    worker = DescriberWorker(WorkerConfig(data_root=root, describer="heuristic"))
    request = DescribeRequest(video="videos/a/video", targets=[TargetIn(box=boxes["a"][0], frame_idx=0)])
    now = time.monotonic()
    results = worker.describe_batch([request, request, request], [now - 0.5, now + 60, None])
    assert getattr(results[0], "code", None) == "deadline_passed" and results[0].status == 408
    assert isinstance(results[1], DescribeResponse) and isinstance(results[2], DescribeResponse)
