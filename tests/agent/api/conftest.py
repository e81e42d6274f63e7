"""Fixtures for the service tests: small generated clips, app factories, an SSE parser."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api import Settings, create_app
from tests.clipgen import Obj, make_clip, write_mp4
from tools.describers import HeuristicDescriber


@pytest.fixture(scope="session")
def red_circle(tmp_path_factory):
    """A red circle moving right and a blue square moving down (160x120, 16 frames) as (clip, mp4 bytes)."""
    clip = make_clip(
        [
            Obj("red", "circle", (30, 35), (125, 40), radius=13),
            Obj("blue", "square", (135, 72), (135, 104), radius=10),
        ],
        textured=True,
    )
    path = write_mp4(clip.frames, tmp_path_factory.mktemp("api") / "red_circle.mp4")
    return clip, path.read_bytes()


@pytest.fixture(scope="session")
def two_circles(tmp_path_factory):
    """Two circles (green left, yellow right) and an orange square: 'the circle' is ambiguous."""
    clip = make_clip(
        [
            Obj("green", "circle", (30, 20), (35, 100), radius=12),
            Obj("yellow", "circle", (125, 100), (120, 20), radius=12),
            Obj("orange", "square", (60, 60), (100, 60), radius=9),
        ],
        num_frames=16,
    )
    path = write_mp4(clip.frames, tmp_path_factory.mktemp("api") / "circles.mp4")
    return clip, path.read_bytes()


class SlowDescriber:
    """The heuristic describer, after sleeping ``delay`` seconds (a slow model on a busy GPU)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.inner = HeuristicDescriber()
        self.started = threading.Event()
        self.calls = 0

    def __call__(self, video, box, *, frame_idx, question):
        self.calls += 1
        self.started.set()
        time.sleep(self.delay)
        return self.inner(video, box, frame_idx=frame_idx, question=question)


@pytest.fixture
def make_client(tmp_path) -> Callable[..., TestClient]:
    """``make_client(**settings)`` -> a started TestClient (data_dir under tmp_path unless given; the cheap
    heuristic describer unless a describer, a model_dir or a describer kind is given)."""
    stack: list = []

    def factory(*, describer=None, **kwargs) -> TestClient:
        kwargs.setdefault("data_dir", tmp_path / "data")
        kwargs.setdefault("grounding_backend", "offline")  # the synthetic world's clips: flat shapes
        if describer is None and "model_dir" not in kwargs:
            kwargs.setdefault("describer", "heuristic")
        client = TestClient(
            create_app(Settings(**kwargs), describer=describer), raise_server_exceptions=False
        )
        client.__enter__()
        stack.append(client)
        return client

    yield factory
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


def upload(client: TestClient, data: bytes, name: str = "clip.mp4", **kwargs):
    return client.post("/videos", files={"file": (name, data, "video/mp4")}, **kwargs)


def parse_sse(lines: Iterator[str]) -> list[tuple[str, dict]]:
    """``[(event, data)]`` from Server-Sent Events lines (``event:``/``data:`` blocks, blank-line separated)."""
    events, name, data = [], "message", []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events


def ask(client: TestClient, conversation_id: str, **body) -> list[tuple[str, dict]]:
    with client.stream("POST", f"/conversations/{conversation_id}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return parse_sse(r.iter_lines())


@contextmanager
def no_files_outside(root: Path, *watched: Path):
    """Asserts no file appears in ``watched`` folders (other than under ``root``) during the block."""
    before = {w: set(w.rglob("*")) if w.exists() else set() for w in watched}
    yield
    for w in watched:
        new = (set(w.rglob("*")) if w.exists() else set()) - before[w]
        new = {p for p in new if not p.resolve().is_relative_to(root.resolve())}
        assert not new, f"files written outside data_dir: {sorted(map(str, new))[:5]}"
