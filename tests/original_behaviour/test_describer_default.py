"""Issue #18, point 8 (revised by issue #20, point 4): one rule, one factory, for the describer of every entry
point.

Rule (:func:`tools.describers.choose_describer`, README "Which describer answers"): an explicit model directory;
otherwise, for real footage (``auto``), the weight-free track describer; for the synthetic world's commands
(``world``), the embedded ``models/artemis-tiny-world`` when present, else, with a warning, the heuristic; a random
tiny model only when asked for. Every real-footage entry point (``AgentDeps()``, the service runtime, ``artemis
chat``, ``artemis describe``) given no flag ends up with the same describer, and so does every world command
(``artemis demo``, ``artemis eval agent``).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.api import Settings
from agent.api.runtime import build_service
from agent.deps import AgentDeps
from cli.main import app
from tests.clipgen import Obj, make_clip, write_mp4
from tools import describers
from tools.describers import (
    DESCRIBER_KINDS,
    EMBEDDED_MODEL_DIR,
    DescriberChoice,
    HeuristicDescriber,
    ModelDescriber,
    choose_describer,
    default_describer,
    has_model,
)
from tools.track_describer import TrackDescriber

needs_embedded = pytest.mark.skipif(not has_model(EMBEDDED_MODEL_DIR), reason="the embedded model is absent")


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "artemis"}')
    return path


# -- the rule ------------------------------------------------------------------------------------------------


KINDS = "auto, world, model, track, heuristic, random"


def test_an_explicit_model_directory_wins(tmp_path):
    given, embedded = _model_dir(tmp_path / "mine"), _model_dir(tmp_path / "embedded")
    for kind in ("auto", "world", "model"):
        assert choose_describer(given, kind, embedded_dir=embedded) == DescriberChoice("model", given)
    assert choose_describer(str(given), "model", embedded_dir=embedded) == DescriberChoice("model", given)


def test_real_footage_gets_the_track_describer_even_with_an_embedded_model(tmp_path, caplog):
    embedded = _model_dir(tmp_path / "embedded")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(embedded_dir=embedded) == DescriberChoice("track")
        assert choose_describer(embedded_dir=tmp_path / "absent") == DescriberChoice("track")
    assert not caplog.records, "the track describer is the documented default, no fallback"
    assert isinstance(default_describer(), TrackDescriber)


def test_the_world_gets_the_embedded_model_when_present(tmp_path, caplog):
    embedded = _model_dir(tmp_path / "embedded")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(kind="world", embedded_dir=embedded) == DescriberChoice("model", embedded)
        assert choose_describer(kind="model", embedded_dir=embedded) == DescriberChoice("model", embedded)
    assert not caplog.records


def test_the_world_without_an_embedded_model_falls_back_to_the_heuristic_with_a_warning(tmp_path, caplog):
    absent = tmp_path / "absent"
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(kind="world", embedded_dir=absent) == DescriberChoice("heuristic")
    [record] = caplog.records
    assert record.levelno == logging.WARNING and str(absent) in record.getMessage()
    assert "heuristic" in record.getMessage()
    with pytest.raises(ValueError, match=f"describer 'model' needs a model.*{KINDS}"):
        choose_describer(kind="model", embedded_dir=absent)


def test_heuristic_and_random_only_when_asked(tmp_path, caplog):
    embedded = _model_dir(tmp_path / "embedded")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(kind="heuristic", embedded_dir=embedded) == DescriberChoice("heuristic")
        assert choose_describer(kind="random", embedded_dir=embedded) == DescriberChoice("random")
        assert choose_describer(kind="track", embedded_dir=embedded) == DescriberChoice("track")
    assert not caplog.records, "asking for the heuristic is no fallback: nothing to warn about"
    assert isinstance(default_describer(kind="heuristic"), HeuristicDescriber)
    random = default_describer(kind="random")
    assert isinstance(random, ModelDescriber) and random.model_dir is None and "random" in random.name


def test_bad_kinds_and_contradictions_name_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match=rf"describer 'tiny' is unknown; allowed: {KINDS}"):
        choose_describer(kind="tiny")
    given = _model_dir(tmp_path / "m")
    for kind in ("track", "heuristic", "random"):
        with pytest.raises(ValueError, match=r"exclude each other.*'auto', 'world' or 'model'"):
            choose_describer(given, kind)
    assert DESCRIBER_KINDS == tuple(KINDS.split(", "))


@needs_embedded
def test_the_factory_loads_the_embedded_model_for_the_world():
    describer = default_describer(kind="world")
    assert isinstance(describer, ModelDescriber) and describer.model_dir == EMBEDDED_MODEL_DIR
    assert describer.model.training is False


# -- every entry point ---------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised once an entry point has built its describer (the run itself is not under test)."""


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    clip = make_clip([Obj("red", "square", (40, 40), (100, 60), radius=10)], num_frames=8)
    return str(write_mp4(clip.frames, tmp_path_factory.mktemp("default") / "v.mp4"))


