"""The ``--model`` / ``--describer`` flags every command that describes shares, over the one factory
:func:`tools.describers.default_describer` (imported on use: ``artemis --help`` loads no model code)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from tools.describers import Describer, DescriberChoice

DESCRIBER_HELP = (
    "auto (default of real-footage commands): the --model dir, else the weight-free track describer; world "
    "(default of the world commands demo / eval agent): the --model dir, else the embedded "
    "models/artemis-tiny-world, else the heuristic (with a warning); model; track; heuristic; random (a random "
    "tiny model, for tests). See the README's 'Which describer answers'."
)
MODEL_HELP = "Artemis model directory (default: the embedded models/artemis-tiny-world)."


def describer_choice(model: Path | None, describer: str) -> DescriberChoice:
    """:func:`tools.describers.choose_describer` for the command's flags; a bad combination is a usage error."""
    from tools.describers import choose_describer

    try:
        return choose_describer(model, describer)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--describer' / '--model'") from exc


def make_describer(model: Path | None, describer: str, **kwargs: Any) -> Describer:
    """:func:`tools.describers.default_describer` for the command's flags (its rule, then its builder); a bad
    combination of flags or a directory that holds no Artemis model is a usage error.

    ``kwargs``: ``device``, ``dtype``, ``options``, ``cache`` as :func:`tools.describers.build_describer` takes them.
    """
    from artemis_model.errors import NotAnArtemisModelError
    from tools.describers import build_describer

    choice = describer_choice(model, describer)
    try:
        return build_describer(choice, **kwargs)
    except NotAnArtemisModelError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--model'") from exc
