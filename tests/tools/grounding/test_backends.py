"""The grounding backend registry: backends are chosen by name; an unknown name lists the registered ones."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pydantic import ValidationError

from agent.api.settings import RuntimeSettings
from tools.grounding import (
    Detection,
    GroundingSettings,
    available_backends,
    ground,
    make_backend,
    register_backend,
)
from tools.grounding import backends as backends_module
from tools.grounding.backends import REAL_FOOTAGE_BACKEND, WORLD_BACKEND, WORLD_GROUNDING
from tools.grounding.coco import detector as coco_detector
from tools.grounding.coco.backend import CocoBackend
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
    assert {"coco", "offline", "hf"} <= set(available_backends())
    assert isinstance(make_backend("offline"), OfflineBackend)
    assert isinstance(make_backend(WORLD_GROUNDING), OfflineBackend)


def test_real_footage_gets_coco_by_default_the_world_offline(monkeypatch):
    monkeypatch.delenv("ARTEMIS_GROUNDING_BACKEND", raising=False)
    assert GroundingSettings().backend == REAL_FOOTAGE_BACKEND == "coco"
    assert RuntimeSettings().grounding_backend == "coco"  # ARTEMIS_GROUNDING_BACKEND unset
    assert WORLD_GROUNDING.backend == WORLD_BACKEND == "offline"
    assert isinstance(make_backend(GroundingSettings()), CocoBackend)
    assert isinstance(make_backend(), CocoBackend)


def test_coco_without_its_weights_falls_back_to_offline_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(coco_detector, "DEFAULT_TARBALL", tmp_path / "missing.tgz")
    with caplog.at_level(logging.WARNING, logger="tools.grounding.backends"):
        backend = make_backend("coco")
    assert isinstance(backend, OfflineBackend)
    assert "make test-assets" in caplog.text and "missing.tgz" in caplog.text


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
