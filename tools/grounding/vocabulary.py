"""Phrases -> COCO-80 classes: the nouns (class names, plurals, everyday synonyms) the COCO detector knows.

Pure data and string functions (no torch): :mod:`tools.grounding.query` reads it to find object phrases and
:mod:`tools.grounding.coco.backend` to choose the classes to detect.

Decisions (COCO has no class for them):

- "cyclist", "rider", "biker", "skier", "surfer"... -> ``person`` only: the bicycle, horse or board is a
  separate COCO object ("the bike", "the horse"); ask for it by its own name.
- "van", "vans", "minivan" -> ``car`` and ``truck`` (COCO labels vans as either); "vehicle(s)" -> car, truck,
  bus, motorcycle.
- "animal(s)" -> the ten COCO animal classes; "ball" -> ``sports ball``; "bag" -> backpack, handbag, suitcase.
"""

from __future__ import annotations

import re

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip
"""The 80 COCO detection classes in the model's index order (index 0 = person)."""

ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")
VEHICLES = ("car", "truck", "bus", "motorcycle")

SYNONYMS: dict[str, tuple[str, ...]] = {
    # people ("the cyclist": the person; the bicycle is a separate object)
    **dict.fromkeys(
        (
            "people", "persons", "man", "woman", "child", "kid", "boy", "girl", "guy", "lady", "gentleman",
            "human", "pedestrian", "cyclist", "biker", "bicyclist", "motorcyclist", "rider", "player",
            "driver", "walker", "runner", "skier", "surfer", "skater", "skateboarder", "snowboarder",
            "passenger", "adult", "baby", "toddler", "teenager", "someone", "somebody", "athlete", "crowd",
            "policeman", "officer", "worker", "dancer", "jogger", "spectator", "individual",
        ),
        ("person",),
    ),
    # vehicles
    "bike": ("bicycle",), "cycle": ("bicycle",), "motorbike": ("motorcycle",), "scooter": ("motorcycle",),
    "moped": ("motorcycle",), "automobile": ("car",), "taxi": ("car",), "cab": ("car",), "jeep": ("car",),
    "suv": ("car",), "sedan": ("car",), "van": ("car", "truck"), "minivan": ("car", "truck"),
    "lorry": ("truck",), "pickup": ("truck",), "minibus": ("bus",), "tram": ("train",),
    "locomotive": ("train",), "plane": ("airplane",), "aeroplane": ("airplane",), "aircraft": ("airplane",),
    "jet": ("airplane",), "ship": ("boat",), "yacht": ("boat",), "canoe": ("boat",), "kayak": ("boat",),
    "ferry": ("boat",), "vehicle": VEHICLES,
    # animals
    "animal": ANIMALS, "puppy": ("dog",), "pup": ("dog",), "kitten": ("cat",), "kitty": ("cat",),
    "pony": ("horse",), "foal": ("horse",), "lamb": ("sheep",), "cattle": ("cow",), "bull": ("cow",),
    "calf": ("cow",), "duck": ("bird",), "pigeon": ("bird",), "gull": ("bird",), "seagull": ("bird",),
    "parrot": ("bird",), "chicken": ("bird",), "hen": ("bird",), "goose": ("bird",),
    # objects
    "ball": ("sports ball",), "football": ("sports ball",), "basketball": ("sports ball",),
    "volleyball": ("sports ball",), "racket": ("tennis racket",), "racquet": ("tennis racket",),
    "glass": ("wine glass",), "mug": ("cup",), "sofa": ("couch",), "plant": ("potted plant",),
    "table": ("dining table",), "television": ("tv",), "monitor": ("tv",), "phone": ("cell phone",),
    "smartphone": ("cell phone",), "fridge": ("refrigerator",), "teddy": ("teddy bear",),
    "doughnut": ("donut",), "hairdryer": ("hair drier",), "bag": ("backpack", "handbag", "suitcase"),
    "purse": ("handbag",), "luggage": ("suitcase",), "rucksack": ("backpack",), "computer": ("laptop",),
    "notebook": ("laptop",), "hydrant": ("fire hydrant",),
}  # fmt: skip
"""Words (besides class names and their plurals) that name COCO classes; their plurals name them too."""

