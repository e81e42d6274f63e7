"""The tool registry: specs read from a function's signature, an immutable registry, the shipped tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from tools.describers import HeuristicDescriber
from tools.registry import NEEDS, ToolRegistry, ToolSpec, all_tools, default_tools, get_tool, tool_spec
from tools.segment import segment
from tools.video import load_video

REPO = Path(__file__).resolve().parents[2]


class EchoArgs(BaseModel):
    text: str


class Echo(BaseModel):
    text: str


@tool_spec("echo", "Repeat a text.")
def echo(args: EchoArgs) -> Echo:
    return Echo(text=args.text)


def _video_tool(args: EchoArgs, *, video, describer) -> Echo:
    return Echo(text=f"{args.text} {video} {describer}")


def test_a_spec_is_read_from_the_function():
    assert (echo.name, echo.input, echo.output, echo.needs) == ("echo", EchoArgs, Echo, frozenset())
    assert echo({"text": "hi"}) == echo(EchoArgs(text="hi")) == Echo(text="hi")
    with pytest.raises(ValidationError):
        echo({"txt": "hi"})

    spec = ToolSpec.from_function(_video_tool, name="video_tool", description="d")
    assert spec.needs == {"video", "describer"} and spec.title == "VideoTool"
    with pytest.raises(TypeError, match=r"needs \['describer'\]"):
        spec({"text": "a"}, video="v")
    deps = type("Deps", (), {"describer": "D", "summarizer": "S"})()
    assert spec.run({"text": "a"}, video="v", deps=deps).text == "a v D"


def _positional_need(args: EchoArgs, video) -> Echo: ...


def _unknown_need(args: EchoArgs, *, gpu) -> Echo: ...


def _no_model(args: EchoArgs) -> str: ...


@pytest.mark.parametrize(
    "fn, name, match",
    [
        (_positional_need, "a", "keyword-only"),
        (_unknown_need, "a", "may need only"),
        (_no_model, "a", "must be a pydantic model"),
        (echo.fn, "Bad Name", "lower_snake_case"),
    ],
)
def test_bad_specs_are_refused(fn, name, match):
    with pytest.raises((TypeError, ValueError), match=match):
        ToolSpec.from_function(fn, name=name, description="d")


def test_the_registry_is_immutable_and_copies():
    base = ToolRegistry([echo])
    bigger = base.with_tools(ToolSpec.from_function(_video_tool, name="video_tool", description="d"))
    assert base.names == ["echo"] and bigger.names == ["echo", "video_tool"] and len(bigger) == 2
    assert "video_tool" in bigger and "video_tool" not in base
    with pytest.raises(ValueError, match="registered twice"):
        base.with_tools(echo)
    with pytest.raises(KeyError, match="unknown tool 'nope'; registered: echo"):
        base.get("nope")


def test_a_callers_input_model():
    plain = echo.input_model("EchoIn", video_field="video_id", video_description="d", video_example="x")
    assert set(plain.model_fields) == {"text"} and plain.__name__ == "EchoIn"
    with pytest.raises(ValidationError, match="extra"):
        plain(text="a", other=1)
    segment_tool = get_tool("segment")
    body = segment_tool.input_model(
        "SegmentIn", video_field="video_id", video_description="d", video_example="x"
    )
    assert set(body.model_fields) == {"n", "video_id"}
    assert body.model_json_schema()["examples"] == [{"video_id": "x", "n": 4}]
    without_example = segment_tool.input_model("SegmentArgsV", video_field="video", video_description="d")
    assert "examples" not in without_example.model_json_schema()


def test_the_shipped_tools(two_reds_clip, two_reds_mp4):
    assert default_tools().names == ["ground", "track", "describe", "segment", "summarize"]
    assert [t.name for t in all_tools()] == default_tools().names and default_tools() is default_tools()
    assert {t.name: t.needs for t in all_tools()} == {
        "ground": {"video", "grounding_backend", "grounding_settings", "track_cache"},
        "track": {"video"},
        "describe": {"video", "describer"},
        "segment": {"video"},
        "summarize": {"summarizer"},
    }
    assert set().union(*(t.needs for t in all_tools())) == set(NEEDS)
    with pytest.raises(KeyError, match="registered: ground, track, describe, segment, summarize"):
        get_tool("refer")

    video = load_video(two_reds_mp4)
    segs = get_tool("segment")({"n": 3}, video=video)
    assert segs.segments == segment(video, 3)
    box = list(two_reds_clip.boxes[2][0])
    d = get_tool("describe")({"box": box}, video=video, describer=HeuristicDescriber())
    assert d.answer == "The blue star moves down." and d.track.width == 160 and d.box == box
    assert get_tool("describe").brief(d) == d.answer


def test_tools_import_no_langchain_or_fastapi():
    code = (
        "import sys; from tools.registry import default_tools; default_tools(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'langchain_core', 'langgraph', 'fastapi'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
