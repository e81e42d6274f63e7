"""HELD-OUT paraphrases of the complex questions: used only by the benchmark (``heldout=True``).

Never use these for training or for tuning prompts; they measure whether a system generalises beyond the
wording of ``synth.questions.TEMPLATES``. Keys and slots are the same as there ({verbs}: third person, {verb}: base form; {anchor}: "the blue square
stops" or "it stops"; {rel}: "to the left of", "above", ...; {when}: "when it stops", "at the end of the video";
{t}: seconds, "1.2").
"""

from __future__ import annotations

HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "describe": ("Tell me how the {a} behaves.", "Can you explain the movement of the {a}?"),
    "multi_target": ("Tell me how each of the {group} moves.", "What are all the {group} up to?"),
    "comparison_fastest": (
        "Out of all the shapes, which one is the quickest?",
        "Which object has the highest speed?",
    ),
    "comparison_slowest": (
        "Out of all the shapes, which one is the slowest?",
        "Which object has the lowest speed?",
    ),
    "temporal_first": (
        "Out of all the objects, which is the first that {verbs}?",
        "Which one {verbs} earliest?",
    ),
    "when": ("At what moment does the {a} {verb}?", "Tell me the time at which the {a} {verbs}."),
    "ambiguous": ("Could you describe the motion of the {a}?", "Explain what the {a} is doing."),
    "resolve": ("I was asking about the {which} one.", "The one on the {which}, please."),
    "follow_up": ("How about the {a}?", "Now the {a}: what does it do?"),
    "long_part": (
        "During which section of the video can the {a} be seen?",
        "When in the video does the {a} show up?",
    ),
    "counting_event": ("Count the objects that {verb}.", "What number of objects {verb} during the clip?"),
    "counting_attribute": ("Count the {group} in the video.", "What is the number of {group} in this clip?"),
    "sequential": (
        "Tell me what the {b} does next, after {anchor}.",
        "Once {anchor}, how does the {b} carry on?",
    ),
    "relationship_collide": ("What does the {a} collide with?", "Name the object that the {a} crashes into."),
    "relationship_spatial": (
        "Name the object that lies {rel} the {a} {when}.",
        "Which shape can be seen {rel} the {a} {when}?",
    ),
    "reasoning": (
        "What makes the {a} alter its course?",
        "For what reason does the {a} head off in a new direction?",
    ),
    "reasoning_at": (
        "What makes the {a} alter its course at roughly {t} s?",
        "For what reason does the {a} head off in a new direction around second {t}?",
    ),
    "future": (
        "Suppose the {a} carries on the way it is going: which edge of the frame does it meet first?",
        "Were the {a} to continue moving, which side of the picture would it run into first?",
    ),
}
