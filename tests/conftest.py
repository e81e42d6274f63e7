"""Session-wide test set-up: the one local Ray cluster the model-worker tests share (:mod:`tests.model_workers`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _ray_cluster_down_at_the_end() -> Iterator[None]:
    """Shut down the local Ray cluster, if a test started one, once every test has run: the worker tests of
    ``tests/agent/api`` and ``tests/tools`` deploy on the same cluster rather than each starting its own (starting
    Ray forks its servers from this large, multi-threaded process, and a second start could hang before exec)."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
