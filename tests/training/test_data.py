"""Data readers, label masks, the restricted feature-pickle loader, configs and the command line."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from artemis_model.processing_artemis import IGNORE_INDEX, REGION_TOKEN, VIDEO_TOKEN
from artemis_model.selection import choose_track_frames
from artemis_model.tiny import tiny_processor
from tests.training.datagen import make_clips
from training.config import load_config
from training.data import (
    ArtemisCollator,
    ConversationDataset,
    sample_generator,
    split_records,
    unigram_baseline,
)
from training.media import UnsafePickleError, load_feature_pickle
from training.referring_data import QUESTION_TEMPLATES, TRACKING_NOTES, ReferringDataset
from training.train import parse_argv


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return root, make_clips(root, 3, seed=7)


def test_two_turn_label_mask_token_by_token(processor):
    turns = [("What colour is it?", "It is red."), ("And then?", "It moves left.")]
    enc = processor.encode_conversation(turns)
    tok = processor.tokenizer
    supervised = [
        (i, t)
        for i, (t, lab) in enumerate(zip(enc.input_ids, enc.labels, strict=True))
        if lab != IGNORE_INDEX
    ]
    # every supervised position keeps its own id; everything else is -100
    assert all(enc.labels[i] == t for i, t in supervised)
    # the supervised positions are exactly two contiguous runs: each answer and its </s>
    runs, start = [], supervised[0][0]
    for (a, _), (b, _) in zip(supervised, supervised[1:], strict=False):
        if b != a + 1:
            runs.append((start, a + 1))
            start = b
    runs.append((start, supervised[-1][0] + 1))
    assert len(runs) == 2
    for (s, e), (_, answer) in zip(runs, turns, strict=True):
        assert tok.decode(enc.input_ids[s:e]).strip() == f"{answer}</s>"
        assert tok.decode(enc.input_ids[s - 3 : s]).endswith("ASSISTANT:")
    # nothing of the system prompt or of the questions is supervised
    assert tok.decode(enc.input_ids[: runs[0][0]]).count("What colour is it?") == 1


def test_llava_loader_images_videos_and_text_only(processor, clips):
    root, truth = clips
    records = [
        {
            "id": "txt",
            "conversations": [
                {"from": "human", "value": "What is a square?"},
                {"from": "gpt", "value": "A shape."},
            ],
        },
        {
            "id": "img",
            "image": f"{truth[0]['folder']}/{truth[0]['names'][0]}",
            "conversations": [
                {"from": "human", "value": "What is shown?"},
                {"from": "gpt", "value": "A square."},
            ],
        },
        {
            "id": "vid",
            "video": truth[1]["folder"],
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe."},
                {"from": "gpt", "value": "It moves."},
                {"from": "human", "value": "Again?"},
                {"from": "gpt", "value": "It moves left."},
            ],
        },
    ]
    ds = ConversationDataset(records, processor, media_root=root)
    text_only, image, video = ds[0], ds[1], ds[2]
    ids = processor.token_ids
    assert text_only.images is None and not text_only.video_refs and text_only.video_features is None
    assert not any(t in ids.values() for t in text_only.input_ids)
    assert image.images.shape == (1, 3, processor.image_size, processor.image_size)
    assert image.input_ids.count(ids["<image>"]) == processor.num_patches  # prepended placeholder
    assert video.input_ids.count(ids[VIDEO_TOKEN]) == processor.num_video_tokens  # <image> read as <video>
    assert video.video_refs[0].path.endswith(truth[1]["folder"])
    batch = ArtemisCollator(processor)([text_only, image, video])
    lengths = [len(s.input_ids) for s in (text_only, image, video)]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, n in enumerate(lengths):  # right padding, labels -100 on pads
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
    assert batch["pixel_values"].shape[0] == 1 and len(batch["video_refs"]) == 1


def _ref_record(truth, **extra):
    tracks = [list(b) for b in truth["boxes"]]
    tracks[0], tracks[3], tracks[4] = [], [], []
    return {
        "frame_path": truth["folder"],
        "frame_id": truth["names"],
        "track_list": tracks,
        "caption": "The red square moves left.",
        **extra,
    }


def test_videoref_loader_edge_cases(processor, clips):
    root, truth = clips
    records = [
        _ref_record(truth[0]),  # no key frame -> seeded choice among tracked frames
        _ref_record(
            truth[1],
            key_frame_id=truth[1]["names"][6],
            key_frame_box=truth[1]["boxes"][6],
            question="Where does the <bbox> go?",
        ),
        {
            **_ref_record(truth[2]),
            "frame_path": None,
            "frame_id": None,
            "video": truth[2]["folder"],
            "key_frame_id": "",
            "key_frame_box": [],
        },
    ]
    ds = ReferringDataset(records, processor, media_root=root, num_tracked=8, num_region_tokens=4, seed=3)
    tracked = {i for i, b in enumerate(records[0]["track_list"]) if b}
    for index in range(3):
        prompt, key, key_box, frames = ds.choose(index)
        assert key in tracked and set(frames) <= tracked and frames == sorted(frames) and len(frames) == 8
        assert prompt.startswith(f"{VIDEO_TOKEN}\n") and prompt.endswith(REGION_TOKEN * 4 + ".")
        assert prompt.count(REGION_TOKEN) == 5
        assert any(note in prompt for note in TRACKING_NOTES)
        assert ds.choose(index) == (prompt, key, key_box, frames)  # same (seed, index, epoch) -> same sample
    assert ds.choose(1)[1] == 6 and "Where does the" in ds.choose(1)[0]
    sample = ds[0]
    assert sample.region_boxes_norm.shape == (9, 4) and sample.region_frame_ids.shape == (9,)
    assert float(sample.region_boxes_norm.max()) <= 1.0 and sample.video_refs
    key = ds.choose(0)[1]
    w, h = 40, 32
    expected = torch.tensor(truth[0]["boxes"][key]) / torch.tensor([w, h, w, h])
    torch.testing.assert_close(sample.region_boxes_norm[0], expected)
    assert sample.input_ids.count(processor.token_ids[REGION_TOKEN]) == 5
    # another epoch re-draws the jitter / key frame / template, reproducibly
    draws = {repr(ds.choose(0))}
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        draws.add(repr(ds.choose(0)))
    assert len(draws) > 1
    with pytest.raises(ValueError, match="exactly one <bbox>"):
        ReferringDataset([_ref_record(truth[0], question="no placeholder")], processor, media_root=root)
    with pytest.raises(ValueError, match="non-empty box"):
        ReferringDataset(
            [{**_ref_record(truth[0]), "track_list": [[] for _ in truth[0]["boxes"]]}], processor
        )


def test_uniform_track_sampling_is_the_inference_choice_every_epoch(clips, processor):
    root, truth = clips
    records = [_ref_record(t) for t in truth[:2]]
    uniform = ReferringDataset(records, processor, media_root=root, num_tracked=4, track_sampling="uniform")
    average = ReferringDataset(records, processor, media_root=root, num_tracked=4)
    for index, record in enumerate(records):
        tracked = [i for i, b in enumerate(record["track_list"]) if b]
        seen_uniform, seen_average = set(), set()
        for epoch in range(6):
            uniform.set_epoch(epoch)
            average.set_epoch(epoch)
            frames = uniform.choose(index)[3]
            assert frames == choose_track_frames(tracked, 4, mode="uniform")
            seen_uniform.add(tuple(frames))
            seen_average.add(tuple(average.choose(index)[3]))
        assert len(seen_uniform) == 1 and len(seen_average) > 1
    with pytest.raises(ValueError, match="track_sampling 'kmeans' is unknown"):
        ReferringDataset(records, processor, media_root=root, track_sampling="kmeans")


def test_templates_are_ours_and_well_formed():
    assert len(QUESTION_TEMPLATES) == 24 and len(set(QUESTION_TEMPLATES)) == 24 and len(TRACKING_NOTES) == 3
    assert all(q.count("<region>") == 1 for q in QUESTION_TEMPLATES)
    assert "This is the region's video tracking list:" not in TRACKING_NOTES


def test_feature_pickle_admits_numpy_arrays_only(tmp_path):
    array = np.random.default_rng(0).standard_normal((356, 8)).astype(np.float16)
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps(array))
    loaded = load_feature_pickle(good, expected_rows=356)
    assert loaded.dtype == torch.float32 and torch.equal(loaded, torch.from_numpy(array.astype(np.float32)))

    class Payload:
        def __reduce__(self):
            return (eval, ("1 + 1",))  # not print: a Ray driver in the same test run replaces builtins.print

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"features": array, "extra": Payload()}))
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        load_feature_pickle(evil)
    obj = tmp_path / "obj.pkl"
    obj.write_bytes(pickle.dumps(io.BytesIO(b"x")))
    with pytest.raises(UnsafePickleError, match="only numpy arrays"):
        load_feature_pickle(obj)
    plain = tmp_path / "list.pkl"
    plain.write_bytes(pickle.dumps([1.0, 2.0]))
    with pytest.raises(ValueError, match="expected one numpy array"):
        load_feature_pickle(plain)
    with pytest.raises(ValueError, match="expected 357 rows"):
        load_feature_pickle(good, expected_rows=100 + 256 + 1)


def test_unigram_baseline_and_split():
    train = [[-100, 5, 5, 6], [5, -100]]
    baseline = unigram_baseline(train, [[5, 6]], vocab_size=10)
    p5, p6 = 4 / 14, 2 / 14  # add-one counts: 5 -> 1 + 3, 6 -> 1 + 1, total 10 + 4
    assert baseline == pytest.approx(-(np.log(p5) + np.log(p6)) / 2)
    records = [{"i": i} for i in range(10)]
    tr, ev = split_records(records, 0.2, seed=1)
    assert len(ev) == 2 and len(tr) == 8 and split_records(records, 0.2, seed=1) == (tr, ev)
    g1, g2 = sample_generator(0, 1, 0), sample_generator(0, 1, 1)
    assert (
        torch.randint(1 << 30, (4,), generator=g1).tolist()
        != torch.randint(1 << 30, (4,), generator=g2).tolist()
    )


def test_config_overrides_and_argv(tmp_path):
    cfg = load_config(
        "training/configs/stage3_referring.yaml",
        [
            "optim.learning_rate=1e-4",
            "trainable.region_encoder=frozen",
            "data.train=[a.json,b.json]",
            "run.deepspeed=null",
        ],
    )
    assert cfg.optim.learning_rate == 1e-4 and cfg.trainable.region_encoder == "frozen"
    assert cfg.data.train == ["a.json", "b.json"] and cfg.run.deepspeed is None
    assert (
        cfg.optim.per_device_batch_size == 6
        and cfg.optim.gradient_accumulation_steps == 20
        and cfg.optim.epochs == 3
    )
    with pytest.raises(ValueError, match="language_model"):
        load_config("training/configs/stage1_pretrain.yaml", ["trainable.language_model=partial"])
    with pytest.raises(ValueError, match="extra|not permitted|Extra"):
        load_config("training/configs/stage1_pretrain.yaml", ["optim.lr=1"])
    assert parse_argv(["--local_rank=0", "c.yaml", "a.b=1"]) == ("c.yaml", ["a.b=1"])
    assert parse_argv(["c.yaml", "--local_rank", "3", "x=2"]) == ("c.yaml", ["x=2"])
