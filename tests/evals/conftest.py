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
