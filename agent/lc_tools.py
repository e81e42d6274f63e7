"""The registered tools as LangChain tools (the only place they meet LangChain), plus a chat-model -> text-LLM
adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, StructuredTool

from agent.deps import AgentDeps
from tools.registry import ToolRegistry, ToolSpec, default_tools


def as_text_llm(chat_model: BaseChatModel) -> Callable[[str], str]:
    """A LangChain chat model as the ``str -> str`` callable the summarize tool takes."""

    def run(prompt: str) -> str:
        return str(chat_model.invoke([HumanMessage(prompt)]).content)

    return run


def langchain_tool(spec: ToolSpec, deps: AgentDeps) -> StructuredTool:
    """``spec`` as a StructuredTool: its input (plus ``video``, a path, when it works on a video) as the
    arguments, its needs from ``deps``, its brief (or whole) output as a JSON-able result."""

    def run(**kwargs: Any) -> Any:
        path = kwargs.pop("video", None)
        video = deps.open_video(path) if "video" in spec.needs else None
        out = spec.run(kwargs, video=video, deps=deps)
        return spec.brief(out) if spec.brief is not None else out.model_dump(mode="json")

    args_schema = spec.input_model(
        f"{spec.title}ToolArgs",
        video_field="video",
        video_description="Path of the video",
    )
    return StructuredTool.from_function(
        run, name=spec.name, description=spec.description, args_schema=args_schema
    )


def make_langchain_tools(deps: AgentDeps | None = None, tools: ToolRegistry | None = None) -> list[BaseTool]:
    """Every registered tool (:func:`tools.registry.default_tools` unless ``tools``) as a LangChain tool."""
    deps = deps or AgentDeps()
    return [langchain_tool(spec, deps) for spec in (tools if tools is not None else default_tools())]
