"""``artemis eval agent``: the report carries the per-question-type table and JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app


def test_eval_agent_reports_per_question_type(tmp_path):
    out = tmp_path / "agent.json"
    args = [
        "eval",
        "agent",
        "--generate",
        "2",
        "--seed",
        "11",
        "--describer",
        "heuristic",
        "--set",
        "template",
    ]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Per question type (template):" in res.output and "| describe |" in res.output
    data = json.loads(out.read_text())["sets"]["template"]
    assert set(data["by_type"]) >= {"describe"} and data["by_type"]["describe"]["turns"] >= 1
    assert 0.0 <= data["target_f1"] <= 1.0
    bad = CliRunner().invoke(app, [*args[:-2], "--set", "nope"])
    assert bad.exit_code != 0 and "nope" in bad.output
    again = CliRunner().invoke(
        app, [*args, "--against", str(out)]
    )  # the same run: nothing changes turn by turn
    assert again.exit_code == 0 and "Turn by turn (template): 0 fixed, 0 broken" in again.output, again.output


def test_eval_agent_asks_only_the_kinds_named(tmp_path):
    out = tmp_path / "agent.json"
    args = [
        "eval",
        "agent",
        "--generate",
        "3",
        "--seed",
        "11",
        "--describer",
        "heuristic",
        "--set",
        "heldout",
    ]
    res = CliRunner().invoke(app, [*args, "--kind", "describe", "--kind", "counting", "--out", str(out)])
    assert res.exit_code == 0, res.output
    by_type = json.loads(out.read_text())["sets"]["heldout"]["by_type"]
    assert set(by_type) == {"describe", "counting"}, set(by_type)
    bad = CliRunner().invoke(app, [*args, "--kind", "poems"])
    assert bad.exit_code != 0 and "poems" in bad.output and "multi_target" in bad.output
