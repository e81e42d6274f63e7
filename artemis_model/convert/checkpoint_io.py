"""Safe, streaming checkpoint I/O: read tensor files one at a time, write safetensors shards.

Reading never unpickles arbitrary objects: ``.safetensors`` files go through ``safetensors`` and ``.bin``
files through ``torch.load(..., weights_only=True, mmap=True)`` (memory-mapped, so a tensor's bytes are only
read when it is used). A file holding anything but a flat ``{name: tensor}`` dict is refused with
:class:`ConversionError`.

Writing is planned: the output names, shapes and dtypes are known before any data is read, so the shards
(``model-0000k-of-0000n.safetensors`` + ``model.safetensors.index.json``) are laid out up front and each
tensor's bytes go straight to disk as it is produced; no output buffer is held.
"""

from __future__ import annotations

import json
import logging
import pickle
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import torch
from safetensors import SafetensorError, safe_open

logger = logging.getLogger(__name__)

SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"
# Preference order when a directory holds several layouts.
MODEL_WEIGHT_NAMES = (SAFETENSORS_INDEX, "model.safetensors", BIN_INDEX, "pytorch_model.bin")
ADAPTER_WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin")

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class ConversionError(ValueError):
    """A checkpoint that cannot be converted: unreadable, unsafe, or with unmatched/missing/mis-shaped keys."""


@dataclass(frozen=True)
class TensorMeta:
    """Shape and dtype of one stored tensor (read without loading its data)."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return torch.Size(self.shape).numel() * torch.empty((), dtype=self.dtype).element_size()


def resolve_weight_files(
    directory: Path, names: Sequence[str] = MODEL_WEIGHT_NAMES
) -> tuple[list[Path], dict[str, str] | None]:
    """The weight files of ``directory`` and the index's ``weight_map`` (``None`` for a single file): the shards
    of the first index found in ``names``, or a single file.

    Raises :class:`ConversionError` naming the candidates when none exists, or when an index names a
    missing shard.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConversionError(f"{directory} is not a directory")
    for name in names:
        path = directory / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [path], None
        weight_map = read_index(path)
        shards: list[Path] = []
        for shard in dict.fromkeys(weight_map.values()):
            shard_path = directory / shard
            if not shard_path.is_file():
                raise ConversionError(f"{path} names shard {shard!r}, which is not in {directory}")
            shards.append(shard_path)
        return shards, weight_map
    raise ConversionError(f"no weights in {directory}: expected one of {list(names)}")


