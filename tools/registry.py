"""The tool registry: each tool once -- name, description, plain function, pydantic input and output, and the
runtime dependencies it needs. No LangChain or FastAPI here: the agent turns every registered tool into a
LangChain tool (:mod:`agent.lc_tools`), the service into a ``POST /tools/{name}`` route
(:mod:`agent.api.routes.tools`).

A tool is a function ``fn(args: SomeInput, *, <needs>) -> SomeOutput``: one pydantic model in, one out; its
keyword-only parameters name what it needs from the runtime (:data:`NEEDS`). Declare it with :func:`tool_spec`
and add it to :func:`default_tools`::

    class EchoArgs(BaseModel):
        text: str

    class Echo(BaseModel):
        text: str

    @tool_spec("echo", "Repeat a text.")
    def echo_tool(args: EchoArgs) -> Echo:
        return Echo(text=args.text)
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

NEEDS: tuple[str, ...] = (
    "video",
    "describer",
    "summarizer",
    "grounding_backend",
    "grounding_settings",
    "track_cache",
)
"""What a tool may ask for: ``video`` is the opened video (each caller names it its own way: a path for the
agent's LangChain tools, a ``video_id`` over HTTP); the others are pieces of the runtime
(:class:`tools.runtime.Runtime`), read as attributes of the caller's dependencies (:class:`agent.deps.AgentDeps`
exposes them)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ToolSpec(Generic[In, Out]):
    """One tool: ``fn(args: input, **needs) -> output``. Calling the spec calls ``fn``."""

    name: str
    description: str
    fn: Callable[..., Out]
    input: type[In]
    output: type[Out]
    needs: frozenset[str] = field(default_factory=frozenset)
    brief: Callable[[Out], Any] | None = None
    """A compact JSON-able form of the output for a language model (``None``: the whole output)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be lower_snake_case (it becomes /tools/{{name}})")
        for what, model in (("input", self.input), ("output", self.output)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"tool {self.name!r}: {what} {model!r} must be a pydantic model")
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"tool {self.name!r} needs {sorted(unknown)}; a tool may need only {NEEDS}")
        object.__setattr__(self, "needs", frozenset(self.needs))

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Out],
        *,
        name: str,
        description: str,
        brief: Callable[[Out], Any] | None = None,
    ) -> ToolSpec:
        """The spec of ``fn(args: Input, *, <needs>) -> Output``, read from its signature and type hints."""
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            raise TypeError(f"tool {name!r}: {fn.__name__} must take its input model as the first argument")
        needs = [p.name for p in params[1:] if p.kind is p.KEYWORD_ONLY]
        others = [p.name for p in params[1:] if p.kind is not p.KEYWORD_ONLY]
        if others:
            raise TypeError(f"tool {name!r}: {fn.__name__}'s needs {others} must be keyword-only (after *)")
        return cls(
            name=name,
            description=description,
            fn=fn,
            input=hints.get(params[0].name),
            output=hints.get("return"),
            needs=frozenset(needs),
            brief=brief,
        )

    @property
    def title(self) -> str:
        """The name in PascalCase (``segment_shots`` -> ``SegmentShots``), for the models callers derive."""
        return "".join(w.capitalize() for w in self.name.split("_"))

    def __call__(self, args: In | Mapping[str, Any], **needs: Any) -> Out:
        """Run the tool on ``args`` (the input model, or a mapping validated into it) with its ``needs``."""
        missing = self.needs - needs.keys()
        if missing:
            raise TypeError(f"tool {self.name!r} needs {sorted(missing)}")
        return self.fn(self.input.model_validate(args), **{k: needs[k] for k in self.needs})

    def run(self, args: In | Mapping[str, Any], *, video: Any = None, deps: Any = None) -> Out:
        """Run the tool with ``video`` (when it needs one) and every other need read from ``deps`` by name."""
        return self(args, **{k: video if k == "video" else getattr(deps, k) for k in self.needs})

    def input_model(
        self, model_name: str, *, video_field: str, video_description: str, video_example: str | None = None
    ) -> type[BaseModel]:
        """The input as a caller's own model ``model_name``, extra fields forbidden, plus -- when the tool needs
        a video -- a required string ``video_field`` that names it (a path for the agent, an id over HTTP). The
        input's examples are kept, with ``video_example`` as the video (dropped when there is none)."""
        extra = self.input.model_config.get("json_schema_extra")
        examples = list(extra.get("examples", [])) if isinstance(extra, dict) else []
        fields: dict[str, tuple[type, Any]] = {}
        if "video" in self.needs:
            fields[video_field] = (str, Field(description=video_description))
            examples = [{video_field: video_example, **ex} for ex in examples if video_example is not None]
        return _subclass(self.input, model_name, fields=fields, examples=examples)


def _subclass(
    base: type[BaseModel], name: str, *, fields: Mapping[str, tuple[type, Any]], examples: list
) -> type[BaseModel]:
    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__doc__": base.__doc__,
        "__annotations__": {k: t for k, (t, _) in fields.items()},
        **{k: f for k, (_, f) in fields.items()},
        "model_config": ConfigDict(
            extra="forbid", json_schema_extra={"examples": examples} if examples else None
        ),
    }
    return type(name, (base,), namespace)


def tool_spec(
    name: str, description: str, *, brief: Callable[[Any], Any] | None = None
) -> Callable[[Callable[..., Out]], ToolSpec]:
    """Decorator: ``fn(args: Input, *, <needs>) -> Output`` becomes a :class:`ToolSpec` (still callable)."""

    def wrap(fn: Callable[..., Out]) -> ToolSpec:
        return ToolSpec.from_function(fn, name=name, description=description, brief=brief)

    return wrap


class ToolRegistry:
    """An immutable, ordered set of tools by name; :meth:`with_tools` makes a bigger copy."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"tool {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def get(self, name: str) -> ToolSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown tool {name!r}; registered: {', '.join(self._specs)}") from None

    def with_tools(self, *specs: ToolSpec) -> ToolRegistry:
        """A new registry: these tools and ``specs`` (a name already here is an error)."""
        return ToolRegistry([*self._specs.values(), *specs])

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names})"


@functools.cache
def default_tools() -> ToolRegistry:
    """Every tool the project ships, in the order the agent and the API list them (a new tool: import it here
    and add it to the list)."""
    from tools.grounding.tool import ground_tool
    from tools.refer import describe_tool
    from tools.segment import segment_tool
    from tools.summarize import summarize_tool
    from tools.track import track_tool

    return ToolRegistry([ground_tool, track_tool, describe_tool, segment_tool, summarize_tool])


def get_tool(name: str) -> ToolSpec:
    """The shipped tool called ``name`` (the error lists the registered ones)."""
    return default_tools().get(name)


def all_tools() -> list[ToolSpec]:
    return list(default_tools())
