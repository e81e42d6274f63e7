"""Bench-Q answerers: the agent's reasoning step over Artemis descriptions, and a labelled offline fallback.

:class:`AgentAnswerer` treats each ``<region>`` as one of the agent's targets (a
:class:`tools.schemas.TargetDescription`: label, key box, span of its box track, and the Artemis description)
and asks any LangChain chat model to choose one option. By default the model is told to reply with the letter
only, and its raw reply is scored with the official letter rules (so a chatty reply is *not* rescued by us);
``reason=True`` asks for a short reasoning first and an ``Answer: (X)`` last line, whose letter is taken.

:class:`WordOverlapAnswerer` needs no LLM: it picks the option sharing the most words with the descriptions.
It exists so the path runs offline; its rows are labelled ``fallback-word-overlap (no LLM)`` in
``predictions.jsonl``, ``metrics.json`` and ``metrics.md``, and its accuracy is not an agent result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from evals.videorefer.bench_q import AnswerResult, ObjectDescription, option_letters
from tools.schemas import TargetDescription

logger = logging.getLogger(__name__)

ANSWER_SYSTEM_PROMPT = (
    "You answer multiple-choice questions about a video that you cannot see. The question refers to objects "
    "as [region 1], [region 2], ... (sometimes with a name such as <object2> before them). For each region you "
    "get a description written by a video referring model from the object's box track, with the frames where "
    "it is tracked. Use only these descriptions and common sense."
)
DIRECT_INSTRUCTION = (
    "Reply with the letter of the correct option in parentheses, for example (B), and nothing else."
)
REASON_INSTRUCTION = (
    "Think step by step in at most five short sentences, then write the last line exactly as 'Answer: (X)' "
    "with X the letter of the correct option."
)
_FINAL = re.compile(r"answer\s*:\s*\(?([A-Za-z])\)?", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    "a an the of to in on at and or is are was were be it its this that with by for from as into over "
    "region object video frame frames does do what which who where when how".split()
)


def as_targets(descriptions: Sequence[ObjectDescription]) -> list[TargetDescription]:
    """Each referred object as an agent target description (``target_id`` = 1-based region number)."""
    out = []
    for d in descriptions:
        frame = d.frame_idx if d.frame_idx is not None else 0
        out.append(
            TargetDescription(
                target_id=d.region + 1,
                label=d.label or f"region {d.region + 1}",
                text=d.text,
                span=d.span or (frame, frame),
                frame_idx=frame,
                box=d.box or (0.0, 0.0, 1.0, 1.0),
                source="artemis",
            )
        )
    return out


def render_targets(targets: Sequence[TargetDescription]) -> str:
    lines = []
    for t in targets:
        box = ", ".join(f"{v:.0f}" for v in t.box)
        lines.append(
            f"[region {t.target_id}] {t.label}: boxed at ({box}) on frame {t.frame_idx}, tracked on frames "
            f"{t.span[0]}-{t.span[1]}. Description: {t.text.strip() or '(empty)'}"
        )
    return "\n".join(lines)


def answer_prompt(
    question: str, options: Sequence[str], descriptions: Sequence[ObjectDescription], *, reason: bool = False
) -> str:
    return (
        f"Referred objects:\n{render_targets(as_targets(descriptions))}\n\n"
        f"Question: {question}\nOptions:\n" + "\n".join(options) + "\n\n"
        f"{REASON_INSTRUCTION if reason else DIRECT_INSTRUCTION}"
    )


def _reply_text(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def chat_model_name(chat_model: Any) -> str:
    for attr in ("model_name", "model", "deployment_name"):
        value = getattr(chat_model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(chat_model).__name__


class AgentAnswerer:
    """The agent's answer step: targets + question + options -> one option letter, with a trace.

    ``chat_model``: any LangChain chat model (``invoke(messages)``), e.g. an OpenAI-compatible endpoint
    (:func:`evals.chat_models.openai_compatible_chat`); its sampling settings are its own. Failed calls are
    retried ``max_retries`` times, then raised (the runner records the row as failed, scored wrong).
    """

    def __init__(self, chat_model: Any, *, reason: bool = False, max_retries: int = 3) -> None:
        if max_retries < 1:
            raise ValueError(f"max_retries={max_retries} must be >= 1")
        self.chat_model = chat_model
        self.reason = reason
        self.max_retries = max_retries
        self.name = f"agent:{chat_model_name(chat_model)}" + (" (reasoning)" if reason else "")

    def answer(
        self, question: str, options: Sequence[str], descriptions: Sequence[ObjectDescription]
    ) -> AnswerResult:
        from langchain_core.messages import HumanMessage, SystemMessage

        prompt = answer_prompt(question, options, descriptions, reason=self.reason)
        messages = [SystemMessage(ANSWER_SYSTEM_PROMPT), HumanMessage(prompt)]
        errors: list[str] = []
        for _ in range(self.max_retries):
            try:
                reply = _reply_text(self.chat_model.invoke(messages)).strip()
                break
            except (ConnectionError, TimeoutError, OSError, RuntimeError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                logger.warning("answer model failed (%d/%d): %s", len(errors), self.max_retries, exc)
        else:
            raise RuntimeError(f"the answer model failed {self.max_retries} times: {errors[-1]}")
        trace = [f"prompt: {prompt}", f"reply: {reply}"]
        letter = None
        if self.reason:
            finals = [m.group(1).upper() for m in _FINAL.finditer(reply)]
            letter = next((x for x in reversed(finals) if x in option_letters(options)), None)
            trace.append(
                f"final answer line: {f'({letter})' if letter else 'none (the reply is scored as it is)'}"
            )
        return AnswerResult(letter=letter, text=reply, trace=tuple(trace))


class WordOverlapAnswerer:
    """Offline fallback, **not an LLM**: the option with the most content words shared with the descriptions.

    Ties go to the earliest option. Deterministic. Labelled in every output row.
    """

    name = "fallback-word-overlap (no LLM)"

    def answer(
        self, question: str, options: Sequence[str], descriptions: Sequence[ObjectDescription]
    ) -> AnswerResult:
        seen = {w for d in descriptions for w in _WORD.findall(d.text.lower())} - _STOP
        overlap = {
            letter: len(set(_WORD.findall(text.lower())) & seen)
            for letter, text in option_letters(options).items()
        }
        best = max(overlap, key=lambda k: overlap[k])  # first maximum: dicts keep option order
        trace = (f"{self.name}: shared words per option {overlap}; chose ({best})",)
        return AnswerResult(letter=best, text=f"({best})", trace=trace)
