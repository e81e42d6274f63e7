"""Processor: templates, placeholder expansion, label masking, frames and boxes, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artemis_model.errors import InvalidBoxError
from artemis_model.processing_artemis import IGNORE_INDEX, TEMPLATES, ArtemisProcessor, render_prompt
from artemis_model.tiny import tiny_config, tiny_processor


@pytest.fixture(scope="module")
def proc() -> ArtemisProcessor:
    return tiny_processor()


def test_templates_render_exactly():
    train = render_prompt("Q1", template="train", answer="A1", history=[("Q0", "A0")])
    assert train == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: Q0 ASSISTANT: A0</s>USER: Q1 ASSISTANT: A1</s>"
    )
    evaluation = render_prompt("Q", template="eval_original")
    assert (
        evaluation.startswith("A chat between a curious human")
        and "the human's questions. USER: Q" in evaluation
    )
    assert evaluation.endswith(" USER: Q ASSISTANT:")
    with pytest.raises(ValueError, match="llava"):
        render_prompt("Q", template="llava")
    assert set(TEMPLATES) == {"train", "eval_original"}


def test_placeholder_expansion_and_bbox_alias(proc):
    cfg = tiny_config()
    ids = proc.encode("USER: <video>\nWhat is the <bbox> doing? <region><region> <image>")
    assert ids[0] == proc.tokenizer.bos_token_id and ids.count(proc.tokenizer.bos_token_id) == 1
    assert ids.count(cfg.video_token_id) == cfg.num_temporal_tokens + cfg.num_patches
    assert ids.count(cfg.region_token_id) == 3
    assert ids.count(cfg.image_token_id) == cfg.num_patches
    start = ids.index(cfg.video_token_id)
    assert ids[start : start + cfg.num_video_tokens] == [cfg.video_token_id] * cfg.num_video_tokens


def test_labels_supervise_only_assistant_answers(proc):
    turns = [("<video>\nWhat is the <bbox> doing?", "The red circle moves left."), ("And then?", "It stops.")]
    enc = proc.encode_conversation(turns)
    assert len(enc.input_ids) == len(enc.labels)
    supervised = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]
    assert all(lab in (IGNORE_INDEX, tok) for tok, lab in zip(enc.input_ids, enc.labels, strict=True))
    text = proc.tokenizer.decode(supervised, skip_special_tokens=False)
    assert text.replace(" ", "") == "Theredcirclemovesleft.</s>Itstops.</s>"
    assert supervised.count(proc.tokenizer.eos_token_id) == 2
    # the placeholders and prompt are never supervised
    region_id = proc.token_ids["<region>"]
    assert all(
        lab == IGNORE_INDEX for tok, lab in zip(enc.input_ids, enc.labels, strict=True) if tok == region_id
    )
    # the ids equal the plain encoding of the rendered conversation
    rendered = render_prompt(turns[1][0], answer=turns[1][1], history=[turns[0]])
    assert enc.input_ids == proc.encode(rendered)


def test_left_padding_for_generation(proc):
    batch = proc(["USER: hi ASSISTANT:", "USER: <region> what is the red circle doing ASSISTANT:"])
    mask = batch["attention_mask"]
    assert batch["input_ids"].shape == mask.shape and mask[0, 0] == 0 and mask[:, -1].all()


def _frame_with_box(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = 255
    return frame


def _bright_box(pixels: torch.Tensor, thresh: float = 0.5) -> tuple[float, float, float, float]:
    mask = pixels[0].mean(0) > thresh  # [S, S]
    ys, xs = mask.nonzero(as_tuple=True)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def test_consistent_mode_maps_boxes_exactly_original_mode_does_not():
    box = (8, 4, 24, 20)  # on a 40x80 frame (wide)
    frame = _frame_with_box(40, 80, box)[None]
    consistent = tiny_processor(resize_mode="consistent")
    original = tiny_processor(resize_mode="original")
    size = consistent.image_size
    box_norm = consistent.normalize_boxes([box], width=80, height=40)[0]
    expected = (box_norm * size).tolist()
    got = _bright_box(consistent.preprocess_frames(frame, purpose="region"))
    assert np.allclose(got, expected, atol=1.0)
    assert torch.equal(original.normalize_boxes([box], 80, 40)[0], box_norm)  # same normalisation...
    got_orig = _bright_box(original.preprocess_frames(frame, purpose="region"))
    assert not np.allclose(got_orig, expected, atol=1.0)  # ...but the centre crop moved the content
    # global frames are squashed in both modes
    assert original.preprocess_frames(frame, purpose="global").shape == (1, 3, size, size)
    assert np.allclose(_bright_box(original.preprocess_frames(frame, purpose="global")), expected, atol=1.0)


@pytest.mark.parametrize(
    "box",
    [(90, 10, 120, 30), (30, 20, 10, 25), (float("nan"), 0, 10, 10), (10, 10, 10, 20)],
    ids=["outside", "inverted", "nan", "zero_area"],
)
def test_bad_boxes_raise(proc, box):
    with pytest.raises(InvalidBoxError):
        proc.normalize_boxes([box], width=80, height=40)


def test_partly_outside_box_is_clipped(proc):
    out = proc.normalize_boxes([(-10, 5, 40, 50)], width=80, height=40)
    assert out.tolist() == [[0.0, 0.125, 0.5, 1.0]]


def test_save_load_roundtrip(proc, tmp_path):
    proc.save_pretrained(tmp_path)
    again = ArtemisProcessor.from_pretrained(tmp_path)
    text = render_prompt("<video>\nWhat is the <region> doing?", template="train", answer="It bounces.")
    assert again.encode(text) == proc.encode(text)
    assert again.token_ids == proc.token_ids and again.resize_mode == proc.resize_mode
    frames = np.random.default_rng(0).integers(0, 256, (2, 30, 50, 3), dtype=np.uint8)
    assert torch.equal(again.preprocess_frames(frames), proc.preprocess_frames(frames))
    with pytest.raises(ValueError, match="resize_mode"):
        ArtemisProcessor(proc.tokenizer, proc.image_processor, resize_mode="crop")


def test_prompt_template_is_saved_and_validated(tmp_path):
    import pytest

    from artemis_model.processing_artemis import ArtemisProcessor
    from artemis_model.tiny import tiny_processor

    proc = tiny_processor()
    assert proc.prompt_template == "train"
    proc.prompt_template = "eval_original"
    proc.save_pretrained(tmp_path)
    assert ArtemisProcessor.from_pretrained(tmp_path).prompt_template == "eval_original"
    with pytest.raises(ValueError, match="prompt_template 'chatml' is unknown"):
        ArtemisProcessor(proc.tokenizer, proc.image_processor, prompt_template="chatml")
