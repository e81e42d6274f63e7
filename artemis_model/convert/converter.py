"""Released Artemis weights -> an ``ArtemisForConditionalGeneration`` directory.

Inputs (original_checkpoint.md): the stage-2 checkpoint ``Artemis-7b-ftune`` (``--base``: sharded/single
``.bin`` or ``.safetensors``, its ``config.json`` and the Vicuna tokenizer), the stage-3 adapter
``Artemis-7B-lora`` (``--lora``: ``adapter_config.json``, ``adapter_model.{bin,safetensors}``,
``non_lora_trainables.bin``) and CLIP ViT-L/14 (``--clip``: an HF directory, ``vision_model.*``).

What it does, in two passes:

1. **Plan** (metadata only, nothing written): map every key (:mod:`artemis_model.convert.keys`) and check it
   against the shapes of an Artemis model built on the meta device. Any unmatched, missing, duplicated or
   mis-shaped key, or an incomplete LoRA pair, stops the conversion with a :class:`ConversionError` listing
   all of them.
2. **Stream**: one input file at a time, one tensor at a time: LoRA merge ``W + (B @ A) * alpha / r`` in
   float32, placeholder rows appended to ``embed_tokens`` / ``lm_head`` (each new row = the mean of the existing
   rows), cast to the output dtype, buffered into ``safetensors`` shards. Peak memory is about one output shard
   plus the tensors in flight (``.bin`` inputs are memory-mapped), never the whole model.

Then the config, the tokenizer (Vicuna + ``<image>``, ``<video>``, ``<region>``; the base's SentencePiece
``tokenizer.model`` is kept beside it, so the evaluation prompt gets the original's ids), the processor (resize
mode ``"original"``), the base's ``generation_config.json`` (the original inherited it: Vicuna v1.5's has
``top_p`` 0.6) and ``artemis_conversion.json`` (provenance; prompt template ``"eval_original"``) are written.

The tokenizer may be a fast ``tokenizer.json`` or, as the original saved it, only the slow ``tokenizer.model``
(read through ``sentencepiece`` + ``protobuf``, both dependencies of the project).

Command line: ``artemis convert --base DIR --lora DIR --clip DIR --out DIR`` or
``python -m artemis_model.convert ...`` (same options).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionConfig,
    GenerationConfig,
    PreTrainedTokenizerBase,
)

from artemis_model.convert.checkpoint_io import (
    ConversionError,
    OutputTensor,
    StreamingShardWriter,
    TensorFile,
    plan_shards,
)
from artemis_model.convert.keys import (
    DROP_IMAGE_TOWER,
    EMBED_KEY,
    LM_HEAD_KEY,
    LoraSettings,
    build_config,
    clip_key_for_image_tower,
    read_lora_settings,
)
from artemis_model.convert.plan import ConversionPlan, Source, expected_shapes, plan_conversion
from artemis_model.processing_artemis import ArtemisProcessor, add_placeholder_tokens

__all__ = [
    "DTYPES",
    "ConversionError",
    "ConversionReport",
    "ConvertOptions",
    "ImageTowerCheck",
    "convert_checkpoint",
    "parse_size",
]

logger = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CONVERSION_FILE = "artemis_conversion.json"
PROMPT_TEMPLATE = "eval_original"
RESIZE_MODE = "original"


@dataclass(frozen=True)
class ConvertOptions:
    """``dtype``: output dtype (fp16 = the official inference numerics); ``max_shard_bytes``: output shard size;
    ``verify_image_tower``: compare the stage-2 CLIP copy with the CLIP directory (logged, never fatal);
    ``config_overrides``: top-level ``ArtemisConfig`` fields to replace (e.g. for non-7B test fixtures)."""

    dtype: torch.dtype = torch.float16
    max_shard_bytes: int = 4 * 10**9
    verify_image_tower: bool = False
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass(frozen=True)
class ImageTowerCheck:
    """Stage-2 ``model.image_tower.*`` against the CLIP directory cast to the stage-2 dtype."""

    compared: int
    mismatched: tuple[str, ...]
    max_abs_diff: float
    absent_from_clip: tuple[str, ...]


@dataclass(frozen=True)
class ConversionReport:
    out_dir: Path
    dtype: str
    num_tensors: int
    total_bytes: int
    shards: tuple[str, ...]
    lora_merged: int
    lora_scaling: float
    dropped: dict[str, int]
    added_tokens: dict[str, int]
    vocab_size: int
    seconds: float
    image_tower_check: ImageTowerCheck | None = None
    generation_config: dict[str, Any] = field(default_factory=dict)
    """The base's ``generation_config.json`` as carried over: ``found``, ``source``, ``settings``."""


