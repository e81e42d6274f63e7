"""The evaluation-task registry (``evals/tasks.py``) and the CLI built on it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.eval import eval_app
from cli.main import app
from evals.tasks import (
    EvalTask,
    available_tasks,
    get_task,
    load_function,
    record_ids,
    register_task,
    score_run,
)
from tests.evals.helpers import write_hcstvg
from tests.evals.test_videorefer_data import bench_q_raw, rect, rle

UTILITY_COMMANDS = {"merge", "score", "report", "agent-diff"}  # operate on runs of the tasks (folders, JSON)


def test_every_cli_eval_command_is_a_registered_task_and_back() -> None:
    commands = {c.name for c in eval_app.registered_commands}
    assert commands - UTILITY_COMMANDS == set(available_tasks())
    assert available_tasks() == [
        "referring",
        "videorefer-q",
        "videorefer-d",
        "judge-d",
        "tools",
        "agent",
        "world",
        "real",
    ]
    assert available_tasks(scored=True) == ["referring", "videorefer-q", "videorefer-d"]


def test_every_registered_function_resolves() -> None:
    for name in available_tasks():
        task = get_task(name)
        assert task.description
        for ref in (task.run, task.score, task.record_ids):
            if ref is not None:
                assert callable(load_function(ref)), ref
    assert not get_task("videorefer-d").score_on_merge and get_task("referring").score_on_merge


def test_unknown_task_is_refused_with_the_allowed_names(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="unknown evaluation task 'nope'; allowed: referring, videorefer-q"):
        get_task("nope")
    with pytest.raises(ValueError, match="allowed: referring, videorefer-q, videorefer-d$"):
        score_run("world", tmp_path)
    res = CliRunner().invoke(app, ["eval", "score", "--task", "nope", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "allowed: referring, videorefer-q, videorefer-d" in " ".join(res.output.replace("│", " ").split())


def test_a_task_registers_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_task(EvalTask("world", "again", run="evals.world:evaluate"))


def test_record_ids_follow_each_evaluation_file(tmp_path) -> None:  # noqa: ANN001
    path, root = write_hcstvg(tmp_path, n_videos=3)
    from evals.referring import load_referring_eval

    assert record_ids("referring", path, root) == [r.record_id for r in load_referring_eval(path, root)]
    q = [{**bench_q_raw(), "id": i} for i in (7, 2, 5)]
    (tmp_path / "q.json").write_text(json.dumps(q))
    assert record_ids("videorefer-q", tmp_path / "q.json") == ["7", "2", "5"]
    d = [
        {
            "id": i,
            "video": f"clip{i}.mp4",
            "caption": "Reference.",
            "frame_idx": "2",
            "annotation": [{"2": {"segmentation": rle(rect(1, 1, 6, 6))}}],
        }
        for i in (4, 1)
    ]
    (tmp_path / "d.json").write_text(json.dumps(d))
    assert record_ids("videorefer-d", tmp_path / "d.json") == ["4", "1"]
