"""One runtime shared by turns running at once (the service's ``turn_threads`` with remote model workers):
each missing video or grounding result is computed once, and concurrent turns answer as sequential ones."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from langgraph.checkpoint.memory import InMemorySaver

from agent.deps import AgentDeps
from agent.graph import build_agent, turn_input
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.grounding.offline import OfflineBackend
from tools.runtime import Runtime, VideoStore


def test_the_store_knows_the_file_of_each_opened_video(two_reds_mp4, tmp_path):
    videos = VideoStore(max_open=1)
    video = videos.open(two_reds_mp4)
    assert videos.path_of(video) == two_reds_mp4.resolve()
    other = tmp_path / "other.mp4"
    other.write_bytes(two_reds_mp4.read_bytes())
    videos.open(other)  # evicts the first from the store (max_open=1)
    assert len(videos) == 1
    assert videos.path_of(video) == two_reds_mp4.resolve()  # still known while a turn holds it
    assert videos.path_of(object()) is None


class CountingBackend(OfflineBackend):
    """The offline grounding backend, counting its calls (and slow enough for turns to overlap)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._lock = threading.Lock()

    def detect(self, frames, frame_indices, query):
        with self._lock:
            self.calls += 1
        time.sleep(0.05)
        return super().detect(frames, frame_indices, query)


def test_concurrent_turns_on_one_runtime_answer_as_sequential_turns(two_reds_mp4):
    def runtime() -> tuple[Runtime, CountingBackend]:
        backend = CountingBackend()
        rt = Runtime(
            grounding_settings=WORLD_GROUNDING, grounding_backend=backend, describer=HeuristicDescriber()
        )
        return rt, backend

    def answers(rt: Runtime, threads: int) -> list[str]:
        graph = build_agent(AgentDeps(rt), checkpointer=InMemorySaver())

        def turn(k: int) -> str:
            config = {"configurable": {"thread_id": f"t{k}"}}
            question = "What do the red objects do?" if k % 2 else "What is the blue star doing?"
            inp = turn_input(graph, config, question, video=str(two_reds_mp4))
            return graph.invoke(inp, config)["answer"]

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(turn, range(6)))

    alone, alone_backend = runtime()
    sequential = answers(alone, 1)
    shared, backend = runtime()
    concurrent = answers(shared, 6)
    assert concurrent == sequential
    assert "red circle" in sequential[1] and "blue star" in sequential[0]
    assert len(shared.videos) == 1  # opened once
    assert (
        backend.calls == alone_backend.calls
    )  # grounded once per video and query, as one turn after another