IRREGULAR_PLURALS: dict[str, str] = {
    "knife": "knives", "mouse": "mice", "sheep": "sheep", "skis": "skis", "bus": "buses", "man": "men",
    "woman": "women", "child": "children", "person": "persons", "gentleman": "gentlemen", "lady": "ladies",
    "baby": "babies", "puppy": "puppies", "kitty": "kitties", "pony": "ponies", "policeman": "policemen",
    "goose": "geese", "cattle": "cattle", "people": "people", "crowd": "crowds", "someone": "someone",
    "somebody": "somebody", "ferry": "ferries", "individual": "individuals", "calf": "calves",
    "luggage": "luggage", "aircraft": "aircraft",
}  # fmt: skip
GENERIC_PLURALS = frozenset({"objects", "things", "shapes", "items", "ones", "targets"})
GENERIC_SINGULARS = frozenset({"object", "thing", "shape", "item", "one", "target"})
ALL_WORDS = GENERIC_PLURALS | GENERIC_SINGULARS | {"everything", "anything", "everyone", "anyone"}
"""Words that name no class but "any object": a phrase of only these keeps all 80 classes."""

_WORD = re.compile(r"[a-z]+")


def plural(noun: str) -> str:
    """English plural of ``noun``'s last word ("dining table" -> "dining tables", "bus" -> "buses")."""
    *head, last = noun.split()
    if last in IRREGULAR_PLURALS:
        out = IRREGULAR_PLURALS[last]
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "o", "u"):
        out = last[:-1] + "ies"
    else:
        out = last + ("es" if last.endswith(("s", "sh", "ch", "x")) else "s")
    return " ".join([*head, out])


def _vocabulary() -> tuple[dict[tuple[str, ...], tuple[str, ...]], frozenset[str]]:
    vocab: dict[tuple[str, ...], tuple[str, ...]] = {}
    plurals: set[str] = set()
    for name, classes in [*((c, (c,)) for c in COCO_CLASSES), *SYNONYMS.items()]:
        many = plural(name)
        vocab.setdefault(tuple(name.split()), classes)
        vocab.setdefault(tuple(many.split()), classes)
        if many != name:
            plurals.add(many.split()[-1])
    plurals |= {"people", "cattle", "crowd"}
    return vocab, frozenset(plurals)


VOCABULARY, PLURAL_NOUNS = _vocabulary()
"""``VOCABULARY``: word sequences (one or two words) -> the COCO classes they name. ``PLURAL_NOUNS``: the words
of it that are plurals ("cars", "people", "knives")."""
OBJECT_NOUNS: frozenset[str] = frozenset(w for key in VOCABULARY for w in key[-1:])
"""Head nouns the vocabulary knows (the last word of each entry)."""


COLOUR_CLASSES = frozenset({"orange"})
"""Class names that are also colour words: before another noun they are its colour."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def coco_classes_for(text: str) -> tuple[str, ...]:
    """The COCO classes ``text`` names, in order of mention (two-word names first: "hot dog" is not a dog);
    all 80 for an empty phrase or one with only generic nouns ("the objects"); () when it names none
    ("the unicorn", "the red circle")."""
    toks = words(text)
    found: list[str] = []
    i = 0
    while i < len(toks):
        if toks[i] in COLOUR_CLASSES and i + 1 < len(toks) and toks[i + 1] in OBJECT_NOUNS:
            i += 1  # "the orange car": a colour here, not the fruit
            continue
        pair = tuple(toks[i : i + 2])
        if len(pair) == 2 and pair in VOCABULARY:
            found += VOCABULARY[pair]
            i += 2
            continue
        found += VOCABULARY.get((toks[i],), ())
        i += 1
    if found:
        return tuple(dict.fromkeys(found))
    if not toks or any(t in ALL_WORDS for t in toks):
        return COCO_CLASSES
    return ()
