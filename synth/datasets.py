"""Training records in the project's formats, built from synthetic clips.

- stage 1: scene captions, LLaVA style ``{"id", "video", "conversations": [human "<video>\\n...", gpt]}``;
- stage 2: video QA (counts, colours, shapes, what happens), LLaVA conversations, several turns;
- stage 3: VideoRef45K referring records (``frame_path``, ``frame_id``, ``track_list``, ``key_frame_id``,
  ``key_frame_box``, ``caption``, optional ``question`` with ``<bbox>``) plus ``video`` (mp4 path).

Paths inside records are relative to the data-set root (the ``video_folder``).
"""

from __future__ import annotations

import numpy as np

from synth.grammar import NounPhrase, caption_for, motion_phrases, render_caption
from synth.world import Clip, ObjectTruth

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
STAGE1_PROMPTS = (
    "Describe the video briefly.",
    "What happens in this video?",
    "Give a short description of the video.",
    "Summarize the video.",
)
STAGE3_QUESTIONS = (
    "What is the <bbox> doing in this video?",
    "Describe what the <bbox> does in the video.",
    "What happens to the <bbox> in this video?",
)
VIDEO_TOKEN = "<video>"


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def _plural(shape: str) -> str:
    return shape + "s"


def unique_description(clip: Clip, obj: ObjectTruth) -> NounPhrase:
    """The shortest description (shape; colour + shape; size + colour + shape) that only ``obj`` fits."""
    others = [o for o in clip.objects if o.id != obj.id]
    if not any(o.shape == obj.shape for o in others):
        return NounPhrase(obj.shape)
    if not any((o.colour, o.shape) == (obj.colour, obj.shape) for o in others):
        return NounPhrase(obj.shape, obj.colour)
    return NounPhrase(obj.shape, obj.colour, obj.size)


def describe_np(np_: NounPhrase, article: str = "the") -> str:
    """Canonical wording of a noun phrase: "the large red circle", "a circle"."""
    return " ".join(w for w in (article, np_.size, np_.colour, np_.shape) if w)


def scene_caption(clip: Clip, rng: np.random.Generator) -> str:
    """ "There are three objects: a small red circle, ... ." followed by one caption per object."""
    names = [describe_np(NounPhrase(o.shape, o.colour, o.size), "a") for o in clip.objects]
    listing = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    n = len(clip.objects)
    head = f"There {'is' if n == 1 else 'are'} {number_word(n)} object{'s' if n != 1 else ''}: {listing}."
    return " ".join([head] + [caption_for(o, rng, clip).text for o in clip.objects])


def stage1_record(clip: Clip, name: str, video: str, rng: np.random.Generator) -> dict:
    prompt = STAGE1_PROMPTS[int(rng.integers(len(STAGE1_PROMPTS)))]
    return {
        "id": name,
        "video": video,
        "conversations": [
            {"from": "human", "value": f"{VIDEO_TOKEN}\n{prompt}"},
            {"from": "gpt", "value": scene_caption(clip, rng)},
        ],
    }


def _count_answer(n: int, noun: str) -> str:
    if n == 1:
        return f"There is one {noun}."
    return f"There are {number_word(n)} {noun}s."


