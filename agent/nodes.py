"""The agent's nodes: small functions ``(state, deps) -> state update``, bound to deps in ``graph.py``; the nodes
that describe also read the run's :class:`~agent.context.TurnContext` (LangGraph's ``runtime.context``)."""

from __future__ import annotations

import logging

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime as GraphRuntime
from langgraph.types import interrupt

from agent.clarify import common_frame, order_candidates, resolve_choice
from agent.context import TurnContext, turn_describer
from agent.deps import AgentDeps
from agent.memory_tools import run_memory_tools
from agent.planner import PlanContext
from agent.references import SAME_OBJECT_IOU, recall_targets, remember, same_object
from agent.state import AgentState, Candidate, Clarification, Evidence, Step, TargetEvidence
from artemis_model.types import box_iou
from tools.annotate import annotate_frames
from tools.compare import compare, comparison_asked, measure, superlative_asked
from tools.describers import can_sample
from tools.grounding import ground as ground_tool
from tools.grounding.backends import miss_reason
from tools.grounding.query import mentioned_colours, mentioned_shapes, parse_query, referring_phrases
from tools.memory import ObjectMemory, build_memory, first_motions
from tools.queries import answer_memory_question, memory_question
from tools.refer import refer_checked, refer_segments, refer_targets
from tools.schemas import Target
from tools.segment import segment, video_cuts
from tools.summarize import merge, summarize
from tools.track import user_target

logger = logging.getLogger(__name__)


def understand(state: AgentState, deps: AgentDeps) -> dict:
    """Start a turn: open the video, reset the per-turn fields."""
    video = deps.runtime.open_video(state["video"])
    turn = state.get("turn", 0) + 1
    return {
        "turn": turn,
        "num_frames": video.num_frames,
        "plan": None,
        "targets": [],
        "descriptions": [],
        "clarification": None,
        "ambiguous": [],
        "groups": [],
        "result": None,
        "note": "",
        "answer": "",
        "evidence": None,
        "steps": [
            Step(
                turn=turn,
                node="understand",
                output=f"{video.num_frames} frames, question {state['question']!r}",
            )
        ],
    }


def plan(state: AgentState, deps: AgentDeps) -> dict:
    ctx = PlanContext(
        question=state["question"],
        has_box=state.get("box") is not None,
        num_frames=state["num_frames"],
        long_video_frames=deps.long_video_frames,
        previous_labels=[t.label for t in state.get("last_targets", [])],
        previous_answer=state.get("last_answer", ""),
    )
    p = deps.planner(ctx)
    if state["num_frames"] > deps.long_video_frames and not p.long_video:
        p = p.model_copy(update={"long_video": True})
    step = Step(
        turn=state["turn"],
        node="plan",
        tool=getattr(deps.planner, "name", "planner"),
        output="; ".join(p.steps) or p.target_source,
        input=p.model_dump(),
    )
    return {"plan": p, "steps": [step]}


def use_box(state: AgentState, deps: AgentDeps) -> dict:
    """The user's box (on ``frame_idx``) becomes target 0, tracked over the video; the box itself, unchanged,
    on its frame, is the key box the describer receives (:func:`tools.track.user_target`)."""
    video = deps.runtime.open_video(state["video"])
    box, frame_idx = state["box"], state.get("frame_idx", 0)
    target = user_target(video, box, frame_idx=frame_idx)
    label = target.label
    step = Step(
        turn=state["turn"],
        node="use_box",
        tool="track",
        input={"box": list(box), "frame_idx": frame_idx},
        output=f"{label}, frames {target.span[0]}-{target.span[1]}",
        target_id=0,
    )
    return {"targets": [target], "groups": [[0]], "steps": [step]}


