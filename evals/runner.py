"""Shared machinery of every evaluation run: deterministic shards, resumable JSONL output, merging.

A run maps a list of items to one output row each. Rows are appended to a JSONL file after every batch,
so a run cut off at any moment can be resumed: the ids already in the file are skipped and never reach the
model again. Shards split the item list into contiguous chunks (like ``numpy.array_split``), so merging the
shard files in shard order gives back the order of a single run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = dict[str, Any]

ID_KEY = "id"


@dataclass(frozen=True)
class Shard:
    """Shard ``shard_id`` of ``num_shards`` contiguous chunks of the item list."""

    num_shards: int = 1
    shard_id: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.num_shards, bool) or not isinstance(self.num_shards, int) or self.num_shards < 1:
            raise ValueError(f"num_shards={self.num_shards!r} must be an integer >= 1")
        if not isinstance(self.shard_id, int) or not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"shard_id={self.shard_id!r} must be an integer in [0, {self.num_shards})")

    def bounds(self, num_items: int) -> tuple[int, int]:
        """``[start, stop)`` of this shard in a list of ``num_items`` (first shards get the remainder)."""
        base, extra = divmod(num_items, self.num_shards)
        start = self.shard_id * base + min(self.shard_id, extra)
        stop = start + base + (1 if self.shard_id < extra else 0)
        return start, stop

    def select(self, items: Sequence[T]) -> list[T]:
        start, stop = self.bounds(len(items))
        return list(items[start:stop])

    def filename(self, stem: str) -> str:
        """``<stem>.jsonl`` for an unsharded run, ``<stem>.shard-I-of-N.jsonl`` otherwise."""
        if self.num_shards == 1:
            return f"{stem}.jsonl"
        return f"{stem}.shard-{self.shard_id:03d}-of-{self.num_shards:03d}.jsonl"


def shard_output_path(out_dir: Path, stem: str, shard: Shard) -> Path:
    """Where a run writes its rows: ``out_dir/<stem>.jsonl`` or ``out_dir/shards/<stem>.shard-I-of-N.jsonl``."""
    out_dir = Path(out_dir)
    if shard.num_shards == 1:
        return out_dir / shard.filename(stem)
    return out_dir / "shards" / shard.filename(stem)


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a JSONL file. A truncated last line (a run killed mid-write) is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[Row] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines):
                logger.warning("%s: ignoring a truncated last line %d (%s)", path, lineno, exc)
                continue
            raise ValueError(f"{path}:{lineno} is not valid JSON: {exc}") from exc
    return rows


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    """Write ``rows`` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _append_jsonl(path: Path, rows: Sequence[Row]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _repair_tail(path: Path) -> None:
    """Drop a truncated last line so that appended rows start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    logger.warning("%s: dropping a truncated last line of %d bytes", path, len(data) - cut)
    path.write_bytes(data[:cut])


@dataclass(frozen=True)
class RunSummary:
    """What one (possibly resumed) run did."""

    output: Path
    total: int
    """Items in this shard."""
    skipped: int
    """Items already in the output file (resumed), not sent to the model."""
    predicted: int
    seconds: float


def run_resumable(
    items: Sequence[T],
    *,
    item_id: Callable[[T], str],
    predict_batch: Callable[[list[T]], list[Row]],
    output: Path,
    batch_size: int = 8,
) -> RunSummary:
    """Run ``predict_batch`` over the items whose id is not yet in ``output``; append one row per item.

    ``predict_batch`` gets a list of at most ``batch_size`` items and must return one row per item, in order;
    the runner sets ``row["id"]``. Rows are flushed to disk after every batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _repair_tail(output)
    done = {str(row.get(ID_KEY)) for row in read_jsonl(output)}
    ids = [item_id(item) for item in items]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"item ids must be unique; repeated: {dupes}")
    todo = [(i, item) for i, item in zip(ids, items, strict=True) if i not in done]
    skipped = len(items) - len(todo)
    if skipped:
        logger.info("%s: resuming, %d of %d items already done", output, skipped, len(items))
    start = time.perf_counter()
    for b in range(0, len(todo), batch_size):
        chunk = todo[b : b + batch_size]
        rows = predict_batch([item for _, item in chunk])
        if len(rows) != len(chunk):
            raise ValueError(f"predict_batch returned {len(rows)} rows for {len(chunk)} items")
        out_rows = [
            {ID_KEY: i, **{k: v for k, v in row.items() if k != ID_KEY}}
            for (i, _), row in zip(chunk, rows, strict=True)
        ]
        _append_jsonl(output, out_rows)
        logger.info("%s: %d/%d done", output, skipped + b + len(chunk), len(items))
    return RunSummary(
        output=output,
        total=len(items),
        skipped=skipped,
        predicted=len(todo),
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class MergeSummary:
    output: Path
    rows: int
    duplicates: int
    """Rows whose id was already seen (kept: the first)."""
    missing_ids: tuple[str, ...]
    """Ids of ``order`` with no row in any shard."""


def merge_shards(
    out_dir: Path,
    stem: str,
    num_shards: int,
    *,
    order: Sequence[str] | None = None,
    allow_missing: bool = False,
) -> MergeSummary:
    """Concatenate the shard files of ``out_dir/shards`` into ``out_dir/<stem>.jsonl``.

    Rows are deduplicated by id (first kept). With ``order`` (the item ids of the whole data set), rows are
    sorted by it and ids without a row are reported; that raises unless ``allow_missing``.
    """
    out_dir = Path(out_dir)
    paths = [shard_output_path(out_dir, stem, Shard(num_shards, i)) for i in range(num_shards)]
    absent = [str(p) for p in paths if not p.exists()]
    if absent:
        raise FileNotFoundError(f"cannot merge {num_shards} shards: missing shard files {absent}")
    seen: dict[str, Row] = {}
    duplicates = 0
    for path in paths:
        for row in read_jsonl(path):
            key = str(row.get(ID_KEY))
            if key in seen:
                duplicates += 1
                continue
            seen[key] = row
    missing: tuple[str, ...] = ()
    rows = list(seen.values())
    if order is not None:
        rank = {str(k): n for n, k in enumerate(order)}
        missing = tuple(k for k in rank if k not in seen)
        unknown = [k for k in seen if k not in rank]
        if unknown:
            logger.warning("merge: %d rows have ids not in the data, e.g. %s", len(unknown), unknown[:3])
        rows.sort(key=lambda r: rank.get(str(r.get(ID_KEY)), len(rank)))
        if missing and not allow_missing:
            raise ValueError(f"merge: {len(missing)} items have no prediction yet, e.g. {list(missing[:5])}")
    output = out_dir / f"{stem}.jsonl"
    write_jsonl(output, rows)
    return MergeSummary(output=output, rows=len(rows), duplicates=duplicates, missing_ids=missing)
