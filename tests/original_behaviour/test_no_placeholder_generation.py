"""Issue #18, point 6: no generation path ever emits ``<image>``, ``<video>`` or ``<region>``.

The vocabulary holds the 3 placeholder rows (32003 rows at Artemis-7B size), so a model could emit one. A forward
hook rigs the tiny model's ``lm_head``: the 3 placeholder logits are raised above every word at every step
(``<region>`` highest). Without suppression the rigged model emits ``<region>`` at every step (shown below with
transformers' own ``generate``). With it, every path -- greedy and sampled, batched, prefix sharing,
``ArtemisForConditionalGeneration.generate`` -- emits exactly the tokens of the un-rigged model: the 3 logits
become -inf, the others are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from artemis_model.generation import PreparedTarget, generate_prepared, generation_kwargs
from artemis_model.processing_artemis import PLACEHOLDER_TOKENS, render_prompt
from artemis_model.prompts import normalize_question, referring_prompt
from artemis_model.tiny import tiny_model_and_processor
from artemis_model.types import GenerationOptions, Track

NEW = 8
FULL = {"min_new_tokens": NEW}  # no early EOS: every step is compared


@pytest.fixture(scope="module")
def model_proc():
    return tiny_model_and_processor(seed=0, text_config={"initializer_range": 0.2})


def _placeholders(proc: Any) -> dict[str, int]:
    return {t: proc.tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}


@contextmanager
def rigged(model: Any, proc: Any) -> Iterator[None]:
    """``lm_head`` outputs with ``<image>`` < ``<video>`` < ``<region>`` above every other logit."""
    ids = _placeholders(proc)

    def hook(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        top = output.max(dim=-1).values
        output = output.clone()
        for rank, token in enumerate(("<image>", "<video>", "<region>"), start=1):
            output[..., ids[token]] = top + 10.0 * rank
        return output

    handle = model.language_model.lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _targets(model: Any, questions: list[str | None], seed: int = 0) -> list[PreparedTarget]:
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(cfg.num_video_tokens, cfg.vision_config.hidden_size, generator=gen)
    track = Track(boxes=((1.0, 1.0, 8.0, 8.0),), width=10, height=10)
    out = []
    for q in questions:
        question = normalize_question(q)
        out.append(
            PreparedTarget(
                prompt=render_prompt(
                    referring_prompt(question, cfg.num_region_tokens, template="train"), template="train"
                ),
                video_features=video,  # one video: the targets share its tensor (prefix sharing possible)
                region_tokens=3
                * torch.randn(1 + cfg.num_region_tokens, cfg.text_config.hidden_size, generator=gen),
                question=question,
                frame_idx=0,
                box=(1.0, 1.0, 8.0, 8.0),
                track=track,
                selected_frames=(0,),
            )
        )
    return out


def _new_ids(monkeypatch, proc: Any, run) -> list[list[int]]:
    """The new token ids ``generate_prepared`` decodes (captured at ``batch_decode``)."""
    captured: list[list[int]] = []
    decode = proc.batch_decode

    def spy(ids, *args, **kwargs):
        captured.extend(torch.as_tensor(ids).tolist())
        return decode(ids, *args, **kwargs)

    monkeypatch.setattr(proc, "batch_decode", spy)
    run()
    monkeypatch.undo()
    return captured


def test_rig_makes_the_unsuppressed_model_emit_region(model_proc):
    model, proc = model_proc
    ids = _placeholders(proc)
    prompt = proc.tokenizer("USER: hello ASSISTANT:", return_tensors="pt")["input_ids"]
    with rigged(model, proc), torch.no_grad():
        raw = model.language_model.generate(
            input_ids=prompt,
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=3,
            temperature=None,
            top_p=None,
            top_k=None,
        )
    assert raw[0, prompt.shape[1] :].tolist() == [ids["<region>"]] * 4


OPTIONS = {
    "greedy": GenerationOptions(max_new_tokens=NEW),
    "sampled": GenerationOptions(max_new_tokens=NEW, do_sample=True, temperature=1.0, seed=7),
}


@pytest.mark.parametrize("mode", sorted(OPTIONS))
@pytest.mark.parametrize(
    "strategy, questions",
    [
        ("batched", [None, "What is the <region> doing?", "Where does the <region> go after it stops?"]),
        ("prefix", [None, None, None]),  # equal prompts of one video: the shared-prefix path
    ],
)
def test_no_path_emits_a_placeholder(monkeypatch, model_proc, mode, strategy, questions):
    model, proc = model_proc
    options = OPTIONS[mode]
    targets = _targets(model, questions)

    def run() -> None:
        generate_prepared(
            model, proc, targets, options, batch_size=3, strategy=strategy, extra_generate_kwargs=FULL
        )

    plain = _new_ids(monkeypatch, proc, run)
    with rigged(model, proc):
        suppressed = _new_ids(monkeypatch, proc, run)
    banned = set(_placeholders(proc).values())
    assert len(suppressed) == 3 and all(len(row) == NEW for row in suppressed)
    assert not banned & {t for row in suppressed for t in row}
    assert suppressed == plain  # the rig is fully neutralised: only the 3 placeholder logits changed


def test_model_generate_and_caller_suppress_tokens(model_proc):
    model, proc = model_proc
    banned = set(_placeholders(proc).values())
    (target,) = _targets(model, [None])
    enc = proc([target.prompt])
    call = dict(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        video_features=target.video_features[None],
        region_features=target.region_tokens[None],
        max_new_tokens=NEW,
        min_new_tokens=NEW,
    )
    with torch.no_grad():
        plain = model.generate(**call)[0, enc["input_ids"].shape[1] :].tolist()
        with rigged(model, proc):
            direct = model.generate(**call)[0, enc["input_ids"].shape[1] :].tolist()
            # a caller's own suppress_tokens is kept and the placeholders are added to it
            word = plain[0]
            own = model.generate(**call, suppress_tokens=[word])[0, enc["input_ids"].shape[1] :].tolist()
    assert direct == plain and not banned & set(direct)
    assert word not in own and not banned & set(own)
    kwargs = generation_kwargs(proc, GenerationOptions())
    assert kwargs["suppress_tokens"] == sorted(banned)


def test_extra_suppress_tokens_are_merged_not_replacing(monkeypatch, model_proc):
    model, proc = model_proc
    targets = _targets(model, [None, "What is the <region> doing?"])
    options = OPTIONS["greedy"]

    def run(extra: dict[str, Any]):
        return lambda: generate_prepared(
            model, proc, targets, options, extra_generate_kwargs={**FULL, **extra}
        )

    plain = _new_ids(monkeypatch, proc, run({}))
    word = plain[0][0]
    with rigged(model, proc):
        rows = _new_ids(monkeypatch, proc, run({"suppress_tokens": [word]}))
    banned = set(_placeholders(proc).values()) | {word}
    assert all(len(row) == NEW for row in rows) and not banned & {t for row in rows for t in row}