def ground(state: AgentState, deps: AgentDeps) -> dict:
    """Find the objects the plan's query names, each phrase on its own ("the red circle or the blue square"),
    or the objects named in the previous answer. A singular phrase that matches several objects is noted in
    ``ambiguous`` (the clarify node asks which one)."""
    p = state["plan"]
    video = deps.runtime.open_video(state["video"])
    steps = []
    if p.target_source == "answer_entities":
        queries = _new_entities(state.get("last_answer", ""), state.get("last_targets", []))
    else:
        queries = referring_phrases(p.query or "") or [p.query or ""]
    targets: list[Target] = []
    ambiguous: list[dict] = []
    reasons: list[str] = []
    groups: list[list[int]] = []
    for q in queries:
        found = ground_tool(
            video,
            q,
            backend=deps.runtime.grounding_backend,
            settings=deps.runtime.grounding_settings,
            cache=deps.runtime.track_cache,
        )
        reason = None if found else miss_reason(deps.runtime.grounding_backend, q)
        reasons += [reason] if reason else []
        steps.append(
            Step(
                turn=state["turn"],
                node="ground",
                tool="ground",
                input={"query": q},
                output=", ".join(
                    f"#{t.id} {t.label} (frames {t.span[0]}-{t.span[1]}, score {t.score:.2f})" for t in found
                )
                or reason
                or "nothing found",
            )
        )
        new = [t for t in found if not any(same_object(t, u) for u in targets)]
        groups.append(
            [i for i, u in enumerate(targets) if any(same_object(t, u) for t in found)]
            + [len(targets) + k for k in range(len(new))]
        )
        over_all = len(queries) == 1 and asks_over_all(state["question"])
        if p.target_source == "ground" and len(new) >= 2 and not parse_query(q).plural and not over_all:
            ambiguous.append({"phrase": q, "ids": list(range(len(targets), len(targets) + len(new)))})
        targets += new
    if not targets and reasons:  # the phrase names nothing the detector knows: the answer says so
        return {"targets": [], "ambiguous": [], "steps": steps, "answer": "; ".join(reasons) + "."}
    note = ""
    if len(targets) > deps.max_targets and p.memory_question is None and not ambiguous:
        kept = prominent(targets, deps.max_targets, keep=extreme(targets, state["question"]))
        note = f"I looked at the {len(kept)} most prominent of {len(targets)} objects found."
        steps.append(Step(turn=state["turn"], node="ground", tool="budget", output=note))
        old = {id(t): i for i, t in enumerate(targets)}
        new_id = {old[id(t)]: k for k, t in enumerate(kept)}
        groups = [[new_id[i] for i in g if i in new_id] for g in groups]
        targets = kept
    targets = [t.model_copy(update={"id": i}) for i, t in enumerate(targets)]
    return {"targets": targets, "ambiguous": ambiguous, "groups": groups, "steps": steps, "note": note}


def prominent(targets: list[Target], k: int, keep: int | None = None) -> list[Target]:
    """The ``k`` most prominent targets (frames seen x mean box area), in their original order; ``keep`` (an
    index into ``targets``) is one of them in any case, in place of the least prominent."""

    def weight(t: Target) -> float:
        boxes = [b for b in t.boxes if b is not None]
        return len(boxes) * sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / max(1, len(boxes))

    best = sorted(range(len(targets)), key=lambda i: (-weight(targets[i]), i))[:k]
    if keep is not None and keep not in best:
        best[-1] = keep
    return [targets[i] for i in sorted(best)]


def extreme(targets: list[Target], question: str) -> int | None:
    """The index of the target a comparison question picks over all of ``targets`` ("Which object moves
    slowest?"), or None when it asks none: a budget cut keeps it, so that the answer, computed over the kept
    targets, is the one over every target found."""
    asked = comparison_asked(question)
    if asked is None or len(targets) < 2:
        return None
    what, largest_wins = asked
    values = [measure(t, what) for t in targets]
    return (max if largest_wins else min)(range(len(targets)), key=values.__getitem__)