def qa_pairs(clip: Clip, rng: np.random.Generator) -> list[tuple[str, str]]:
    """All question/answer pairs about a clip that the truth decides (counts, attributes, events)."""
    objs = clip.objects
    qa = [("How many objects are there in the video?", _count_answer(len(objs), "object"))]
    colour = (
        objs[int(rng.integers(len(objs)))].colour
        if rng.random() < 0.7
        else str(rng.choice(sorted({"red", "green", "blue", "yellow"})))
    )
    qa.append(
        (
            f"How many {colour} objects are there?",
            _count_answer(sum(o.colour == colour for o in objs), f"{colour} object"),
        )
    )
    shape = objs[int(rng.integers(len(objs)))].shape
    qa.append(
        (f"How many {_plural(shape)} are there?", _count_answer(sum(o.shape == shape for o in objs), shape))
    )
    for o in objs:
        if sum(p.shape == o.shape for p in objs) == 1:
            qa.append((f"What colour is the {o.shape}?", f"The {o.shape} is {o.colour}."))
        if sum(p.colour == o.colour for p in objs) == 1:
            qa.append((f"What shape is the {o.colour} object?", f"The {o.colour} object is a {o.shape}."))
        ref = describe_np(unique_description(clip, o))
        cap = render_caption(unique_description(clip, o), motion_phrases(o, clip), rng)
        qa.append((f"What does {ref} do?", cap.text))
    probe = objs[int(rng.integers(len(objs)))]
    if rng.random() < 0.5:
        qa.append(
            (
                f"Is there a {probe.colour} {probe.shape} in the video?",
                f"Yes, there is a {probe.size} {probe.colour} {probe.shape}.",
            )
        )
    else:
        colours = sorted(
            {o.colour for o in objs} ^ {"red", "green", "blue", "yellow", "purple", "orange", "cyan"}
        )
        if colours:
            c = colours[int(rng.integers(len(colours)))]
            qa.append((f"Is there a {c} {probe.shape} in the video?", f"No, there is no {c} {probe.shape}."))
    for kind, question, verb in (
        ("stop", "Which object stops?", "stops"),
        ("enter", "Which object enters the frame?", "enters the frame"),
        ("leave", "Which object leaves the frame?", "leaves the frame"),
        ("collide", "Which objects collide?", "collide"),
    ):
        who = [o for o in objs if any(e.kind == kind for e in o.events)]
        if kind == "collide":
            if who:
                names = " and ".join(describe_np(unique_description(clip, o)) for o in who[:2])
                qa.append((question, f"{names[0].upper()}{names[1:]} {verb}."))
        elif len(who) == 1:
            ref = describe_np(unique_description(clip, who[0]))
            qa.append((question, f"{ref[0].upper()}{ref[1:]} {verb}."))
        elif not who:
            qa.append((question, f"No object {verb}."))
    return qa


def stage2_record(clip: Clip, name: str, video: str, rng: np.random.Generator, max_turns: int = 4) -> dict:
    qa = qa_pairs(clip, rng)
    order = rng.permutation(len(qa))[:max_turns]
    conv = []
    for k, i in enumerate(order):
        q, a = qa[int(i)]
        conv.append({"from": "human", "value": f"{VIDEO_TOKEN}\n{q}" if k == 0 else q})
        conv.append({"from": "gpt", "value": a})
    return {"id": name, "video": video, "conversations": conv}


def stage3_records(
    clip: Clip,
    name: str,
    video: str,
    frame_path: str,
    frame_ids: list[str],
    rng: np.random.Generator,
    *,
    min_visible_frames: int = 8,
) -> list[dict]:
    """One VideoRef45K-format record per object visible on at least ``min_visible_frames`` frames."""
    if len(frame_ids) != clip.num_frames:
        raise ValueError(f"{len(frame_ids)} frame ids for a clip of {clip.num_frames} frames")
    out = []
    for o in clip.objects:
        if len(o.visible_frames) < min_visible_frames:
            continue
        good = [t for t in o.visible_frames if o.visible[t] >= 0.5]
        key = good[int(rng.integers(len(good)))] if good else o.visible_frames[0]
        rec = {
            "id": f"{name}_obj{o.id}",
            "video_name": name,
            "video": video,
            "frame_path": frame_path,
            "frame_id": list(frame_ids),
            "track_list": [list(b) if b is not None else [] for b in o.boxes],
            "key_frame_id": frame_ids[key],
            "key_frame_idx": key,
            "key_frame_box": list(o.boxes[key]),
            "caption": caption_for(o, rng, clip).text,
            "object_id": o.id,
            "width": clip.width,
            "height": clip.height,
        }
        if rng.random() < 0.5:
            rec["question"] = STAGE3_QUESTIONS[int(rng.integers(len(STAGE3_QUESTIONS)))]
        out.append(rec)
    return out