def _load_tokenizer(base_dir: Path) -> PreTrainedTokenizerBase:
    """The base's tokenizer as a fast one (``tokenizer.json``, or converted from a ``tokenizer.model``)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    except (OSError, ValueError, ImportError) as exc:
        found = sorted(p.name for p in base_dir.glob("tokenizer*")) if base_dir.is_dir() else []
        raise ConversionError(
            f"cannot load the tokenizer from {base_dir} (offline; tokenizer files found: {found}): {exc}"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ConversionError(f"the tokenizer in {base_dir} is not a fast (tokenizers-backed) tokenizer")
    return tokenizer


def _carry_generation_config(base_dir: Path, out_dir: Path, config: Any) -> dict[str, Any]:
    """Copy the base's ``generation_config.json`` to ``out_dir`` (the original's ``generate`` inherited it).

    Without one, a config of the model's special ids is written (the original then sampled with transformers'
    defaults: ``top_p`` 1.0, ``top_k`` 50). Returns what was found, for the provenance file.
    """
    source = base_dir / "generation_config.json"
    if source.is_file():
        try:
            generation = GenerationConfig.from_pretrained(base_dir, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConversionError(f"cannot read {source}: {exc}") from exc
        settings = generation.to_diff_dict()
        settings.pop("transformers_version", None)
        logger.info("base generation config %s carried over: %s", source, settings)
    else:
        text = config.text_config
        generation = GenerationConfig(
            bos_token_id=text.bos_token_id, eos_token_id=text.eos_token_id, pad_token_id=text.pad_token_id
        )
        settings = {}
        logger.warning(
            "%s has no generation_config.json: the converted model samples with transformers' defaults "
            "(top_p 1.0, top_k 50), as the original did from such a base",
            base_dir,
        )
    generation.save_pretrained(out_dir)
    return {"found": source.is_file(), "source": str(source), "settings": settings}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConversionError(f"{path} is not a JSON object")
    return data


def _merge_lora(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
    """``W + (B @ A) * scaling`` in float32 (``[out, r] @ [r, in] -> [out, in]``)."""
    return weight.float() + (b.float() @ a.float()) * scaling


def _append_mean_rows(weight: torch.Tensor, new_rows: int) -> torch.Tensor:
    """``[V, D] -> [V + new_rows, D]``, each new row the float32 mean of the existing rows."""
    if new_rows == 0:
        return weight
    mean = weight.mean(dim=0, keepdim=True, dtype=torch.float32)  # [V, D] -> [1, D]
    return torch.cat([weight.float(), mean.expand(new_rows, -1)])  # [V + new_rows, D]


class _ImageTowerChecker:
    """Compares stage-2 image tower tensors, as they stream by, with the CLIP files (read lazily)."""

    def __init__(self, clip: Source) -> None:
        self.clip = clip
        self.by_target = {a.target: n for n, a in clip.actions.items() if a.target is not None}
        self.files = {path: TensorFile(path) for path in clip.files}
        self.compared = 0
        self.mismatched: list[str] = []
        self.absent: list[str] = []
        self.max_abs_diff = 0.0

    def check(self, name: str, tensor: torch.Tensor) -> None:
        clip_name = self.by_target.get(clip_key_for_image_tower(name))
        if clip_name is None:
            self.absent.append(name)
            return
        reference = self.files[self.clip.file_of[clip_name]].get(clip_name)
        self.compared += 1
        if reference.shape != tensor.shape:
            self.mismatched.append(f"{name} (shape {list(tensor.shape)} vs {list(reference.shape)})")
            return
        diff = (
            float((reference.to(tensor.dtype).float() - tensor.float()).abs().max())
            if tensor.numel()
            else 0.0
        )
        self.max_abs_diff = max(self.max_abs_diff, diff)
        if diff > 0:
            self.mismatched.append(name)

    def result(self) -> ImageTowerCheck:
        for f in self.files.values():
            f.close()
        check = ImageTowerCheck(self.compared, tuple(self.mismatched), self.max_abs_diff, tuple(self.absent))
        if check.mismatched or check.absent_from_clip:
            logger.warning(
                "stage-2 image tower differs from the CLIP directory: %d of %d tensors differ (max |diff| %.3g), "
                "%d absent from CLIP; first: %s",
                len(check.mismatched),
                check.compared,
                check.max_abs_diff,
                len(check.absent_from_clip),
                (list(check.mismatched) + list(check.absent_from_clip))[:5],
            )
        else:
            logger.info("stage-2 image tower equals the CLIP directory (%d tensors)", check.compared)
        return check


def _write_one(
    plan: ConversionPlan,
    source: Source,
    f: TensorFile,
    name: str,
    adapter: dict[str, torch.Tensor],
    lora: LoraSettings,
    options: ConvertOptions,
    writer: StreamingShardWriter,
    checker: _ImageTowerChecker | None,
) -> None:
    """One input tensor: read it only if it is kept (or checked), merge, pad, cast, buffer, release."""
    action = source.actions[name]
    check = action.drop == DROP_IMAGE_TOWER and checker is not None
    if action.target is None and not check:
        f.release(name)  # dropped: its bytes are never read
        return
    tensor = f.get(name)
    f.release(name)
    if check:
        checker.check(name, tensor)
    if action.target is None:
        return
    if source is plan.stage2 and name in plan.lora_pairs:
        a_name, b_name = plan.lora_pairs[name]
        tensor = _merge_lora(tensor, adapter.pop(a_name), adapter.pop(b_name), lora.scaling)
    if action.target in (EMBED_KEY, LM_HEAD_KEY):
        tensor = _append_mean_rows(tensor, plan.new_rows)
    writer.write(action.target, tensor.to(options.dtype))


def _stream(
    plan: ConversionPlan, lora: LoraSettings, options: ConvertOptions, writer: StreamingShardWriter
) -> tuple[int, ImageTowerCheck | None]:
    """Pass 2: read, merge, pad, cast and write every kept tensor, one input file at a time."""
    adapter: dict[str, torch.Tensor] = {}
    for path in plan.adapter.files:
        with TensorFile(path) as f:
            adapter.update(f.iter_tensors())
    checker = _ImageTowerChecker(plan.clip) if options.verify_image_tower else None
    total = sum(len(s.meta) for s in plan.sources)
    with tqdm(total=total, unit="tensor", desc="convert", disable=not options.progress) as bar:
        for source in plan.sources:
            for path in source.files:
                bar.set_postfix_str(f"{source.label}: {path.name}")
                with TensorFile(path) as f:
                    for name in list(f.meta):
                        _write_one(plan, source, f, name, adapter, lora, options, writer, checker)
                        bar.update(1)
    if adapter:
        raise ConversionError(
            f"LoRA tensors left unmerged (their base weight never streamed by): {sorted(adapter)}"
        )
    merged = len(plan.lora_pairs)
    return merged, (checker.result() if checker is not None else None)


def convert_checkpoint(
    base_dir: str | Path,
    lora_dir: str | Path,
    clip_dir: str | Path,
    out_dir: str | Path,
    options: ConvertOptions | None = None,
) -> ConversionReport:
    """Convert the released stage-2 + LoRA + CLIP weights into ``out_dir`` (must be absent or empty).

    Raises :class:`ConversionError` (before anything is written) listing every unmatched, missing, duplicated
    or mis-shaped key, and for unreadable or unsafe files.
    """
    options = options or ConvertOptions()
    if options.dtype not in DTYPES.values():
        raise ValueError(f"dtype {options.dtype} is not supported; allowed: {list(DTYPES.values())}")
    start = time.perf_counter()
    base_dir, lora_dir, clip_dir, out_dir = (Path(p) for p in (base_dir, lora_dir, clip_dir, out_dir))
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConversionError(f"output {out_dir} exists and is not an empty directory")
    lora = read_lora_settings(lora_dir)
    tokenizer = _load_tokenizer(base_dir)
    base_vocab = len(tokenizer)
    token_ids = add_placeholder_tokens(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token  # as the original (pad = unk)
    try:
        vision_config = CLIPVisionConfig.from_pretrained(clip_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read the CLIP config in {clip_dir}: {exc}") from exc
    config = build_config(
        _read_json(base_dir / "config.json"),
        vision_config,
        vocab_size=len(tokenizer),
        token_ids=token_ids,
        overrides=options.config_overrides,
    )
    expected = expected_shapes(config)
    plan = plan_conversion(base_dir, lora_dir, clip_dir, expected, lora, base_vocab)
    logger.info(
        "plan ok: %d tensors to write, %d LoRA merges",
        sum(a.target is not None for s in plan.sources for a in s.actions.values()),
        len(plan.lora_pairs),
    )

    outputs = [
        OutputTensor(action.target, expected[action.target], options.dtype)
        for source in plan.sources
        for action in source.actions.values()
        if action.target is not None
    ]
    writer = StreamingShardWriter(out_dir, plan_shards(outputs, options.max_shard_bytes))
    try:
        merged, tower_check = _stream(plan, lora, options, writer)
    finally:
        writer.close()
    shards = writer.finalize()
    dtype_name = next(k for k, v in DTYPES.items() if v == options.dtype)
    config.dtype = options.dtype
    config.save_pretrained(out_dir)
    image_processor = None
    if (clip_dir / "preprocessor_config.json").is_file():
        image_processor = CLIPImageProcessor.from_pretrained(clip_dir, local_files_only=True)
    sentencepiece_model = base_dir / "tokenizer.model"
    if not sentencepiece_model.is_file():
        logger.warning(
            "%s has no tokenizer.model: the evaluation prompt's text chunks are cut by the fast tokenizer with "
            "the SentencePiece dummy prefix restored (exact for LLaMA's published tokenizer.json)",
            base_dir,
        )
    processor = ArtemisProcessor.from_config(
        config,
        tokenizer,
        image_processor,
        resize_mode=RESIZE_MODE,
        prompt_template=PROMPT_TEMPLATE,
        sentencepiece_model=sentencepiece_model if sentencepiece_model.is_file() else None,
    )
    processor.save_pretrained(out_dir)
    generation = _carry_generation_config(base_dir, out_dir, config)
    report = ConversionReport(
        out_dir=out_dir,
        dtype=dtype_name,
        num_tensors=len(outputs),
        total_bytes=writer.total_bytes,
        shards=tuple(p.name for p in shards),
        lora_merged=merged,
        lora_scaling=lora.scaling,
        dropped=dict(plan.dropped),
        added_tokens={t: i for t, i in token_ids.items() if i >= base_vocab},
        vocab_size=len(tokenizer),
        seconds=time.perf_counter() - start,
        image_tower_check=tower_check,
        generation_config=generation,
    )
    provenance = {
        "prompt_template": PROMPT_TEMPLATE,
        "resize_mode": RESIZE_MODE,
        "sources": {"base": str(base_dir), "lora": str(lora_dir), "clip": str(clip_dir)},
        "lora": {"r": lora.r, "alpha": lora.alpha, "scaling": lora.scaling, "merged": merged},
        "sentencepiece_model": processor.sentencepiece_model is not None,
        **{k: v for k, v in asdict(report).items() if k not in ("out_dir", "seconds")},
    }
    (out_dir / CONVERSION_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    logger.info(
        "converted %d tensors (%.2f GB, %s) into %s in %.1f s",
        report.num_tensors,
        report.total_bytes / 1e9,
        dtype_name,
        out_dir,
        report.seconds,
    )
    return report


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]i?B)?", re.IGNORECASE)
_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int:
    """``"5GB"`` -> 5e9 bytes; ``KB/MB/GB`` are powers of 1000, ``KiB/MiB/GiB`` of 1024, no unit = bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"size {text!r} is not understood; use e.g. 500MB, 4GB, 2GiB or a byte count")
    unit = (match.group(2) or "").lower()
    size = int(float(match.group(1)) * _UNITS.get(unit, 1))
    if size < 1:
        raise ValueError(f"size {text!r} must be at least 1 byte")
    return size


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m artemis_model.convert`` (the same options as ``artemis convert``)."""
    parser = argparse.ArgumentParser(
        prog="python -m artemis_model.convert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--base", type=Path, help="stage-2 Artemis-7b-ftune directory (weights, config, tokenizer)"
    )
    parser.add_argument("--lora", type=Path, help="stage-3 Artemis-7B-lora directory")
    parser.add_argument("--clip", type=Path, help="CLIP ViT-L/14 directory (openai/clip-vit-large-patch14)")
    parser.add_argument("--out", type=Path, help="output directory (absent or empty)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--max-shard-size", default="4GB", help="output shard size, e.g. 4GB, 500MB")
    parser.add_argument(
        "--verify-image-tower", action="store_true", help="compare the stage-2 CLIP copy with --clip"
    )
    parser.add_argument(
        "--config-overrides",
        type=Path,
        help="JSON file of ArtemisConfig fields to replace (non-7B checkpoints)",
    )
    parser.add_argument(
        "--verify", type=Path, help="load a converted directory and answer one referring question"
    )
    parser.add_argument("--device", default=None, help="device for --verify (default: cuda if available)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    convert_args = (args.base, args.lora, args.clip, args.out)
    if any(a is not None for a in convert_args):
        if any(a is None for a in convert_args):
            parser.error("converting needs all of --base, --lora, --clip and --out")
        overrides = _read_json(args.config_overrides) if args.config_overrides is not None else {}
        options = ConvertOptions(
            dtype=DTYPES[args.dtype],
            max_shard_bytes=parse_size(args.max_shard_size),
            verify_image_tower=args.verify_image_tower,
            config_overrides=overrides,
        )
        report = convert_checkpoint(args.base, args.lora, args.clip, args.out, options)
        print(json.dumps(asdict(report), indent=2, default=str))  # noqa: T201 - command-line output
    elif args.verify is None:
        parser.error("give --base/--lora/--clip/--out to convert, or --verify DIR")
    if args.verify is not None:
        from artemis_model.convert.verify import verify_converted

        result = verify_converted(args.verify, device=args.device)
        print(result.summary())  # noqa: T201 - command-line output
    return 0