def asks_over_all(question: str) -> bool:
    """Whether a question about one phrase asks about every object it matches, not one of them: counting
    ("How many cars are there?"), a superlative or order question ("Which person walks fastest?", "Which car
    leaves first?"): no clarification is asked for a singular phrase matching several objects."""
    toks = question.lower().split()
    asked = memory_question(question)
    if asked is not None and asked.kind in ("count", "order"):
        return True
    return bool(toks) and toks[0] in {"which", "who"} and comparison_asked(question) is not None


def _new_entities(answer: str, previous: list[Target]) -> list[str]:
    """Colour+shape phrases named in ``answer`` that are not among the ``previous`` targets."""
    seen = {t.label for t in previous}
    out = []
    low = answer.lower()
    for colour in sorted(mentioned_colours(answer)):
        for shape in sorted(mentioned_shapes(answer)):
            phrase = f"{colour} {shape}"
            if phrase in low and phrase not in seen:
                out.append(f"the {phrase}")
    return out


def recall(state: AgentState, deps: AgentDeps) -> dict:
    """Reuse the targets of the previous answer (a pronoun in a follow-up question), completed with the objects
    talked about before when the question wants several ("Which of them is faster?")."""
    prev = recall_targets(state["question"], state.get("last_targets", []), state.get("mentioned", []))
    prev = [t.model_copy(update={"id": i}) for i, t in enumerate(prev)]
    step = Step(
        turn=state["turn"],
        node="recall",
        output=", ".join(f"#{t.id} {t.label}" for t in prev) or "no previous targets",
    )
    return {"targets": list(prev), "groups": [[t.id for t in prev]], "steps": [step]}


def is_ambiguous(state: AgentState) -> bool:
    return bool(state.get("ambiguous"))


def clarify(state: AgentState, deps: AgentDeps) -> dict:
    """For each singular phrase that matched several objects, ask which one it means; resume with the user's
    answer. The other candidates are dropped; targets of the question's other phrases are kept."""
    targets = state["targets"]
    drop: set[int] = set()
    asked: Clarification | None = None
    choices = []
    for amb in state["ambiguous"]:
        chosen, asked, reply = _ask_which(amb["phrase"], [targets[i] for i in amb["ids"]])
        drop |= set(amb["ids"]) - {chosen.id}
        choices.append((amb["phrase"], reply, chosen))
    kept = [t for t in targets if t.id not in drop]
    new_id = {t.id: i for i, t in enumerate(kept)}
    steps = [
        Step(
            turn=state["turn"],
            node="clarify",
            input={"reply": reply, "phrase": phrase},
            output=f"chose #{new_id[chosen.id]} {chosen.label}",
            target_id=new_id[chosen.id],
        )
        for phrase, reply, chosen in choices
    ]
    kept = [t.model_copy(update={"id": new_id[t.id]}) for t in kept]
    groups = [[new_id[i] for i in g if i in new_id] for g in state.get("groups", [])]
    return {"targets": kept, "clarification": asked, "ambiguous": [], "groups": groups, "steps": steps}


def _ask_which(phrase: str, candidates: list[Target]) -> tuple[Target, Clarification, str]:
    """Interrupt until the user's reply picks one of ``candidates``: (chosen, the question asked, reply)."""
    candidates = order_candidates(candidates)
    f = common_frame(candidates)
    # each candidate on the common frame, or on its own first frame when it is not seen there (other shots)
    shown = [f if t.box_at(f) is not None else t.first_frame for t in candidates]
    ask = Clarification(
        question=f"I found {len(candidates)} objects matching {phrase!r}. Which one do you mean? "
        + "; ".join(
            f"{i + 1}: the {t.label} at {_fmt_box(t.box_at(fi))} on frame {fi}"
            for i, (t, fi) in enumerate(zip(candidates, shown, strict=True))
        ),
        candidates=[
            Candidate(number=i + 1, label=t.label, frame_idx=fi, box=t.box_at(fi))
            for i, (t, fi) in enumerate(zip(candidates, shown, strict=True))
        ],
    )
    reply = interrupt(ask.model_dump())
    chosen = resolve_choice(str(reply), candidates)
    while chosen is None:
        reply = interrupt(
            ask.model_copy(
                update={"question": f"Sorry, I did not get {reply!r}. " + ask.question}
            ).model_dump()
        )
        chosen = resolve_choice(str(reply), candidates)
    return chosen, ask, str(reply)


