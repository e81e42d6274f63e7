"""The seam between the model-independent evaluation code and the real Artemis model.

:func:`load_artemis_predictor` returns a :class:`~evals.protocol.Predictor` backed by ``artemis_model.pipeline``
when that module exists; otherwise it raises :class:`PipelineUnavailableError` with an actionable message.
:func:`load_object` resolves ``module:attribute`` strings for pluggable answerers and judges.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artemis_model.types import GenerationOptions
from evals.protocol import Predictor

logger = logging.getLogger(__name__)

#: The original's decoding (do_sample=True, temperature 0.2); ours is greedy unless this is asked for.
ORIGINAL_SAMPLING = GenerationOptions(max_new_tokens=1024, do_sample=True, temperature=0.2)


class PipelineUnavailableError(RuntimeError):
    """The Artemis inference pipeline (``artemis_model.pipeline``) is not available in this installation."""


def generation_options(
    *, sample: bool, seed: int | None = 0, max_new_tokens: int | None = None
) -> GenerationOptions:
    """Greedy by default; ``sample=True`` gives the original's sampling (T=0.2) with ``seed``."""
    base = ORIGINAL_SAMPLING if sample else GenerationOptions()
    return GenerationOptions(
        max_new_tokens=max_new_tokens or base.max_new_tokens,
        do_sample=base.do_sample,
        temperature=base.temperature,
        top_p=base.top_p,
        seed=seed if sample else None,
        use_cache=base.use_cache,
    )


def load_artemis_predictor(
    model_dir: Path, *, options: GenerationOptions = GenerationOptions(), device: str | None = None
) -> Predictor:
    """A predictor that runs the Artemis model of ``model_dir`` on each record's frames and box track."""
    if importlib.util.find_spec("artemis_model.pipeline") is None:
        raise PipelineUnavailableError(
            "artemis_model.pipeline is not available yet, so no Artemis predictor can be built for "
            f"{model_dir}. The evaluation code runs with any object that has predict(records) -> list[str] "
            "(see evals.protocol.Predictor)."
        )
    if importlib.util.find_spec("evals.artemis_predictor") is None:
        raise PipelineUnavailableError(
            "artemis_model.pipeline exists but the evaluation adapter (evals/artemis_predictor.py) is not wired "
            "yet; pass a Predictor object to the evals.* run functions instead."
        )
    from evals.artemis_predictor import ArtemisPredictor  # type: ignore[import-not-found]

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
