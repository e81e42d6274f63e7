"""HFDetectorBackend with a tiny random OWLv2 saved to tmp (load path) and scripted outputs (box mapping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artemis_model.types import box_iou
from tools.grounding import GroundingSettings, ground, make_backend
from tools.grounding.hf import HFDetectorBackend, query_labels
from tools.grounding.query import parse_query
from tools.video import ArrayVideo

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_owlv2_dir(tmp_path_factory):
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    vocab = {"<|pad|>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    for suffix in ("", "</w>"):
        for c in "abcdefghijklmnopqrstuvwxyz.":
            vocab[c + suffix] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[], pad_token="<|pad|>", model_max_length=16)
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=16,
    )
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32))
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok
    )
    out = tmp_path_factory.mktemp("owlv2")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _video(n=6):
    frames = np.full((n, 120, 160, 3), 120, np.uint8)
    return ArrayVideo(frames)


def test_query_labels():
    assert query_labels(parse_query("the red objects")) == ["red object"]
    assert query_labels(parse_query("all blue circles and stars")) == ["blue circle", "blue star"]
    assert query_labels(parse_query("the dog")) == ["the dog"]


def test_random_owlv2_loads_from_a_local_dir_and_runs(tiny_owlv2_dir):
    settings = GroundingSettings(backend="hf", detector_dir=tiny_owlv2_dir, threshold=0.0, max_frames=6)
    backend = make_backend(settings)
    assert isinstance(backend, HFDetectorBackend)
    video = _video()
    per_frame = backend.detect(video.get_frames(range(6)), list(range(6)), parse_query("the red circle"))
    assert type(backend._loaded[0]).__name__ == "Owlv2ForObjectDetection"
    assert len(per_frame) == 6
    # a random model's boxes are mostly degenerate (zero width at the border) and dropped; kept ones are valid
    for dets in per_frame:
        for d in dets:
            assert (
                d.label == "red circle"
                and 0 <= d.box[0] < d.box[2] <= 160
                and 0 <= d.box[1] < d.box[3] <= 120
            )
    for t in ground(video, "the red circle", settings=settings):
        assert t.label == "red circle" and t.source == "hf"


class _ScriptedOwl(torch.nn.Module):
    """Returns OWLv2-shaped outputs with one confident box (cx, cy, w, h) relative to the padded square."""

    def __init__(self, config, box_cxcywh):
        super().__init__()
        self.config = config
        self.box = torch.tensor(box_cxcywh)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, **_):
        from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

        n = pixel_values.shape[0]
        logits = torch.full((n, 16, 1), -10.0)
        logits[:, 5, 0] = 10.0
        boxes = torch.full((n, 16, 4), 0.05)
        boxes[:, 5] = self.box
        return Owlv2ObjectDetectionOutput(logits=logits, pred_boxes=boxes)


def test_owlv2_boxes_map_back_to_frame_pixels(tiny_owlv2_dir):
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(tiny_owlv2_dir)
    model = _ScriptedOwl(config, [0.5, 0.25, 0.1, 0.1])  # on the 160x160 padded square: (72, 32, 88, 48)
    backend = HFDetectorBackend(
        model=model, processor=AutoProcessor.from_pretrained(tiny_owlv2_dir), threshold=0.5
    )
    targets = ground(_video(), "the red circle", backend=backend)
    assert len(targets) == 1 and targets[0].span == (0, 5)
    assert all(box_iou(b, (72, 32, 88, 48)) > 0.95 for b in targets[0].boxes)


def test_hf_backend_needs_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="model_dir"):
        HFDetectorBackend()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ground(_video(2), "x", backend=HFDetectorBackend(tmp_path / "missing"))