def _fmt_box(b) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in b) + "]"


def refer(state: AgentState, runtime: GraphRuntime[TurnContext], *, deps: AgentDeps) -> dict:
    """Describe every target (all targets of the video in one describer call when it supports it).

    With a describer that samples and ``deps.check_samples`` > 0, each caption is checked against the target's
    label and what its track in the video's object memory does first (:func:`tools.refer.refer_checked`); a
    contradicted caption is replaced by the first of the model's sampled captions that agrees. The memory built
    for it is kept with the conversation; each check that found a conflict is a ``check`` step."""
    video = deps.runtime.open_video(state["video"])
    describer = turn_describer(deps.runtime.describer, runtime.context)
    targets = state["targets"]
    question = state["plan"].question
    update: dict = {}
    checks = []
    if deps.check_samples > 0 and targets and can_sample(describer):
        memory = video_memory(state, deps)
        motions = []
        for t in targets:
            memory, mid = _memory_id(memory, t)
            motions.append(first_motions(memory, mid))
        descs, checks = refer_checked(
            video, targets, first_motions=motions, question=question, describer=describer,
            samples=deps.check_samples,
        )  # fmt: skip
        update["memory"] = memory
    else:
        descs = refer_targets(video, targets, question=question, describer=describer)
    steps = [
        Step(
            turn=state["turn"],
            node="refer",
            tool="refer",
            input={"target_id": d.target_id, "frame_idx": d.frame_idx, "box": list(d.box)},
            output=d.text,
            target_id=d.target_id,
        )
        for d in descs
    ]
    steps += [
        Step(
            turn=state["turn"],
            node="refer",
            tool="check",
            input={"target_id": c.target_id},
            output=c.text,
            target_id=c.target_id,
        )
        for c in checks
        if c.conflicts
    ]
    return {**update, "descriptions": descs, "steps": steps}


def refer_long(state: AgentState, runtime: GraphRuntime[TurnContext], *, deps: AgentDeps) -> dict:
    """Long video: split into segments, describe each target in each segment."""
    video = deps.runtime.open_video(state["video"])
    describer = turn_describer(deps.runtime.describer, runtime.context)
    p = state["plan"]
    segs = segment(video, p.num_segments)
    steps = [
        Step(
            turn=state["turn"],
            node="refer_long",
            tool="segment",
            input={"n": p.num_segments},
            output=", ".join(f"[{s.start}, {s.end})" for s in segs),
        )
    ]
    descs = []
    for t in state["targets"]:
        for d in refer_segments(video, t, segs, question=p.question, describer=describer):
            descs.append(d)
            steps.append(
                Step(
                    turn=state["turn"],
                    node="refer_long",
                    tool="refer",
                    input={
                        "target_id": t.id,
                        "segment": d.segment.index,
                        "frame_idx": d.frame_idx,
                        "box": list(d.box),
                    },
                    output=d.text,
                    target_id=t.id,
                )
            )
    return {"descriptions": descs, "steps": steps}


