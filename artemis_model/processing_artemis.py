"""``ArtemisProcessor``: prompt templates, placeholder expansion, label masking, frame and box preprocessing.

Placeholders: ``<image>``, ``<video>``, ``<region>``; the data sets' ``<bbox>`` is read as ``<region>``. They are
added special tokens of the tokenizer (the 32,000 Vicuna words + 3 rows). Expansion: ``<video>`` ->
``num_temporal_tokens + num_patches`` tokens (356), ``<image>`` -> ``num_patches`` (256), ``<region>`` -> 1.

Text between placeholders is tokenized piece by piece (BOS only at the very start), as the original did. The
original's evaluation template also reproduces its slow SentencePiece tokenizer's dummy prefix on every piece
(:attr:`PromptTemplate.sentencepiece_chunks`); our templates use the fast tokenizer's pieces as they are.

Templates (vicuna_v1 layout, ``sep=" "``, ``sep2="</s>"``):

- ``"train"``: system "A chat between a curious user ..."; the original training template;
- ``"eval_original"``: system "A chat between a curious human ..."; the original evaluation template
  (``llava_v1``), with :data:`EVAL_QUESTION`.

Rendered ``system + " USER: " + q + " ASSISTANT: " + a + "</s>"`` per turn; a generation prompt ends with
``" ASSISTANT:"`` (no trailing space, as the original; the answer's first token carries the space).

Resize modes:

- ``"consistent"`` (default for our models): global and RoI frames are both squashed to SxS, so a box
  normalised by the frame's width/height maps exactly onto the CLIP input. A box partly outside the frame is
  clipped to it (``clip_boxes``).
- ``"original"`` (to reproduce the released checkpoint): global frames squashed to SxS (nearest), RoI frames
  resized by the shortest side and center-cropped by CLIP's processor, while the box is still normalised
  against the un-cropped frame (the official mismatch for non-square videos). A box partly outside the frame
  is NOT clipped: it is normalised as it is (coordinates below 0 or above 1), as the original did.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
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
SENTENCEPIECE_FILE = "tokenizer.model"

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
    sentencepiece_chunks: bool = False
    """Tokenize every text chunk between placeholders as the slow SentencePiece LLaMA tokenizer did: each chunk
    gets the dummy-prefix ``▁``, so a chunk that starts with a space begins with a lone ``▁`` (id 29871 in the
    LLaMA vocabulary): ``" ASSISTANT:"`` -> ``29871 319 ...``. Only the original's evaluation template does this
    (its weights were trained so); our templates keep the fast tokenizer's pieces."""


