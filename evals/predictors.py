"""The seam between the model-independent evaluation code and the real Artemis model.

:func:`load_artemis_predictor` returns a :class:`~evals.protocol.Predictor` backed by ``artemis_model.pipeline``
(:class:`evals.artemis_predictor.ArtemisPredictor`).
:func:`load_object` resolves ``module:attribute`` strings for pluggable answerers and judges.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from artemis_model.types import GenerationOptions
from evals.protocol import Predictor

logger = logging.getLogger(__name__)

EVAL_MAX_NEW_TOKENS = 1024
"""The answer length limit of the referring evaluation: the original's, long enough not to cut an answer (how
many answers still hit it is reported by the run)."""
#: transformers' ``top_k`` default, which the original's ``generate(do_sample=True, ...)`` sampled with.
TRANSFORMERS_DEFAULT_TOP_K = 50


def original_sampling(model_dir: Path | None = None, *, seed: int | None = 0) -> GenerationOptions:
    """The original protocol's decoding: ``do_sample=True, temperature=0.2, max_new_tokens=1024`` over the model's
    ``generation_config.json`` (the converter carries the base's over: Vicuna v1.5's ``top_p`` 0.6), with
    transformers' ``top_k`` 50 unless that file sets another. Without a file: ``top_p`` 1.0, ``top_k`` 50.
    """
    top_p, top_k = 1.0, TRANSFORMERS_DEFAULT_TOP_K
    if model_dir is not None and (Path(model_dir) / "generation_config.json").is_file():
        from transformers import GenerationConfig

        generation = GenerationConfig.from_pretrained(model_dir, local_files_only=True)
        top_p = generation.top_p if generation.top_p is not None else top_p
        top_k = generation.top_k if generation.top_k is not None else top_k
    return GenerationOptions(
        max_new_tokens=EVAL_MAX_NEW_TOKENS,
        do_sample=True,
        temperature=0.2,
        top_p=top_p,
        top_k=top_k,
        seed=seed,
    )


def generation_options(
    *,
    sample: bool,
    seed: int | None = 0,
    max_new_tokens: int | None = None,
    model_dir: Path | None = None,
) -> GenerationOptions:
    """The evaluation's decoding: greedy, or with ``sample=True`` :func:`original_sampling` of ``model_dir``
    (seeded with ``seed``); ``max_new_tokens`` defaults to :data:`EVAL_MAX_NEW_TOKENS` either way."""
    if sample:
        base = original_sampling(model_dir, seed=seed)
    else:
        base = GenerationOptions(max_new_tokens=EVAL_MAX_NEW_TOKENS)
    return replace(base, max_new_tokens=max_new_tokens or base.max_new_tokens)


def load_artemis_predictor(
    model_dir: Path, *, options: GenerationOptions = GenerationOptions(), device: str | None = None
) -> Predictor:
    """A predictor that runs the Artemis model of ``model_dir`` on each record's frames and box track.

    Raises :class:`~artemis_model.errors.NotAnArtemisModelError` when ``model_dir`` is not an Artemis model."""
    from evals.artemis_predictor import ArtemisPredictor

    return ArtemisPredictor.from_pretrained(Path(model_dir), options=options, device=device)


def load_object(spec: str) -> Any:
    """Resolve ``"package.module:attribute"``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r} must be written 'package.module:attribute'")
    module = importlib.import_module(module_name)
    if not hasattr(module, attr):
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def build_from_factory(spec: str, **kwargs: Any) -> Any:
    """Call the factory named by ``spec`` (``module:callable``) with ``kwargs``."""
    factory: Callable[..., Any] = load_object(spec)
    if not callable(factory):
        raise ValueError(f"{spec!r} is not callable")
    return factory(**kwargs)