def summarize_node(state: AgentState, deps: AgentDeps) -> dict:
    """One answer from the descriptions; a comparison question ("Which is faster?") is first answered from the
    targets' tracks (:func:`tools.compare.compare`)."""
    descs = state["descriptions"]
    steps = []
    verdict = ""
    video = deps.runtime.open_video(state["video"])
    asked = comparison_asked(state["question"])
    if asked is not None and len(state["targets"]) >= 2:
        of_all = superlative_asked(state["question"]) or None  # "the quickest" of two kept of many found
        result = compare(state["targets"], *asked, fps=float(video.fps), superlative=of_all)
        verdict = result.text
        steps.append(
            Step(
                turn=state["turn"],
                node="summarize",
                tool="compare",
                input={"measure": result.measure, "largest_wins": result.largest_wins},
                output=verdict,
                target_id=result.winner_id,
            )
        )
    if len(descs) == 1:
        return {"answer": " ".join(w for w in (verdict, descs[0].text) if w), "steps": steps}
    text = summarize(descs, state["question"], llm=deps.runtime.summarizer)
    how = "merge" if text == merge(descs) else "llm"
    steps.append(
        Step(
            turn=state["turn"],
            node="summarize",
            tool="summarize",
            input={"n": len(descs), "by": how},
            output=text,
        )
    )
    return {"answer": " ".join(w for w in (verdict, text) if w), "steps": steps}


def video_memory(state: AgentState, deps: AgentDeps) -> ObjectMemory:
    """The video's object memory: the conversation's, or built now from every object grounding finds (the
    tracks come from the runtime's track cache) and the video's shot cuts."""
    kept = state.get("memory")
    if kept is not None and kept.video == state["video"]:
        return kept
    video = deps.runtime.open_video(state["video"])
    everything = ground_tool(
        video,
        "",
        backend=deps.runtime.grounding_backend,
        settings=deps.runtime.grounding_settings,
        cache=deps.runtime.track_cache,
    )
    everything = [t.model_copy(update={"id": i}) for i, t in enumerate(everything)]
    frame = video.get_frame(0) if not everything else None
    width = everything[0].width if everything else int(frame.shape[1])
    height = everything[0].height if everything else int(frame.shape[0])
    return build_memory(
        state["video"],
        everything,
        num_frames=video.num_frames,
        fps=float(video.fps),
        width=width,
        height=height,
        cuts=video_cuts(video),
    )


def _memory_id(memory: ObjectMemory, target: Target) -> tuple[ObjectMemory, int]:
    """The memory object ``target`` follows (the best box overlap); an object the memory lacks (a user box on
    something grounding does not find) is added to it."""
    best, best_iou = None, 0.0
    for m in memory.targets:
        ious = [
            box_iou(p, q)
            for p, q in zip(m.boxes, target.boxes, strict=False)
            if p is not None and q is not None
        ]
        iou = sum(ious) / len(ious) if ious else 0.0
        if iou > best_iou:
            best, best_iou = m, iou
    if best is not None and best_iou >= SAME_OBJECT_IOU:
        return memory, best.id
    new_id = max((m.id for m in memory.targets), default=-1) + 1
    added = [*memory.targets, target.model_copy(update={"id": new_id})]
    rebuilt = build_memory(
        memory.video, added, num_frames=memory.num_frames, fps=memory.fps, width=memory.width,
        height=memory.height, cuts=memory.cuts, parts=memory.parts,
    )  # fmt: skip
    return rebuilt, new_id