TEMPLATES: dict[str, PromptTemplate] = {
    "train": PromptTemplate(
        system="A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    ),
    "eval_original": PromptTemplate(
        system="A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions.",
        sentencepiece_chunks=True,
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


def _load_sentencepiece(path: Path, tokenizer: PreTrainedTokenizerBase) -> Any:
    """Load ``path`` (a SentencePiece model) and check that its pieces are the tokenizer's, id for id."""
    import sentencepiece as spm

    if not path.is_file():
        raise FileNotFoundError(f"sentencepiece_model {path} does not exist")
    model = spm.SentencePieceProcessor(model_file=str(path))
    size = model.get_piece_size()
    words = tokenizer.convert_ids_to_tokens(list(range(size)))
    for i, word in enumerate(words):
        if word != model.id_to_piece(i):
            raise ValueError(
                f"sentencepiece_model {path} differs from the tokenizer at id {i}: "
                f"{model.id_to_piece(i)!r} vs {word!r}"
            )
    return model


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
        sentencepiece_model: str | Path | None = None,
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
        self.sentencepiece_model = Path(sentencepiece_model) if sentencepiece_model is not None else None
        """The slow tokenizer's ``tokenizer.model`` (converted weights): tokenizes the text chunks of templates with
        :attr:`PromptTemplate.sentencepiece_chunks` exactly as the original did."""
        self._sentencepiece = (
            _load_sentencepiece(self.sentencepiece_model, tokenizer) if self.sentencepiece_model else None
        )

    @classmethod
    def from_config(
        cls,
        config: ArtemisConfig,
        tokenizer: PreTrainedTokenizerBase,
        image_processor: CLIPImageProcessor | None = None,
        *,
        resize_mode: str = "consistent",
        prompt_template: str = "train",
        sentencepiece_model: str | Path | None = None,
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
            prompt_template=prompt_template,
            sentencepiece_model=sentencepiece_model,
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

    @functools.cached_property
    def _drops_dummy_prefix_before_space(self) -> bool:
        """Whether the tokenizer gives a piece that starts with a space no dummy-prefix ``▁`` of its own.

        True for the fast LLaMA tokenizers of recent transformers (Metaspace, prepend ``▁`` unless the text already
        starts with one: ``" doing"`` -> ``▁doing``); False for a legacy one (``" doing"`` -> ``▁ ▁doing``) and for
        byte-level BPE tokenizers, which have no dummy prefix.
        """
        with_space = self.tokenizer(" a", add_special_tokens=False)["input_ids"]
        return with_space == self.tokenizer("a", add_special_tokens=False)["input_ids"]

    def _tokenize_piece(
        self, piece: str, sentencepiece_chunks: bool
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and offsets (into ``piece``) of one text chunk between placeholders.

        With ``sentencepiece_chunks``: the SentencePiece model itself when the processor has one (exactly the
        original's ids); else the fast tokenizer with the dummy prefix restored (exact when the fast tokenizer's
        merges follow the SentencePiece scores, as LLaMA's published ``tokenizer.json`` does; a fast tokenizer
        converted from ``tokenizer.model`` by transformers 5 merges whitespace runs such as ``▁▁`` in id order).
        """
        if sentencepiece_chunks and self._sentencepiece is not None:
            proto = self._sentencepiece.encode(piece, return_type="proto")
            char_of_byte = [i for i, ch in enumerate(piece) for _ in ch.encode("utf-8")] + [len(piece)]
            return (
                [p.id for p in proto.pieces],
                [(char_of_byte[p.begin], char_of_byte[p.end]) for p in proto.pieces],
            )
        if sentencepiece_chunks and piece.startswith(" ") and self._drops_dummy_prefix_before_space:
            # "▁" + " doing" = "▁▁doing": the extra space stands for the SentencePiece dummy prefix.
            enc = self.tokenizer(" " + piece, add_special_tokens=False, return_offsets_mapping=True)
            offsets = [(max(s - 1, 0), max(e - 1, 0)) for s, e in enc["offset_mapping"]]
            return list(enc["input_ids"]), offsets
        enc = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), list(enc["offset_mapping"])

    def _tokenize(self, text: str, template: str | None = None) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character spans (placeholders get an empty span) of ``text``; BOS first when the tokenizer has one.

        ``template`` (default: :attr:`prompt_template`) decides how text chunks are tokenized (see
        :attr:`PromptTemplate.sentencepiece_chunks`).
        """
        template = template or self.prompt_template
        if template not in TEMPLATES:
            raise ValueError(f"template {template!r} is unknown; allowed: {sorted(TEMPLATES)}")
        sentencepiece_chunks = TEMPLATES[template].sentencepiece_chunks
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
                piece_ids, offsets = self._tokenize_piece(piece, sentencepiece_chunks)
                ids += piece_ids
                spans += [(pos + s, pos + e) for s, e in offsets]
            pos += len(piece)
        return ids, spans

    def encode(self, text: str, *, template: str | None = None) -> list[int]:
        """Token ids of a prompt rendered with ``template`` (default :attr:`prompt_template`), placeholders expanded."""
        return self._tokenize(text, template)[0]

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        template: str | None = None,
        padding_side: str = "left",
        return_tensors: str = "pt",
    ) -> BatchFeature:
        """Tokenize rendered prompt(s) -> ``input_ids``, ``attention_mask`` (left padded for generation).

        ``template``: the template the prompts were rendered with (default :attr:`prompt_template`).
        """
        texts = [text] if isinstance(text, str) else list(text)
        encoded = [self.encode(t, template=template) for t in texts]
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
        ids, spans = self._tokenize(text, template)
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

    @property
    def clip_boxes(self) -> bool:
        """Whether boxes partly outside the frame are clipped to it: yes in the ``consistent`` mode; no in the
        ``original`` mode (the original normalised the raw box, RoIAlign samples zeros outside the frame)."""
        return self.resize_mode != "original"

    def normalize_boxes(self, boxes: Sequence[Box], width: int, height: int) -> torch.Tensor:
        """Pixel ``xyxy`` boxes of a ``width`` x ``height`` frame -> ``[N, 4]`` normalised (validated).

        Same formula in both resize modes: ``box / [W, H, W, H]`` against the un-cropped frame. In the
        ``consistent`` mode this maps exactly onto the squashed CLIP input; in the ``original`` mode it does not
        for non-square frames (the official behaviour). Boxes partly outside the frame are clipped to [0, 1]
        when :attr:`clip_boxes` (``consistent``), kept as they are otherwise (``original``). Boxes NaN,
        inverted, empty or entirely outside the frame raise :class:`~artemis_model.errors.InvalidBoxError`.
        """
        rows = [validate_box(b, width, height, clip=self.clip_boxes) for b in boxes]
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
        if self.sentencepiece_model is not None:
            target = directory / SENTENCEPIECE_FILE
            if self.sentencepiece_model.resolve() != target.resolve():
                shutil.copyfile(self.sentencepiece_model, target)
            settings["sentencepiece_model"] = SENTENCEPIECE_FILE
        (directory / PROCESSOR_FILE).write_text(json.dumps(settings, indent=2))

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> ArtemisProcessor:
        directory = Path(directory)
        settings_file = directory / PROCESSOR_FILE
        if not settings_file.is_file():
            raise FileNotFoundError(f"{settings_file} not found: not a saved ArtemisProcessor")
        settings = {**json.loads(settings_file.read_text()), **overrides}
        if settings.get("sentencepiece_model") is not None:
            settings["sentencepiece_model"] = directory / settings["sentencepiece_model"]
        tokenizer = AutoTokenizer.from_pretrained(directory)
        image_processor = CLIPImageProcessor.from_pretrained(directory)
        return cls(tokenizer, image_processor, **settings)
