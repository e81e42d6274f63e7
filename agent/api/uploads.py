"""Receive a multipart upload as a stream, writing the file part straight into ``data_dir``.

No spooling to the system temp dir (what Starlette's form parser does): the body is parsed chunk by chunk
with ``python_multipart`` and the ``file`` part is written to ``dest`` as it arrives, stopping at the size
limit (413) or the disk quota (507: ``reserve`` grows the upload's reservation as bytes arrive).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from agent.api.errors import (
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedVideoError,
)

logger = logging.getLogger(__name__)
FILE_FIELD = "file"

UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary", "description": "The video file"}
                    },
                }
            }
        },
    }
}


@dataclass
class _PartState:
    headers: dict[str, str] = field(default_factory=dict)
    field_name: str = ""
    header_field: bytes = b""
    header_value: bytes = b""


@dataclass
class Upload:
    filename: str
    size: int


async def receive_upload(
    content_type: str,
    content_length: str | None,
    stream: AsyncIterator[bytes],
    dest: Path,
    *,
    max_bytes: int,
    reserve: Callable[[int], None],
) -> Upload:
    """Write the ``file`` part of a ``multipart/form-data`` body to ``dest``; return its name and size. With a
    ``content_length`` its room is reserved before reading (the body's size: the file plus a few hundred bytes of
    multipart framing); a chunked body's reservation grows as bytes arrive.

    Raises 415 (not multipart), 422 (no file part / empty file), 413 (over ``max_bytes``),
    507 (``reserve(total_bytes)`` raises it: the disk quota, shared with concurrent writers).
    ``dest`` is removed on any failure.
    """
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedVideoError(
            f"upload must be multipart/form-data with a {FILE_FIELD!r} field, got {content_type or 'no content type'!r}"
        )
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes + 65536:
        raise _too_large(int(content_length), max_bytes)
    if content_length is not None and content_length.isdigit():
        # the whole upload's room at once (all or nothing: concurrent uploads cannot each hold part of the room
        # and all fail), off the event loop (with PostgreSQL a transaction that may wait on other replicas)
        await run_in_threadpool(reserve, min(int(content_length), max_bytes))
    part = _PartState()
    state = {"found": False, "filename": "", "size": 0, "in_file": False, "done_file": False}
    pending: list[bytes] = []

    def on_part_begin() -> None:
        part.headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.header_field.decode("latin-1").lower()] = part.header_value.decode("latin-1")
        part.header_field, part.header_value = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("latin-1")
        state["in_file"] = name == FILE_FIELD and not state["found"]
        if state["in_file"]:
            state["found"] = True
            state["filename"] = disp.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            pending.append(data[start:end])
            state["size"] += end - start

    def on_part_end() -> None:
        if state["in_file"]:
            state["in_file"] = False

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    ok = False
    try:
        with open(dest, "wb") as fh:
            async for chunk in stream:
                try:
                    parser.write(chunk)
                except ValueError as exc:
                    raise UnprocessableError(f"malformed multipart body: {exc}") from exc
                if state["size"] > max_bytes:
                    raise _too_large(state["size"], max_bytes)
                reserve(int(state["size"]))
                if pending:
                    data = b"".join(pending)
                    pending.clear()
                    await run_in_threadpool(fh.write, data)
            try:
                parser.finalize()
            except ValueError as exc:
                raise UnprocessableError(f"malformed multipart body: {exc}") from exc
            if pending:
                fh.write(b"".join(pending))
        if not state["found"]:
            raise UnprocessableError(f"the multipart body has no {FILE_FIELD!r} field with the video")
        if state["size"] == 0:
            raise UnprocessableError("the uploaded file is empty (0 bytes)")
        ok = True
        return Upload(filename=str(state["filename"]), size=int(state["size"]))
    finally:
        if not ok:
            dest.unlink(missing_ok=True)


def _too_large(size: int, max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the upload ({size} bytes) is over the limit of {max_bytes} bytes")
