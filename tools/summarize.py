"""``summarize``: combine descriptions into one answer with an LLM, checked against its inputs.

The LLM is a plain ``str -> str`` callable (the agent adapts a LangChain chat model to it; the offline one
is SmolLM2-135M-Instruct, see :mod:`tools.smollm`). A summary that drops a target or names a target, colour
or shape absent from the inputs is rejected and replaced by a deterministic merge.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from tools.grounding.query import mentioned_colours, mentioned_shapes
from tools.registry import tool_spec
from tools.schemas import SummarizeArgs, SummarizeResult, TargetDescription

logger = logging.getLogger(__name__)

TextLLM = Callable[[str], str]
_TARGET_REF = re.compile(r"\btarget\s*#?\s*(\d+)", re.IGNORECASE)


def summarize(
    texts: Sequence[str] | Sequence[TargetDescription],
    instruction: str,
    *,
    llm: TextLLM | Literal["auto", "smollm2", "merge"] | None = None,
) -> str:
    """One text answering ``instruction`` from ``texts`` (plain strings or per-target descriptions).

    ``llm``: a ``str -> str`` callable; ``"smollm2"`` for the offline SmolLM2; ``"merge"`` (or ``None``
    / ``"auto"`` when SmolLM2 is not installed) for the deterministic merge only. A name builds its LLM for
    this call: resolve it once with :func:`resolve_llm` (the runtime does) to reuse the loaded model.
    """
    if not texts:
        return "Nothing was found to describe."
    merged = merge(texts)
    fn = resolve_llm(llm)
    if fn is None:
        return merged
    prompt = build_prompt(texts, instruction)
    try:
        summary = fn(prompt).strip()
    except (RuntimeError, ValueError, OSError) as exc:
        logger.warning("summary LLM failed (%s); using the merge", exc)
        return merged
    problems = validate_summary(summary, texts)
    if problems:
        logger.info("LLM summary rejected (%s); using the merge", "; ".join(problems))
        return merged
    return summary


@tool_spec("summarize", "Summarize descriptions faithfully.", brief=lambda out: out.text)
def summarize_tool(
    args: SummarizeArgs, *, summarizer: TextLLM | Literal["auto", "smollm2", "merge"] | None
) -> SummarizeResult:
    """:func:`summarize` as a registered tool."""
    return SummarizeResult(text=summarize(args.texts, args.instruction, llm=summarizer))


def resolve_llm(llm: TextLLM | str | None, *, cache_dir: Path | None = None) -> TextLLM | None:
    """The ``str -> str`` LLM ``llm`` names (``None``: the deterministic merge): a callable as it is;
    ``"smollm2"`` (or ``"auto"`` / ``None`` when it is installed) a :class:`tools.smollm.SmolLM2` keeping its
    converted weights under ``cache_dir`` (it loads them on first use); ``"merge"`` none."""
    if callable(llm):
        return llm
    if llm == "merge":
        return None
    if llm == "smollm2" or llm in (None, "auto"):
        from tools.smollm import SmolLM2, smollm2_available

        if llm == "smollm2" or smollm2_available():
            return SmolLM2(cache_dir)
        return None
    raise ValueError(f"llm={llm!r} must be a callable or one of 'auto', 'smollm2', 'merge'")


def build_prompt(texts: Sequence[str] | Sequence[TargetDescription], instruction: str) -> str:
    lines = []
    for i, t in enumerate(texts):
        if isinstance(t, TargetDescription):
            where = f"frames {t.span[0]}-{t.span[1]}"
            lines.append(f"- target {t.target_id} ({t.label}, {where}): {t.text}")
        else:
            lines.append(f"- ({i + 1}) {t}")
    return (
        "Combine these observations of a video into a short answer. Mention every target by its name "
        "(for example 'the red circle'), and do not mention any object, colour or shape that is not listed.\n"
        f"Question: {instruction}\nObservations:\n" + "\n".join(lines) + "\nAnswer:"
    )


def merge(texts: Sequence[str] | Sequence[TargetDescription]) -> str:
    """Deterministic summary: per target, its label and span and its (per-segment) descriptions in order."""
    if all(isinstance(t, str) for t in texts):
        return " ".join(dict.fromkeys(_sentence(t) for t in texts if t.strip()))
    by_target: dict[int, list[TargetDescription]] = {}
    for t in texts:
        if not isinstance(t, TargetDescription):
            raise TypeError(f"cannot mix strings and TargetDescription in summarize inputs: {t!r}")
        by_target.setdefault(t.target_id, []).append(t)
    parts = []
    for tid, descs in by_target.items():
        descs.sort(key=lambda d: d.span[0])
        first, last = descs[0].span[0], descs[-1].span[1]
        head = f"The {descs[0].label} (target {tid}, frames {first}-{last})"
        if len(descs) == 1 and descs[0].segment is None:
            parts.append(f"{head}: {_sentence(descs[0].text)}")
        else:
            steps = [f"in frames {d.span[0]}-{d.span[1]}, {_lower_first(_sentence(d.text))}" for d in descs]
            parts.append(f"{head}: " + " Then ".join(steps))
    return " ".join(parts)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def validate_summary(summary: str, texts: Sequence[str] | Sequence[TargetDescription]) -> list[str]:
    """Problems with ``summary`` (empty list when it is fine).

    Every input target must be mentioned (its label, or "target N"); no colour, shape or target id absent
    from the inputs may be named.
    """
    problems = []
    if not summary.strip():
        return ["empty summary"]
    low = summary.lower()
    source_text = " ".join(t.label + " " + t.text if isinstance(t, TargetDescription) else t for t in texts)
    for t in texts:
        if isinstance(t, TargetDescription) and not _mentions(low, t):
            problems.append(f"target {t.target_id} ({t.label}) is not mentioned")
    extra_colours = mentioned_colours(summary) - mentioned_colours(source_text)
    extra_shapes = mentioned_shapes(summary) - mentioned_shapes(source_text)
    if extra_colours:
        problems.append(f"names colours absent from the inputs: {sorted(extra_colours)}")
    if extra_shapes:
        problems.append(f"names shapes absent from the inputs: {sorted(extra_shapes)}")
    ids = {t.target_id for t in texts if isinstance(t, TargetDescription)}
    extra_ids = {int(m) for m in _TARGET_REF.findall(summary)} - ids
    if extra_ids:
        problems.append(f"names targets absent from the inputs: {sorted(extra_ids)}")
    return list(dict.fromkeys(problems))


def _mentions(low: str, t: TargetDescription) -> bool:
    if t.label.lower() in low or re.search(rf"\btarget\s*#?\s*{t.target_id}\b", low):
        return True
    words = t.label.lower().split()
    return bool(words) and all(re.search(rf"\b{re.escape(w)}", low) for w in words)
