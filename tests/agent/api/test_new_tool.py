"""The seam for a new tool: one function plus one registration, and it is a LangChain tool, listed in the LLM
planner's prompt and served at ``POST /tools/{name}`` (documented in the OpenAPI schema) -- no other file
changes. The registration lives in a registry copy, so nothing leaks into the shipped tools."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from pydantic import BaseModel, ConfigDict, Field

from agent.api import Settings, create_app
from agent.deps import AgentDeps
from agent.lc_tools import make_langchain_tools
from agent.planner import LLMPlanner
from artemis_model.types import validate_frame_idx
from tests.agent.api.conftest import upload
from tests.agent.conftest import ScriptedChatModel
from tools.describers import HeuristicDescriber
from tools.grounding.backends import WORLD_GROUNDING
from tools.registry import default_tools, tool_spec
from tools.runtime import Runtime
from tools.video import VideoLike, load_video


class FrameArgs(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"frame_idx": 0}]})

    frame_idx: int = Field(default=0, ge=0)


class Brightness(BaseModel):
    frame_idx: int
    mean: float = Field(description="Mean pixel value (0-255)")


@tool_spec("brightness", "How bright one frame is.")
def brightness(args: FrameArgs, *, video: VideoLike) -> Brightness:
    frame = video.get_frames([validate_frame_idx(args.frame_idx, video.num_frames)])[0]
    return Brightness(frame_idx=args.frame_idx, mean=float(frame.mean()))


TOOLS = default_tools().with_tools(brightness)


@pytest.fixture
def mp4(red_circle, tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(red_circle[1])
    return path


def test_a_new_tool_is_a_langchain_tool_and_in_the_planner_prompt(mp4):
    expected = brightness({"frame_idx": 3}, video=load_video(mp4)).model_dump()
    lc = {
        t.name: t
        for t in make_langchain_tools(
            AgentDeps(runtime=Runtime(grounding_settings=WORLD_GROUNDING, describer=HeuristicDescriber())),
            TOOLS,
        )
    }
    assert list(lc) == [*default_tools().names, "brightness"]
    assert lc["brightness"].description == "How bright one frame is."
    assert set(lc["brightness"].args) == {"frame_idx", "video"}
    assert lc["brightness"].invoke({"video": str(mp4), "frame_idx": 3}) == expected

    call = {"name": "brightness", "args": {"video": str(mp4), "frame_idx": 3}, "id": "call-1"}
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode(list(lc.values())))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    reply = graph.compile().invoke({"messages": [AIMessage("", tool_calls=[call])]})["messages"][-1]
    assert reply.tool_call_id == "call-1" and str(expected["mean"]) in reply.content

    planner = LLMPlanner(ScriptedChatModel(responses=[]), tools=TOOLS)
    assert "brightness (how bright one frame is)" in planner.prompt
    assert "brightness" not in LLMPlanner(ScriptedChatModel(responses=[])).prompt


def test_a_new_tool_is_an_api_route(tmp_path, red_circle):
    app = create_app(
        Settings(data_dir=tmp_path / "data", describer="heuristic", grounding_backend="offline"), tools=TOOLS
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        vid = upload(client, red_circle[1]).json()["id"]
        r = client.post("/tools/brightness", json={"video_id": vid, "frame_idx": 3})
        assert r.status_code == 200, r.text
        assert r.json()["frame_idx"] == 3 and 0 < r.json()["mean"] < 255
        r = client.post("/tools/brightness", json={"video_id": vid, "frame_idx": 99})
        assert r.status_code == 422 and "out of range" in r.json()["detail"]
        assert client.post("/tools/brightness", json={"video_id": "a" * 32}).status_code == 404
        assert client.post("/tools/brightness", json={"video_id": vid, "colour": "red"}).status_code == 422

        op = client.get("/openapi.json").json()
        post = op["paths"]["/tools/brightness"]["post"]
        assert post["summary"] == "How bright one frame is" and post["operationId"] == "brightness_tool"
        assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BrightnessIn")
        ok = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok.endswith("/Brightness") and "503" in post["responses"]
        body = op["components"]["schemas"]["BrightnessIn"]
        assert set(body["properties"]) == {"video_id", "frame_idx"} and body["required"] == ["video_id"]
        assert body["additionalProperties"] is False and body["examples"][0]["frame_idx"] == 0


def test_the_shipped_tools_do_not_see_it(client):
    assert "brightness" not in default_tools()
    assert client.post("/tools/brightness", json={}).status_code == 404
    assert "/tools/brightness" not in client.get("/openapi.json").json()["paths"]
