"""Safe, streaming checkpoint I/O: read tensor files one at a time, write safetensors shards.

Reading never unpickles arbitrary objects: ``.safetensors`` files go through ``safetensors`` and ``.bin``
files through ``torch.load(..., weights_only=True, mmap=True)`` (memory-mapped, so a tensor's bytes are only
read when it is used). A file holding anything but a flat ``{name: tensor}`` dict is refused with
:class:`ConversionError`.

Writing buffers tensors up to ``max_shard_bytes`` and flushes each shard with ``safetensors.torch.save_file``;
:meth:`ShardWriter.finalize` names the shards ``model-0000k-of-0000n.safetensors`` and writes
``model.safetensors.index.json``.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

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


def read_meta(path: str | Path) -> dict[str, TensorMeta]:
    """Names, shapes and dtypes of a weight file, without keeping its data."""
    with TensorFile(path) as f:
        return dict(f.meta)


class ShardWriter:
    """Buffers tensors and writes ``safetensors`` shards of about ``max_shard_bytes`` each.

    A tensor larger than ``max_shard_bytes`` gets a shard of its own. :attr:`peak_buffer_bytes` is the most
    the buffer ever held.
    """

    def __init__(self, directory: str | Path, max_shard_bytes: int) -> None:
        if max_shard_bytes < 1:
            raise ValueError(f"max_shard_bytes {max_shard_bytes} must be >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_shard_bytes = int(max_shard_bytes)
        self._buffer: dict[str, torch.Tensor] = {}
        self._buffer_bytes = 0
        self._written: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0
        self.peak_buffer_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if name in self._buffer or any(name in names for _, names in self._written):
            raise ConversionError(f"tensor {name!r} written twice")
        nbytes = tensor.numel() * tensor.element_size()
        if self._buffer and self._buffer_bytes + nbytes > self.max_shard_bytes:
            self.flush()
        self._buffer[name] = tensor.contiguous()
        self._buffer_bytes += nbytes
        self.total_bytes += nbytes
        self.peak_buffer_bytes = max(self.peak_buffer_bytes, self._buffer_bytes)

    def flush(self) -> None:
        if not self._buffer:
            return
        path = self.directory / f"model-part-{len(self._written) + 1:05d}.safetensors"
        save_file(self._buffer, str(path), metadata={"format": "pt"})
        self._written.append((path, list(self._buffer)))
        logger.debug("wrote %s (%d tensors, %d bytes)", path.name, len(self._buffer), self._buffer_bytes)
        self._buffer = {}
        self._buffer_bytes = 0

    def finalize(self) -> list[Path]:
        """Flush, give the shards their final names and write ``model.safetensors.index.json``."""
        self.flush()
        count = len(self._written)
        weight_map: dict[str, str] = {}
        final: list[Path] = []
        for i, (path, names) in enumerate(self._written, start=1):
            target = self.directory / f"model-{i:05d}-of-{count:05d}.safetensors"
            path.rename(target)
            final.append(target)
            weight_map.update(dict.fromkeys(names, target.name))
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        (self.directory / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return final
