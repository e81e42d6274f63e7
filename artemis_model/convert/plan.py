"""Pass 1 of :mod:`artemis_model.convert.converter`: map every key and check names, shapes and LoRA pairs (no data read).

:func:`plan_conversion` reads only metadata (safetensors headers; memory-mapped ``.bin`` pickles) and raises one
:class:`~artemis_model.convert.checkpoint_io.ConversionError` listing every unmatched, missing, duplicated or mis-shaped
key, or an incomplete LoRA pair, before anything is written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.convert.checkpoint_io import (
    ADAPTER_WEIGHT_NAMES,
    MODEL_WEIGHT_NAMES,
    ConversionError,
    TensorFile,
    TensorMeta,
    resolve_weight_files,
)
from artemis_model.convert.keys import (
    EMBED_KEY,
    LM_HEAD_KEY,
    KeyAction,
    LoraSettings,
    lora_base_key,
    map_clip_key,
    map_non_lora_key,
    map_stage2_key,
)
from artemis_model.modeling_artemis import ArtemisForConditionalGeneration

NON_LORA_NAMES = ("non_lora_trainables.bin", "non_lora_trainables.safetensors")
SOURCE_LABELS = ("stage-2 checkpoint", "LoRA adapter", "non_lora_trainables", "CLIP")
_LIST_LIMIT = 40


class Problems:
    """Everything wrong with the inputs, by category, so one error lists them all."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, category: str, text: str) -> None:
        self.items.setdefault(category, []).append(text)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"conversion stopped, {sum(map(len, self.items.values()))} problem(s):"]
        for category, texts in self.items.items():
            shown = texts[:_LIST_LIMIT]
            more = f" ... and {len(texts) - len(shown)} more" if len(texts) > len(shown) else ""
            lines.append(f"  {category} ({len(texts)}): " + "; ".join(shown) + more)
        raise ConversionError("\n".join(lines))


@dataclass
class Source:
    label: str
    files: list[Path]
    meta: dict[str, TensorMeta] = field(default_factory=dict)
    file_of: dict[str, Path] = field(default_factory=dict)
    actions: dict[str, KeyAction] = field(default_factory=dict)


def open_source(label: str, directory: Path, names: Sequence[str], problems: Problems) -> Source:
    files, weight_map = resolve_weight_files(directory, names)
    source = Source(label, files)
    for path in files:
        with TensorFile(path) as f:
            for name, meta in f.meta.items():
                if name in source.meta:
                    problems.add(
                        "duplicated keys", f"{label}: {name!r} in {source.file_of[name].name} and {path.name}"
                    )
                source.meta[name] = meta
                source.file_of[name] = path
    if weight_map is not None:
        for name, shard in weight_map.items():
            if name not in source.file_of:
                problems.add("index mismatch", f"{label}: index lists {name!r} but no shard holds it")
            elif source.file_of[name].name != shard:
                problems.add(
                    "index mismatch", f"{label}: index puts {name!r} in {shard}, found in another shard"
                )
        for name in source.meta:
            if name not in weight_map:
                problems.add("index mismatch", f"{label}: {name!r} is in a shard but not in the index")
    return source


