"""``ArtemisProcessor``: prompt templates, placeholder expansion, label masking, frame and box preprocessing.

Placeholders: ``<image>``, ``<video>``, ``<region>``; the data sets' ``<bbox>`` is read as ``<region>``. They are
added special tokens of the tokenizer (the 32,000 Vicuna words + 3 rows). Expansion: ``<video>`` ->
``num_temporal_tokens + num_patches`` tokens (356), ``<image>`` -> ``num_patches`` (256), ``<region>`` -> 1.

Text between placeholders is tokenized piece by piece (BOS only at the very start), as the original did.

Templates (vicuna_v1 layout, ``sep=" "``, ``sep2="</s>"``):

- ``"train"``: system "A chat between a curious user ..."; the original training template;
- ``"eval_original"``: system "A chat between a curious human ..."; the original evaluation template
  (``llava_v1``), with :data:`EVAL_QUESTION`.

Rendered ``system + " USER: " + q + " ASSISTANT: " + a + "</s>"`` per turn; a generation prompt ends with
``" ASSISTANT:"`` (no trailing space, as the original; the answer's first token carries the space).

Resize modes:

- ``"consistent"`` (default for our models): global and RoI frames are both squashed to SxS, so a box
  normalised by the frame's width/height maps exactly onto the CLIP input.
- ``"original"`` (to reproduce the released checkpoint): global frames squashed to SxS (nearest), RoI frames
  resized by the shortest side and center-cropped by CLIP's processor, while the box is still normalised
  against the un-cropped frame (the official mismatch for non-square videos).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BatchFeature, CLIPImageProcessor, PreTrainedTokenizerBase

from artemis_model.configuration_artemis import ArtemisConfig
from artemis_model.types import Box, validate_box

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
REGION_TOKEN = "<region>"
BBOX_ALIAS = "<bbox>"
PLACEHOLDER_TOKENS = (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN)
RESIZE_MODES = ("consistent", "original")
IGNORE_INDEX = -100
PROCESSOR_FILE = "artemis_processor.json"

EVAL_QUESTION = (
    "<video>\nWhat is the <region> doing in this video? "
    "This is the region's video tracking list: <region><region><region><region>"
)


@dataclass(frozen=True)
class PromptTemplate:
    system: str
    roles: tuple[str, str] = ("USER", "ASSISTANT")
    sep: str = " "
    sep2: str = "</s>"


TEMPLATES: dict[str, PromptTemplate] = {
    "train": PromptTemplate(
        system="A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    ),
    "eval_original": PromptTemplate(
        system="A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    ),
}

_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in PLACEHOLDER_TOKENS) + ")")


@dataclass(frozen=True)
class EncodedConversation:
    """``input_ids`` and ``labels`` (``-100`` outside assistant answers) of one training sample."""

    input_ids: list[int]
    labels: list[int]


def add_placeholder_tokens(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Add ``<image>``, ``<video>``, ``<region>`` as special tokens (appended rows); return their ids."""
    tokenizer.add_special_tokens({"additional_special_tokens": list(PLACEHOLDER_TOKENS)})
    return {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}


def render_prompt(
    question: str,
    *,
    template: str = "train",
    answer: str | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> str:
    """Render a (multi-turn) conversation. Without ``answer`` it ends with ``" ASSISTANT:"`` for generation."""
    if template not in TEMPLATES:
        raise ValueError(f"template {template!r} is unknown; allowed: {sorted(TEMPLATES)}")
    tpl = TEMPLATES[template]
    user, assistant = tpl.roles
    text = tpl.system + tpl.sep
    for q, a in [*history, (question, answer)]:
        text += f"{user}: {q}{tpl.sep}"
        text += f"{assistant}: {a}{tpl.sep2}" if a is not None else f"{assistant}:"
    return text


def _to_uint8_frames(frames: Any) -> torch.Tensor:
    """Frames (array ``[T, H, W, 3]`` or a list of HxWx3 arrays / PIL images) -> uint8 ``[T, 3, H, W]``."""
    if isinstance(frames, torch.Tensor):
        arr = frames
    else:
        arr = torch.from_numpy(
            np.stack([np.asarray(f) for f in frames]) if isinstance(frames, list) else frames
        )
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] RGB, got shape {tuple(arr.shape)}")
    return arr.permute(0, 3, 1, 2).contiguous()  # [T, H, W, 3] -> [T, 3, H, W]


