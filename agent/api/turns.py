"""One conversation turn on the model worker: run the agent graph and turn its updates into events.

Events (the SSE ``event:`` names): ``run`` (started), ``plan``, ``tool_call``, ``tool_result``, ``step``,
``progress`` (long steps: each describer call and each finished node), ``answer``, ``evidence``, ``tracks``,
``clarification``, ``cancelled`` (the turn was stopped: ``reason`` "client_left" or "timeout"), ``error``,
``done`` (always last; carries the status: done, clarification, cancelled, timed_out or error).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from agent.api.errors import domain_status
from agent.api.runtime import ServiceRuntime
from agent.context import RunCancelled, TurnContext, TurnTimedOut
from agent.graph import turn_input
from artemis_model.types import Box

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class TurnRequest:
    thread_id: str
    text: str
    video_path: Path
    box: Box | None = None
    frame_idx: int = 0
    annotate_dir: Path | None = None
    evidence_url: Callable[[int], str] | None = None
    """Maps an evidence frame index to its URL (None: no evidence frame URLs)."""


@dataclass
class TurnResult:
    status: str = "done"
    turn: int = 0
    answer: str = ""
    clarification: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    tracks: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None


def pending_clarification(runtime: ServiceRuntime, thread_id: str) -> dict[str, Any] | None:
    """The clarification the agent waits on for ``thread_id`` (None when it waits on nothing)."""
    state = runtime.graph.get_state({"configurable": {"thread_id": thread_id}})
    for intr in state.interrupts:
        if isinstance(intr.value, dict):
            return intr.value
    return None


def run_turn(runtime: ServiceRuntime, req: TurnRequest, emit: Emit, cancel: threading.Event) -> TurnResult:
    """Runs on the model worker thread. Checks ``cancel`` between steps (and, through this turn's
    :class:`~agent.context.TurnContext`, in every describer call, which also reports progress)."""
    graph = runtime.graph
    config = {"configurable": {"thread_id": req.thread_id}}
    budget_s = runtime.settings.turn_budget_s
    context = TurnContext.with_budget(
        budget_s, on_progress=lambda data: emit("progress", data), cancel=cancel
    )
    result = TurnResult()
    try:
        inp = turn_input(
            graph,
            config,
            req.text,
            video=str(req.video_path),
            box=req.box,
            frame_idx=req.frame_idx,
            annotate_dir=str(req.annotate_dir) if req.annotate_dir else None,
        )
        emit("run", {"thread_id": req.thread_id, "resume": not isinstance(inp, dict)})
        for chunk in graph.stream(inp, config, stream_mode="updates", context=context):
            context.check()
            for node, update in chunk.items():
                _emit_update(node, update, req, result, emit)
                emit("progress", {"stage": "node", "node": node, "status": "done"})
        result.turn = int(graph.get_state(config).values.get("turn", 0))
        if result.clarification is not None:
            result.status = "clarification"
    except TurnTimedOut:
        logger.warning("turn on %s stopped: over its %s s wall-time budget", req.thread_id, budget_s)
        result.status = "timed_out"
        emit("cancelled", {"reason": "timeout", "budget_s": budget_s})
    except RunCancelled:
        logger.info("turn on %s cancelled: the client disconnected", req.thread_id)
        result.status = "cancelled"
        emit("cancelled", {"reason": "client_left"})
    except Exception as exc:  # noqa: BLE001 - reported to the client as an error event, then re-checked
        mapped = domain_status(exc)
        if mapped is None:
            logger.exception("turn on %s failed", req.thread_id)
            mapped = (500, "internal_error")
        result.status = "error"
        result.error = {"status": mapped[0], "code": mapped[1], "detail": str(exc) or type(exc).__name__}
        retry_after = (getattr(exc, "headers", None) or {}).get("Retry-After")
        # a busy model worker mid-turn: when to ask again, on the stream and on the turn's 503
        if retry_after is not None:
            result.error["retry_after"] = retry_after
        emit("error", result.error)
    emit("done", {"status": result.status, "turn": result.turn})
    return result


def _emit_update(node: str, update: dict[str, Any], req: TurnRequest, result: TurnResult, emit: Emit) -> None:
    if node == "__interrupt__":
        clar = to_jsonable_python(update[0].value if isinstance(update, tuple | list) else update)
        result.clarification = clar
        emit("clarification", clar)
        return
    update = update or {}
    for step in update.get("steps", []):
        s = to_jsonable_python(step)
        if s["node"] == "plan":
            emit("plan", {"planner": s["tool"], "steps": s["input"].get("steps", []), "plan": s["input"]})
        elif s["tool"]:
            call = {"tool": s["tool"], "node": s["node"], "input": s["input"], "target_id": s["target_id"]}
            emit("tool_call", call)
            emit("tool_result", {**call, "output": s["output"]})
        else:
            emit("step", {"node": s["node"], "output": s["output"]})
    if node == "answer":
        result.answer = update.get("answer", "")
        emit("answer", {"text": result.answer})
        evidence = to_jsonable_python(update.get("evidence")) or {"targets": [], "frames": []}
        frames = [int(Path(p).stem.split("_")[-1]) for p in evidence.get("frames", [])]
        evidence["frames"] = [
            {"frame_idx": f, "url": req.evidence_url(f) if req.evidence_url else None} for f in frames
        ]
        result.evidence = evidence
        emit("evidence", evidence)
        result.tracks = [
            {"target_id": t.id, "label": t.label, "boxes": [list(b) if b else None for b in t.boxes]}
            for t in update.get("last_targets", [])
        ]
        emit("tracks", {"tracks": result.tracks})