def expected_shapes(config: ArtemisConfig) -> dict[str, tuple[int, ...]]:
    """Our parameter names and shapes (an Artemis model on the meta device: no memory, no init cost)."""
    with torch.device("meta"):
        model = ArtemisForConditionalGeneration(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@dataclass
class ConversionPlan:
    stage2: Source
    adapter: Source
    non_lora: Source
    clip: Source
    lora_pairs: dict[str, tuple[str, str]]
    new_rows: int
    dropped: Counter[str]

    @property
    def sources(self) -> list[Source]:
        return [self.stage2, self.non_lora, self.clip]


def plan_conversion(
    base_dir: Path,
    lora_dir: Path,
    clip_dir: Path,
    expected: dict[str, tuple[int, ...]],
    lora: LoraSettings,
    base_vocab: int,
) -> ConversionPlan:
    problems = Problems()
    stage2 = open_source(SOURCE_LABELS[0], base_dir, MODEL_WEIGHT_NAMES, problems)
    adapter = open_source(SOURCE_LABELS[1], lora_dir, ADAPTER_WEIGHT_NAMES, problems)
    non_lora = open_source(SOURCE_LABELS[2], lora_dir, NON_LORA_NAMES, problems)
    clip = open_source(SOURCE_LABELS[3], clip_dir, MODEL_WEIGHT_NAMES, problems)
    mappers = {stage2.label: map_stage2_key, non_lora.label: map_non_lora_key, clip.label: map_clip_key}
    produced: dict[str, str] = {}
    dropped: Counter[str] = Counter()
    new_rows = expected[EMBED_KEY][0] - base_vocab
    for source in (stage2, non_lora, clip):
        for name, meta in source.meta.items():
            action = mappers[source.label](name)
            if action.target is not None and action.target not in expected:
                action = KeyAction()
            source.actions[name] = action
            if action.unmatched:
                problems.add("unmatched keys", f"{source.label}: {name!r}")
                continue
            if action.drop is not None:
                dropped[action.drop] += 1
                continue
            target = action.target
            if target in produced:
                problems.add(
                    "duplicated keys", f"{target!r} from {produced[target]} and {source.label} {name!r}"
                )
                continue
            produced[target] = f"{source.label} {name!r}"
            want = expected[target]
            if target in (EMBED_KEY, LM_HEAD_KEY):
                want = (base_vocab, *want[1:])  # before the placeholder rows are appended
            if meta.shape != want:
                problems.add(
                    "mis-shaped tensors",
                    f"{source.label}: {name!r} is {list(meta.shape)}, expected {list(want)}",
                )
            if not meta.dtype.is_floating_point:
                problems.add("non-float tensors", f"{source.label}: {name!r} is {meta.dtype}")
    sources_of = {"language_model.": stage2.label, "vision_tower.": clip.label}
    for target in sorted(set(expected) - set(produced)):
        origin = next((v for k, v in sources_of.items() if target.startswith(k)), non_lora.label)
        problems.add("missing keys", f"{target!r} (expected from the {origin})")
    lora_pairs = plan_lora(adapter, stage2, lora, problems)
    problems.raise_if_any()
    return ConversionPlan(stage2, adapter, non_lora, clip, lora_pairs, new_rows, dropped)


def plan_lora(
    adapter: Source, stage2: Source, lora: LoraSettings, problems: Problems
) -> dict[str, tuple[str, str]]:
    """Stage-2 key -> (lora_A key, lora_B key), with pairing, shape and target-coverage checks."""
    halves: dict[str, dict[str, str]] = {}
    for name, meta in adapter.meta.items():
        parsed = lora_base_key(name)
        if parsed is None:
            problems.add("unmatched keys", f"{adapter.label}: {name!r}")
            continue
        base, half = parsed
        halves.setdefault(base, {})[half] = name
        if not meta.dtype.is_floating_point:
            problems.add("non-float tensors", f"{adapter.label}: {name!r} is {meta.dtype}")
    pairs: dict[str, tuple[str, str]] = {}
    for base, found in sorted(halves.items()):
        module = base.removesuffix(".weight")
        for half in ("A", "B"):
            if half not in found:
                problems.add(
                    "missing keys", f"{adapter.label}: 'base_model.model.{module}.lora_{half}.weight'"
                )
        if base not in stage2.meta or stage2.actions.get(base, KeyAction()).target is None:
            for name in found.values():
                problems.add("unmatched keys", f"{adapter.label}: {name!r} (no stage-2 weight {base!r})")
            continue
        if len(found) != 2:
            continue
        out_dim, in_dim = stage2.meta[base].shape
        a_shape, b_shape = adapter.meta[found["A"]].shape, adapter.meta[found["B"]].shape
        if a_shape != (lora.r, in_dim):
            problems.add(
                "mis-shaped tensors",
                f"{adapter.label}: {found['A']!r} is {list(a_shape)}, expected {[lora.r, in_dim]}",
            )
        if b_shape != (out_dim, lora.r):
            problems.add(
                "mis-shaped tensors",
                f"{adapter.label}: {found['B']!r} is {list(b_shape)}, expected {[out_dim, lora.r]}",
            )
        pairs[base] = (found["A"], found["B"])
    for name in stage2.meta:
        match = re.fullmatch(r"(model\.layers\.\d+\.(?:self_attn|mlp)\.\w+_proj)\.weight", name)
        if match and lora.targets(match.group(1)) and name not in halves:
            problems.add("missing keys", f"{adapter.label}: LoRA pair for target {match.group(1)!r}")
    return pairs