def entry_point_describers(monkeypatch, tmp_path: Path, video: str, *flags: str) -> dict[str, object]:
    """The describer each entry point builds with ``flags`` on its command line (service: in its settings)."""
    got: dict[str, object] = {}
    current: list[str] = []

    def capture_agent(deps=None, *args, **kwargs):
        got[current[0]] = deps.describer
        raise _Stop

    def capture_describe(video, box, *, describer, **kwargs):
        got["describe"] = describer
        raise _Stop

    def capture_bench(bench, *, describer, **kwargs):
        got["eval agent"] = describer
        raise _Stop

    monkeypatch.setattr("agent.graph.build_agent", capture_agent)
    monkeypatch.setattr(
        importlib.import_module("tools.refer"), "refer", capture_describe
    )  # `tools.refer`: the function
    monkeypatch.setattr("evals.agent_bench.run_agent_bench", capture_bench)
    commands = {
        "chat": ["chat", video, "What does the red square do?", "--db", str(tmp_path / "c.sqlite")],
        "describe": ["describe", video, "--box", "30,30,50,50"],
        "demo": ["demo", "--out", str(tmp_path / "demo")],
        "eval agent": ["eval", "agent", "--generate", "1", "--set", "template"],
    }
    runner = CliRunner()
    for name, args in commands.items():
        current[:] = [name]
        res = runner.invoke(app, [*args, *flags])
        assert isinstance(res.exception, _Stop), (name, res.output, res.exception)
    kind = dict(zip(flags[::2], flags[1::2], strict=True)).get("--describer", "auto")
    service = build_service(Settings(data_dir=tmp_path / "service", describer=kind))
    got["service"] = service.describer
    service.close()
    if kind == "auto":
        got["AgentDeps()"] = AgentDeps().describer
    return got


WORLD_COMMANDS = {"demo", "eval agent"}
"""Commands on the synthetic world: their default kind is ``world``; every other entry point's is ``auto``."""


def _what(describer) -> tuple[str, Path | None]:
    return type(describer).__name__, getattr(describer, "model_dir", None)


@needs_embedded
def test_with_no_flag_real_footage_gets_the_track_describer_and_the_world_its_model(
    monkeypatch, tmp_path, video
):
    got = entry_point_describers(monkeypatch, tmp_path, video)
    assert set(got) == {"chat", "describe", "demo", "eval agent", "service", "AgentDeps()"}
    assert {name: _what(d) for name, d in got.items()} == {
        name: ("ModelDescriber", EMBEDDED_MODEL_DIR) if name in WORLD_COMMANDS else ("TrackDescriber", None)
        for name in got
    }


def test_without_an_embedded_model_only_the_world_commands_fall_back_to_the_heuristic(
    monkeypatch, tmp_path, video, caplog
):
    monkeypatch.setattr(describers, "EMBEDDED_MODEL_DIR", tmp_path / "no-model")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        got = entry_point_describers(monkeypatch, tmp_path, video)
    assert {name: _what(d) for name, d in got.items()} == {
        name: ("HeuristicDescriber", None) if name in WORLD_COMMANDS else ("TrackDescriber", None)
        for name in got
    }
    warned = [r for r in caplog.records if "no-model" in r.getMessage()]
    assert len(warned) == len(WORLD_COMMANDS), (
        "each world command warns that it fell back; the others need not"
    )


def test_describer_heuristic_is_honoured_by_every_entry_point(monkeypatch, tmp_path, video):
    got = entry_point_describers(monkeypatch, tmp_path, video, "--describer", "heuristic")
    assert {name: _what(d) for name, d in got.items()} == {name: ("HeuristicDescriber", None) for name in got}


def test_a_bad_describer_flag_is_a_usage_error_naming_the_kinds(video, tmp_path):
    res = CliRunner().invoke(app, ["describe", video, "--box", "30,30,50,50", "--describer", "tiny"])
    text = " ".join(res.output.replace("│", " ").split())  # the usage error's box wraps lines
    assert res.exit_code == 2 and f"describer 'tiny' is unknown; allowed: {KINDS}" in text