class ArtemisProcessor:
    """Tokenizer + CLIP image processor + templates. See the module docstring for the conventions."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_processor: CLIPImageProcessor,
        *,
        num_patches: int = 256,
        num_temporal_tokens: int = 100,
        resize_mode: str = "consistent",
        prompt_template: str = "train",
    ) -> None:
        if prompt_template not in TEMPLATES:
            raise ValueError(f"prompt_template {prompt_template!r} is unknown; allowed: {sorted(TEMPLATES)}")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {resize_mode!r} is unknown; allowed: {RESIZE_MODES}")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("ArtemisProcessor needs a fast (tokenizers-backed) tokenizer for label masking")
        missing = [t for t in PLACEHOLDER_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            raise ValueError(
                f"tokenizer lacks placeholder tokens {missing}; call add_placeholder_tokens() first"
            )
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.num_patches = int(num_patches)
        self.num_temporal_tokens = int(num_temporal_tokens)
        self.resize_mode = resize_mode
        self.prompt_template = prompt_template
        """The template the weights expect: ``"train"`` for our models, ``"eval_original"`` for converted ones."""
        self.token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}

    @classmethod
    def from_config(
        cls,
        config: ArtemisConfig,
        tokenizer: PreTrainedTokenizerBase,
        image_processor: CLIPImageProcessor | None = None,
        *,
        resize_mode: str = "consistent",
    ) -> ArtemisProcessor:
        """A processor matching ``config`` (token counts, image size); checks the placeholder ids agree."""
        size = config.vision_config.image_size
        if image_processor is None:
            image_processor = CLIPImageProcessor(
                size={"shortest_edge": size}, crop_size={"height": size, "width": size}
            )
        proc = cls(
            tokenizer,
            image_processor,
            num_patches=config.num_patches,
            num_temporal_tokens=config.num_temporal_tokens,
            resize_mode=resize_mode,
        )
        expected = {
            IMAGE_TOKEN: config.image_token_id,
            VIDEO_TOKEN: config.video_token_id,
            REGION_TOKEN: config.region_token_id,
        }
        if proc.token_ids != expected:
            raise ValueError(
                f"tokenizer placeholder ids {proc.token_ids} differ from the config's {expected}"
            )
        return proc

    @property
    def image_size(self) -> int:
        return int(self.image_processor.crop_size["height"])

    @property
    def num_video_tokens(self) -> int:
        return self.num_temporal_tokens + self.num_patches

    # ---- text ---------------------------------------------------------------------------------------------
    def _expand(self, placeholder: str) -> list[int]:
        count = {IMAGE_TOKEN: self.num_patches, VIDEO_TOKEN: self.num_video_tokens, REGION_TOKEN: 1}[
            placeholder
        ]
        return [self.token_ids[placeholder]] * count

    def _tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character spans (placeholders get an empty span) of ``text``; BOS first when the tokenizer has one."""
        text = text.replace(BBOX_ALIAS, REGION_TOKEN)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        if self.tokenizer.bos_token_id is not None:
            ids.append(self.tokenizer.bos_token_id)
            spans.append((0, 0))
        pos = 0
        for piece in _SPLIT.split(text):
            if piece in PLACEHOLDER_TOKENS:
                expanded = self._expand(piece)
                ids += expanded
                spans += [(pos, pos)] * len(expanded)
            elif piece:
                enc = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
                ids += enc["input_ids"]
                spans += [(pos + s, pos + e) for s, e in enc["offset_mapping"]]
            pos += len(piece)
        return ids, spans

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt with the placeholders expanded."""
        return self._tokenize(text)[0]

    def __call__(
        self, text: str | Sequence[str], *, padding_side: str = "left", return_tensors: str = "pt"
    ) -> BatchFeature:
        """Tokenize rendered prompt(s) -> ``input_ids``, ``attention_mask`` (left padded for generation)."""
        texts = [text] if isinstance(text, str) else list(text)
        encoded = [self.encode(t) for t in texts]
        return BatchFeature(self.pad(encoded, padding_side=padding_side), tensor_type=return_tensors)

    def pad(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        labels: Sequence[Sequence[int]] | None = None,
        padding_side: str = "right",
    ) -> dict[str, Any]:
        """Pad id lists (and labels with -100) to one length; returns python lists."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side {padding_side!r} must be 'left' or 'right'")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        length = max(len(s) for s in sequences)
        out: dict[str, Any] = {"input_ids": [], "attention_mask": []}
        if labels is not None:
            out["labels"] = []
        for i, seq in enumerate(sequences):
            n = length - len(seq)
            fill = ([pad_id] * n, [0] * n)
            if padding_side == "left":
                out["input_ids"].append(fill[0] + list(seq))
                out["attention_mask"].append(fill[1] + [1] * len(seq))
            else:
                out["input_ids"].append(list(seq) + fill[0])
                out["attention_mask"].append([1] * len(seq) + fill[1])
            if labels is not None:
                lab = list(labels[i])
                out["labels"].append(
                    [IGNORE_INDEX] * n + lab if padding_side == "left" else lab + [IGNORE_INDEX] * n
                )
        return out

    def encode_conversation(
        self, turns: Sequence[tuple[str, str]], *, template: str = "train"
    ) -> EncodedConversation:
        """A training sample: ``turns`` of (question, answer); only the answers and their ``</s>`` are supervised."""
        if not turns:
            raise ValueError("turns is empty: need at least one (question, answer)")
        turns = [(q.replace(BBOX_ALIAS, REGION_TOKEN), a) for q, a in turns]  # spans on the text tokenized
        *history, (question, answer) = turns
        text = render_prompt(question, template=template, answer=answer, history=history)
        tpl = TEMPLATES[template]
        # Character spans of each answer + sep2, found in rendering order.
        targets = []
        cursor = 0
        for q, a in turns:
            marker = f"{tpl.roles[0]}: {q}{tpl.sep}{tpl.roles[1]}: "
            start = text.index(marker, cursor) + len(marker)
            end = start + len(a) + len(tpl.sep2)
            targets.append((start, end))
            cursor = end
        ids, spans = self._tokenize(text)
        labels = []
        for tok, (s, e) in zip(ids, spans, strict=True):
            supervised = e > s and any(e > ts and s < te for ts, te in targets)
            labels.append(tok if supervised else IGNORE_INDEX)
        return EncodedConversation(input_ids=ids, labels=labels)

    def batch_decode(self, ids: torch.Tensor | Sequence[Sequence[int]], **kwargs: Any) -> list[str]:
        kwargs.setdefault("skip_special_tokens", True)
        return [t.strip() for t in self.tokenizer.batch_decode(ids, **kwargs)]

    def decode(self, ids: torch.Tensor | Sequence[int], **kwargs: Any) -> str:
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.decode(ids, **kwargs).strip()

    # ---- frames and boxes ---------------------------------------------------------------------------------
    def preprocess_frames(self, frames: Any, *, purpose: str = "global") -> torch.Tensor:
        """RGB frames ``[T, H, W, 3]`` (uint8) -> CLIP pixel values ``[T, 3, S, S]`` (float32).

        ``purpose="global"`` (video features) always squashes to SxS; ``purpose="region"`` squashes in the
        ``consistent`` mode and resizes the shortest side + center-crops in the ``original`` mode.
        """
        if purpose not in ("global", "region"):
            raise ValueError(f"purpose {purpose!r} must be 'global' or 'region'")
        size = self.image_size
        pixels = _to_uint8_frames(frames)  # [T, 3, H, W]
        if purpose == "region" and self.resize_mode == "original":
            images = list(pixels.permute(0, 2, 3, 1).numpy())
            return self.image_processor(images, return_tensors="pt")["pixel_values"]
        if purpose == "global" and self.resize_mode == "original":
            pixels = F.interpolate(
                pixels, size=(size, size), mode="nearest"
            )  # as the original feature script
        images = list(pixels.permute(0, 2, 3, 1).numpy())
        return self.image_processor(
            images,
            do_resize=True,
            size={"height": size, "width": size},
            do_center_crop=False,
            return_tensors="pt",
        )["pixel_values"]

    def normalize_boxes(self, boxes: Sequence[Box], width: int, height: int) -> torch.Tensor:
        """Pixel ``xyxy`` boxes of a ``width`` x ``height`` frame -> ``[N, 4]`` in [0, 1] (validated, clipped).

        Same formula in both resize modes: ``box / [W, H, W, H]`` against the un-cropped frame. In the
        ``consistent`` mode this maps exactly onto the squashed CLIP input; in the ``original`` mode it does not
        for non-square frames (the official behaviour).
        """
        rows = [validate_box(b, width, height) for b in boxes]
        scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4) / scale

    # ---- persistence --------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)
        settings = {
            "num_patches": self.num_patches,
            "num_temporal_tokens": self.num_temporal_tokens,
            "resize_mode": self.resize_mode,
            "prompt_template": self.prompt_template,
        }
        (directory / PROCESSOR_FILE).write_text(json.dumps(settings, indent=2))

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> ArtemisProcessor:
        directory = Path(directory)
        settings_file = directory / PROCESSOR_FILE
        if not settings_file.is_file():
            raise FileNotFoundError(f"{settings_file} not found: not a saved ArtemisProcessor")
        settings = {**json.loads(settings_file.read_text()), **overrides}
        tokenizer = AutoTokenizer.from_pretrained(directory)
        image_processor = CLIPImageProcessor.from_pretrained(directory)
        return cls(tokenizer, image_processor, **settings)
