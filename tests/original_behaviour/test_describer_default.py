"""Issue #18, point 8: one rule, one factory, for the describer of every entry point.

Rule (:func:`tools.describers.choose_describer`, README "Which describer answers"): an explicit model directory;
otherwise the embedded ``models/artemis-tiny-world`` when present; the heuristic only when asked for or, with a
warning, when no embedded model exists; a random tiny model only when asked for. Every entry point (``AgentDeps()``,
the service runtime, ``artemis chat``, ``artemis describe``, ``artemis demo``, ``artemis eval agent``) given no
flag must end up with the same describer.
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

needs_embedded = pytest.mark.skipif(not has_model(EMBEDDED_MODEL_DIR), reason="the embedded model is absent")


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "artemis"}')
    return path


# -- the rule ------------------------------------------------------------------------------------------------


def test_an_explicit_model_directory_wins(tmp_path):
    given, embedded = _model_dir(tmp_path / "mine"), _model_dir(tmp_path / "embedded")
    assert choose_describer(given, embedded_dir=embedded) == DescriberChoice("model", given)
    assert choose_describer(str(given), "model", embedded_dir=embedded) == DescriberChoice("model", given)


def test_otherwise_the_embedded_model_when_present(tmp_path, caplog):
    embedded = _model_dir(tmp_path / "embedded")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(embedded_dir=embedded) == DescriberChoice("model", embedded)
        assert choose_describer(kind="model", embedded_dir=embedded) == DescriberChoice("model", embedded)
    assert not caplog.records


def test_no_embedded_model_falls_back_to_the_heuristic_with_a_warning(tmp_path, caplog):
    absent = tmp_path / "absent"
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(embedded_dir=absent) == DescriberChoice("heuristic")
    [record] = caplog.records
    assert record.levelno == logging.WARNING and str(absent) in record.getMessage()
    assert "heuristic" in record.getMessage()
    with pytest.raises(ValueError, match="describer 'model' needs a model.*auto, model, heuristic, random"):
        choose_describer(kind="model", embedded_dir=absent)


def test_heuristic_and_random_only_when_asked(tmp_path, caplog):
    embedded = _model_dir(tmp_path / "embedded")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        assert choose_describer(kind="heuristic", embedded_dir=embedded) == DescriberChoice("heuristic")
        assert choose_describer(kind="random", embedded_dir=embedded) == DescriberChoice("random")
    assert not caplog.records, "asking for the heuristic is no fallback: nothing to warn about"
    assert isinstance(default_describer(kind="heuristic"), HeuristicDescriber)
    random = default_describer(kind="random")
    assert isinstance(random, ModelDescriber) and random.model_dir is None and "random" in random.name


def test_bad_kinds_and_contradictions_name_the_allowed_values(tmp_path):
    with pytest.raises(
        ValueError, match=r"describer 'tiny' is unknown; allowed: auto, model, heuristic, random"
    ):
        choose_describer(kind="tiny")
    with pytest.raises(ValueError, match=r"exclude each other.*'auto' or 'model'"):
        choose_describer(_model_dir(tmp_path / "m"), "heuristic")
    assert DESCRIBER_KINDS == ("auto", "model", "heuristic", "random")


@needs_embedded
def test_the_factory_loads_the_embedded_model_by_default():
    describer = default_describer()
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


def _what(describer) -> tuple[str, Path | None]:
    return type(describer).__name__, getattr(describer, "model_dir", None)


@needs_embedded
def test_with_no_flag_every_entry_point_describes_with_the_embedded_model(monkeypatch, tmp_path, video):
    got = entry_point_describers(monkeypatch, tmp_path, video)
    assert set(got) == {"chat", "describe", "demo", "eval agent", "service", "AgentDeps()"}
    assert {name: _what(d) for name, d in got.items()} == {
        name: ("ModelDescriber", EMBEDDED_MODEL_DIR) for name in got
    }


def test_without_an_embedded_model_every_entry_point_falls_back_to_the_heuristic(
    monkeypatch, tmp_path, video, caplog
):
    monkeypatch.setattr(describers, "EMBEDDED_MODEL_DIR", tmp_path / "no-model")
    with caplog.at_level(logging.WARNING, logger="tools.describers"):
        got = entry_point_describers(monkeypatch, tmp_path, video)
    assert {name: _what(d) for name, d in got.items()} == {name: ("HeuristicDescriber", None) for name in got}
    warned = [r for r in caplog.records if "no-model" in r.getMessage()]
    assert len(warned) == len(got), "each entry point warns that it fell back"


def test_describer_heuristic_is_honoured_by_every_entry_point(monkeypatch, tmp_path, video):
    got = entry_point_describers(monkeypatch, tmp_path, video, "--describer", "heuristic")
    assert {name: _what(d) for name, d in got.items()} == {name: ("HeuristicDescriber", None) for name in got}


def test_a_bad_describer_flag_is_a_usage_error_naming_the_kinds(video, tmp_path):
    res = CliRunner().invoke(app, ["describe", video, "--box", "30,30,50,50", "--describer", "tiny"])
    text = " ".join(res.output.replace("│", " ").split())  # the usage error's box wraps lines
    assert (
        res.exit_code == 2 and "describer 'tiny' is unknown; allowed: auto, model, heuristic, random" in text
    )
