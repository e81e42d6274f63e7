"""The grounding backend registry: backends are chosen by name; an unknown name lists the registered ones."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tools.grounding import (
    Detection,
    GroundingSettings,
    available_backends,
    ground,
    make_backend,
    register_backend,
)
from tools.grounding import backends as backends_module
from tools.grounding.offline import OfflineBackend
from tools.video import ArrayVideo


class OneBox:
    """Detects one fixed box on every frame, whatever the query."""

    name = "one-box"

    def __init__(self, settings: GroundingSettings) -> None:
        self.threshold = settings.threshold

    def detect(self, frames, frame_indices, query):
        return [[Detection(i, (10.0, 10.0, 30.0, 30.0), "thing", 0.9)] for i in frame_indices]


@pytest.fixture
def one_box_registered(monkeypatch):
    monkeypatch.setitem(backends_module._BACKENDS, "one-box", OneBox)
    yield


def test_builtin_backends_are_registered():
    assert {"offline", "hf"} <= set(available_backends())
    assert isinstance(make_backend("offline"), OfflineBackend)
    assert isinstance(make_backend(GroundingSettings()), OfflineBackend)


def test_unknown_backend_names_the_registered_ones():
    with pytest.raises(ValidationError, match=r"unknown grounding backend 'yolo'; available: .*hf.*offline"):
        GroundingSettings(backend="yolo")
    with pytest.raises(ValueError, match=r"unknown grounding backend 'yolo'; available: "):
        make_backend("yolo")


def test_hf_needs_a_detector_dir():
    with pytest.raises(ValueError, match="detector_dir"):
        make_backend("hf")


def test_a_registered_backend_grounds(one_box_registered):
    backend = make_backend(GroundingSettings(backend="one-box", threshold=0.5))
    assert isinstance(backend, OneBox) and backend.threshold == 0.5
    video = ArrayVideo(np.zeros((6, 48, 64, 3), np.uint8))
    [target] = ground(video, "the thing", settings=GroundingSettings(backend="one-box"))
    assert target.source == "one-box" and target.boxes[0] == (10.0, 10.0, 30.0, 30.0)


def test_register_backend_adds_a_name(monkeypatch):
    monkeypatch.setattr(backends_module, "_BACKENDS", dict(backends_module._BACKENDS))
    register_backend("one-box", OneBox)
    assert "one-box" in available_backends()