def query(state: AgentState, deps: AgentDeps) -> dict:
    """Answer a memory question (counting, when, order, after, relation, why, future, part) from the video's
    object memory: the rule planner's question goes to :func:`tools.queries.answer_memory_question`; with an
    LLM planner the chat model chains the memory tools itself (:func:`agent.memory_tools.run_memory_tools`).
    The answer's objects become the turn's targets, under their memory ids."""
    p = state["plan"]
    memory = video_memory(state, deps)
    built = state.get("memory") is not memory
    groups: list[list[int]] = []
    renamed: dict[int, int] = {}  # the turn's target id (grounding's numbering) -> its memory id
    for g in state.get("groups") or ([[t.id for t in state["targets"]]] if state["targets"] else []):
        ids = []
        for i in g:
            memory, mid = _memory_id(memory, state["targets"][i])
            renamed[state["targets"][i].id] = mid
            if mid not in ids:
                ids.append(mid)
        groups.append(ids)
    # None: the question names no object ("which object stops first?"): every object of the video; []: its
    # phrase found nothing ("how many people?" on a cartoon): the answer is about no object
    subjects: list[int] | None = groups[0] if groups else []
    anchors = groups[1] if len(groups) > 1 else []
    if p.target_source == "all":
        subjects = None
    steps = []
    if built:
        steps.append(
            Step(
                turn=state["turn"],
                node="query",
                tool="memory",
                output=f"{len(memory.targets)} objects, {len(memory.events)} events, {len(memory.parts)} part(s)",
            )
        )
    if any(g != m for g, m in renamed.items()):  # the log numbered them as grounding did: say which is which
        steps.append(
            Step(
                turn=state["turn"],
                node="query",
                tool="memory",
                input={"ids": {str(g): m for g, m in renamed.items()}},
                output=", ".join(f"#{g} is #{m}" for g, m in renamed.items()) + " in the video's memory",
            )
        )
    llm = getattr(deps.planner, "llm", None)
    if llm is not None:
        named = [memory.target(i) for g in groups for i in g]
        text, result, calls = run_memory_tools(llm, memory, state["question"], named)
        steps += [
            Step(turn=state["turn"], node="query", tool=name, input=args, output=out)
            for name, args, out in calls
        ]
    else:
        noun = _count_noun(p.query) if p.target_source == "ground" else None
        result = answer_memory_question(memory, p.memory_question, subjects, anchors, noun=noun)  # type: ignore[arg-type]
        text = result.text
        steps.append(
            Step(
                turn=state["turn"],
                node="query",
                tool=result.kind,
                input=p.memory_question.model_dump(exclude_none=True),  # type: ignore[union-attr]
                output=text,
                target_id=result.target_ids[0] if result.target_ids else None,
            )
        )
    shown = list(dict.fromkeys([*(result.target_ids if result else []), *(subjects or []), *anchors]))
    targets = [memory.target(i) for i in shown]
    return {"memory": memory, "targets": targets, "result": result, "answer": text, "steps": steps}


def _count_noun(query: str | None) -> str | None:
    """ "How many cars are there?" -> "cars" (the referring phrase of the question, without its article)."""
    phrases = referring_phrases(query or "")
    if len(phrases) != 1:
        return None
    toks = [t for t in phrases[0].split() if t.lower() not in {"the", "a", "an"}]
    return " ".join(toks) or None


def answer(state: AgentState, deps: AgentDeps) -> dict:
    """Final answer + evidence (per target: id, span, key-frame boxes, what each tool said)."""
    targets = state.get("targets", [])
    query = state["plan"].query
    missing = " or ".join(referring_phrases(query) or [query]) if query else "any object"
    text = state.get("answer") or f"I could not find {missing!r} in the video."
    if state.get("note"):
        text = f"{state['note']} {text}"
    turn_steps = [s for s in state.get("steps", []) if s.turn == state["turn"]]
    evidence = Evidence(
        targets=[
            TargetEvidence(
                target_id=t.id,
                label=t.label,
                span=t.span,
                key_boxes=[(f, t.box_at(f)) for f in t.key_frames(3)],
                said=[f"{_finder(t)}: {t.label}, score {t.score:.2f}"]
                + [f"{s.tool or s.node}: {s.output}" for s in turn_steps if s.target_id == t.id],
            )
            for t in targets
        ]
    )
    if state.get("annotate_dir") and targets:
        paths = annotate_frames(deps.runtime.open_video(state["video"]), targets, state["annotate_dir"])
        evidence = evidence.model_copy(update={"frames": [str(p) for p in paths]})
    if state.get("result") is not None:
        evidence = evidence.model_copy(update={"result": state["result"]})
    step = Step(turn=state["turn"], node="answer", output=text)
    return {
        "answer": text,
        "evidence": evidence,
        "messages": [AIMessage(text)],
        "last_targets": targets,
        "last_answer": text,
        "mentioned": remember(state.get("mentioned", []), targets),
        "steps": [step],
    }


def _finder(t: Target) -> str:
    return "track (user box)" if t.source == "user_box" else f"ground ({t.source})"
