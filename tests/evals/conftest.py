"""Shared fixtures: one caption scorer (one METEOR JVM) for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evals.metrics import CaptionScorer


@pytest.fixture(scope="session")
def scorer() -> Iterator[CaptionScorer]:
    s = CaptionScorer()
    yield s
    s.close()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny-model matmuls: one torch thread is faster than several on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