def read_index(path: Path) -> dict[str, str]:
    """``weight_map`` (tensor name -> shard file name) of a ``*.index.json``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"cannot read index {path}: {exc}") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise ConversionError(f"index {path} has no 'weight_map' of tensor name -> shard file")
    return weight_map


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` restricted to tensors (``weights_only=True``), memory-mapped; a flat dict or an error."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"refusing to load {path}: it holds objects other than tensors and plain containers "
            f"(read with torch.load(weights_only=True); arbitrary unpickling is never done): {first}"
        ) from exc
    except (RuntimeError, OSError, EOFError) as exc:
        raise ConversionError(
            f"cannot read {path} as a torch zip checkpoint (torch.load weights_only=True, mmap=True): {exc}"
        ) from exc
    if not isinstance(obj, dict):
        raise ConversionError(f"{path} holds a {type(obj).__name__}, expected a dict of name -> tensor")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{path} holds non-tensor entries (expected name -> tensor only): {bad[:20]}")
    return obj


class TensorFile:
    """One weight file opened for reading: :attr:`meta` without loading data, :meth:`get` one tensor.

    Use as a context manager; :meth:`release` drops a ``.bin`` tensor's reference once it is used, so a
    streaming pass holds at most the tensors in flight.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle = None
        self._tensors: dict[str, torch.Tensor] | None = None
        if self.path.suffix == ".safetensors":
            try:
                self._handle = safe_open(str(self.path), framework="pt", device="cpu")
            except (SafetensorError, OSError) as exc:
                raise ConversionError(f"cannot read safetensors file {self.path}: {exc}") from exc
            meta: dict[str, TensorMeta] = {}
            for name in self._handle.keys():
                piece = self._handle.get_slice(name)
                dtype_name = piece.get_dtype()
                if dtype_name not in _SAFETENSORS_DTYPES:
                    raise ConversionError(f"{self.path}: tensor {name!r} has unsupported dtype {dtype_name}")
                meta[name] = TensorMeta(tuple(piece.get_shape()), _SAFETENSORS_DTYPES[dtype_name])
        elif self.path.suffix == ".bin":
            self._tensors = _torch_load(self.path)
            meta = {k: TensorMeta(tuple(v.shape), v.dtype) for k, v in self._tensors.items()}
        else:
            raise ConversionError(f"{self.path}: unknown weight file type; allowed: .safetensors, .bin")
        self.meta = meta

    def get(self, name: str) -> torch.Tensor:
        if name not in self.meta:
            raise ConversionError(f"{self.path} has no tensor {name!r}")
        if self._handle is not None:
            return self._handle.get_tensor(name)
        if self._tensors is None:
            raise ConversionError(f"{self.path} is closed")
        return self._tensors[name]

    def release(self, name: str) -> None:
        """Forget ``name`` (``.bin``): its memory is freed once the caller drops its own reference."""
        if self._tensors is not None:
            self._tensors.pop(name, None)

    def iter_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` in file order, releasing each after it is yielded."""
        for name in list(self.meta):
            tensor = self.get(name)
            self.release(name)
            yield name, tensor
            del tensor

    def close(self) -> None:
        self._handle = None
        self._tensors = None

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_TORCH_TO_SAFETENSORS = {v: k for k, v in _SAFETENSORS_DTYPES.items()}


@dataclass(frozen=True)
class OutputTensor:
    """One tensor of the planned output: its name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return TensorMeta(self.shape, self.dtype).nbytes


def plan_shards(tensors: Sequence[OutputTensor], max_shard_bytes: int) -> list[list[OutputTensor]]:
    """Split ``tensors`` (in write order) into shards of at most ``max_shard_bytes`` (a larger tensor: alone)."""
    if max_shard_bytes < 1:
        raise ValueError(f"max_shard_bytes {max_shard_bytes} must be >= 1")
    shards: list[list[OutputTensor]] = [[]]
    size = 0
    for tensor in tensors:
        if shards[-1] and size + tensor.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(tensor)
        size += tensor.nbytes
    return [s for s in shards if s]


class StreamingShardWriter:
    """Writes planned ``safetensors`` shards tensor by tensor, straight to disk (no output buffer).

    The layout is fixed up front (:func:`plan_shards`), so each shard's header is written first and every
    tensor's bytes follow as they arrive; they must arrive in the planned order with the planned shape and
    dtype. The files follow the safetensors format: a little-endian u64 header length, the JSON header
    (padded with spaces to 8 bytes), then the raw data.
    """

    def __init__(self, directory: str | Path, shards: Sequence[Sequence[OutputTensor]]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shards = [list(s) for s in shards]
        count = len(self.shards)
        self.paths = [
            self.directory / f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)
        ]
        self._order = [(k, t) for k, shard in enumerate(self.shards) for t in shard]
        self._next = 0
        self._file: BinaryIO | None = None
        self.total_bytes = sum(t.nbytes for _, t in self._order)

    def _open_shard(self, k: int) -> None:
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for t in self.shards[k]:
            header[t.name] = {
                "dtype": _TORCH_TO_SAFETENSORS[t.dtype],
                "shape": list(t.shape),
                "data_offsets": [offset, offset + t.nbytes],
            }
            offset += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self._file = open(self.paths[k], "wb")  # noqa: SIM115 - closed when the shard's last tensor is written
        self._file.write(struct.pack("<Q", len(raw)))
        self._file.write(raw)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        if self._next >= len(self._order):
            raise ConversionError(f"tensor {name!r} is beyond the planned output")
        k, want = self._order[self._next]
        got = (name, tuple(tensor.shape), tensor.dtype)
        if got != (want.name, want.shape, want.dtype):
            raise ConversionError(
                f"output tensor {got} differs from the plan {(want.name, want.shape, want.dtype)}"
            )
        if self._file is None:
            self._open_shard(k)
        data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)  # raw little-endian bytes
        self._file.write(memoryview(data.numpy()))
        self._next += 1
        if self._next == len(self._order) or self._order[self._next][0] != k:
            self._file.close()
            self._file = None
            logger.debug("wrote %s", self.paths[k].name)

    def finalize(self) -> list[Path]:
        """Check that every planned tensor was written; write ``model.safetensors.index.json``."""
        if self._next != len(self._order):
            missing = [t.name for _, t in self._order[self._next :]]
            raise ConversionError(f"{len(missing)} planned tensors were never written, e.g. {missing[:5]}")
        weight_map = {t.name: self.paths[k].name for k, t in self._order}
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        (self.directory / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return list(self.paths)

    def close(self) -> None:
        """Close an unfinished shard (after an error)."""
        if self._file is not None:
            self._file.close()
            self._file = None
