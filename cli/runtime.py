"""The runtime of a command: built once per process from its flags and the environment, then passed down."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.describer import describer_choice

if TYPE_CHECKING:
    from tools.runtime import Runtime


def make_runtime(model: Path | None, describer: str, **kwargs: Any) -> Runtime:
    """The command's :class:`tools.runtime.Runtime`: the describer of its ``--model`` / ``--describer`` flags
    (the rule of every entry point), grounding and the cache directory from the environment
    (``ARTEMIS_GROUNDING_*``, ``ARTEMIS_CACHE_DIR``: :class:`agent.api.settings.RuntimeSettings`).

    ``kwargs``: those of :meth:`tools.runtime.Runtime.build` (``device``, ``options``, ``summarizer``, ...).
    """
    from agent.api.settings import RuntimeSettings
    from artemis_model.errors import NotAnArtemisModelError
    from tools.runtime import Runtime

    choice = describer_choice(model, describer)
    try:
        env = RuntimeSettings()
        kwargs.setdefault("grounding_settings", env.grounding_settings())
    except ValueError as exc:  # pydantic's ValidationError: a bad ARTEMIS_* variable
        raise typer.BadParameter(str(exc), param_hint="the ARTEMIS_* environment") from exc
    kwargs.setdefault("cache_root", env.cache_dir)
    try:
        return Runtime.build(choice, **kwargs)
    except NotAnArtemisModelError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--model'") from exc
