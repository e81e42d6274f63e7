"""What every metadata backend shares: ids, records, the file layout under ``data_dir`` and the queries.

A backend (:mod:`.sqlite`, :mod:`.postgres`) gives :class:`BaseStore` a transaction (``_transaction``: a
function running one statement written with ``?`` placeholders) and the SQL of its clock; the rest is here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.api.errors import ConflictError, NotFoundError, UnprocessableError
from agent.api.quota import LocalReservations, ReservationBook

logger = logging.getLogger(__name__)
ID_PATTERN = r"^[0-9a-f]{32}$"
_ID = re.compile(ID_PATTERN)

LOCAL_USER = "local"
"""Owner of everything made while API keys are off (the single-user local case)."""
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

MESSAGE_STATUSES = (
    "running",
    "done",
    "clarification",
    "cancelled",
    "timed_out",
    "error",
    "rejected",
    "interrupted",
)
"""How a stored message ends: ``running`` until its turn finishes; ``interrupted`` when the process that ran it
died (found at the next start, or, with replicas, once its lease expired); ``rejected`` when it never ran (503);
``timed_out`` past its wall-time budget."""
INTERRUPTED_ANSWER = "(this turn was cut off: the service stopped while it ran; ask again)"
ORPHAN_AGE_S = 3600.0
"""With replicas, an upload's ``.part`` file or a video directory without a row is only removed at start once
it is this old (another replica may be receiving it right now)."""

Run = Callable[[str, tuple], "Rows"]


class DataDirBusyError(RuntimeError):
    """Another live process serves the same ``data_dir`` (SQLite: one process owns it, turns in flight)."""


def new_id() -> str:
    return uuid.uuid4().hex


def check_id(value: str, kind: str = "id") -> str:
    """``value`` if it is a server-made id (32 lowercase hex digits); 422 otherwise."""
    if not isinstance(value, str) or not _ID.match(value):
        raise UnprocessableError(f"{kind} {str(value)[:80]!r} is not valid: ids are 32 lowercase hex digits")
    return value


def inside(base: Path, path: Path) -> Path:
    """``path`` resolved, if it lies inside ``base`` (defence in depth: every path is already ours)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise UnprocessableError(f"path {path} leaves the data directory")
    return resolved


def display_name(filename: str | None) -> str:
    """A client's file name for display only: no directories, no control characters, at most 120 chars."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or "video"


@dataclass(frozen=True)
class VideoRecord:
    id: str
    filename: str
    size_bytes: int
    num_frames: int
    fps: float
    width: int
    height: int
    content_hash: str
    created_at: float
    owner: str = LOCAL_USER


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    video_id: str
    title: str
    created_at: float
    updated_at: float
    owner: str = LOCAL_USER


@dataclass(frozen=True)
class UserRecord:
    name: str
    key_sha256: str
    created_at: float


def key_digest(key: str) -> str:
    """The stored form of an API key: its SHA-256 (hex). Keys are random 256-bit tokens, so a plain hash is
    enough (no salt or slow hash is needed against guessing)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _owned_by(owner: str | None) -> tuple[str, tuple]:
    """SQL condition and args: rows of ``owner``; every row when ``owner`` is None (the admin)."""
    return ("", ()) if owner is None else (" AND owner = ?", (owner,))


class Rows:
    """What one statement gave: its rows (as dicts) and how many rows it changed."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount


class BaseStore:
    """Metadata in a SQL database plus the file layout under ``data_dir`` (see :mod:`agent.api.storage`).

    Running turns: a message is stored ``running`` with the id of the replica running it and a lease
    (``lease_until``, on the database's clock) that the replica renews while it lives (backends with replicas);
    a ``running`` message whose lease expired is shown ``interrupted`` by whoever reads it next."""

    replica_id: str | None = None
    lease_s: float | None = None
    shared: bool = False
    """Several processes serve this data_dir at once (no process owns it)."""
    integrity_errors: tuple[type[Exception], ...] = ()
    now_sql: str = ""
    """SQL of the database's clock in seconds since the epoch."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.videos_dir = self.data_dir / "videos"
        self.uploads_dir = self.data_dir / "uploads"
        for d in (self.data_dir, self.videos_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.interrupted = 0
        self._reservations: ReservationBook = LocalReservations()

    # ---- backend ------------------------------------------------------------------------------------------
    def _transaction(self) -> AbstractContextManager[Run]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def quota_reservations(self) -> ReservationBook:
        """Where the disk quota's reservations of writes in flight live (give it to
        :class:`~agent.api.quota.DiskQuota`): this process's memory when one process owns the data_dir;
        backends with replicas keep them in the shared database, so that replicas take from one room."""
        return self._reservations

    def _q(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self._transaction() as run:
            return run(sql, args).rows

    def _start(self) -> None:
        """After the schema exists: clean cut-off uploads, show dead turns as interrupted."""
        self._clean_partial_uploads()
        self.interrupted = self._interrupt_dead_turns()

    def _interrupt_dead_turns(self, conversation_id: str | None = None) -> int:
        """Mark ``interrupted`` the turns left ``running`` by a dead process: every running one when this process
        owns the data_dir (nothing else can run them), those whose lease expired otherwise."""
        sql = (
            "UPDATE messages SET status = 'interrupted', answer = CASE WHEN answer = '' THEN ? ELSE answer END"
            " WHERE status = 'running'"
        )
        args: tuple = (INTERRUPTED_ANSWER,)
        if self.shared:
            sql += f" AND lease_until < {self.now_sql}"
        if conversation_id is not None:
            sql, args = sql + " AND conversation_id = ?", (*args, conversation_id)
        with self._transaction() as run:
            count = run(sql, args).rowcount
        if count:
            logger.warning("%d turn(s) cut off by a dead process marked 'interrupted'", count)
        return int(count)

    def _clean_partial_uploads(self) -> None:
        """Uploads cut off by a crash leave ``.part`` files (and maybe a video dir without a row); with
        replicas only old ones (:data:`ORPHAN_AGE_S`) are removed: another replica may be receiving them."""
        cutoff = time.time() - ORPHAN_AGE_S if self.shared else float("inf")

        def stale(path: Path) -> bool:
            try:
                return path.stat().st_mtime < cutoff
            except FileNotFoundError:
                return False

        for part in self.uploads_dir.glob("*.part"):
            if stale(part):
                part.unlink(missing_ok=True)
        known = {r["id"] for r in self._q("SELECT id FROM videos")}
        for child in self.videos_dir.iterdir():
            if child.is_dir() and _ID.match(child.name) and child.name not in known and stale(child):
                shutil.rmtree(child, ignore_errors=True)

    # ---- paths --------------------------------------------------------------------------------------------
    def upload_path(self, video_id: str) -> Path:
        return inside(self.data_dir, self.uploads_dir / f"{check_id(video_id, 'video id')}.part")

    def video_dir(self, video_id: str) -> Path:
        return inside(self.data_dir, self.videos_dir / check_id(video_id, "video id"))

    def video_path(self, video_id: str) -> Path:
        return self.video_dir(video_id) / "video"

    def frame_path(self, video_id: str, frame_idx: int) -> Path:
        return self.video_dir(video_id) / "frames" / f"{int(frame_idx):06d}.jpg"

    def evidence_dir(self, video_id: str, conversation_id: str, message_id: int) -> Path:
        conv = check_id(conversation_id, "conversation id")
        return self.video_dir(video_id) / "evidence" / conv / str(int(message_id))

    def used_bytes(self, *, partial: bool = True) -> int:
        """Bytes of every file under videos/ and uploads/ (what the disk quota counts); ``partial=False``
        leaves out uploads being received (``uploads/*.part``: their reservations count them)."""
        total = 0
        for root in (self.videos_dir, self.uploads_dir) if partial else (self.videos_dir,):
            for dirpath, _dirs, files in os.walk(root):
                for f in files:
                    try:
                        total += os.stat(os.path.join(dirpath, f)).st_size
                    except FileNotFoundError:
                        continue
        return total

    # ---- videos -------------------------------------------------------------------------------------------
    def add_video(self, rec: VideoRecord) -> None:
        self._q(
            "INSERT INTO videos (id, filename, size_bytes, num_frames, fps, width, height, content_hash,"
            " created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                rec.filename,
                rec.size_bytes,
                rec.num_frames,
                rec.fps,
                rec.width,
                rec.height,
                rec.content_hash,
                rec.created_at,
                rec.owner,
            ),
        )

    def get_video(self, video_id: str, owner: str | None = None) -> VideoRecord:
        """The video ``video_id`` if ``owner`` owns it (any owner when None); 404 otherwise (another user's
        video is not found either: its existence is not revealed)."""
        cond, args = _owned_by(owner)
        rows = self._q(f"SELECT * FROM videos WHERE id = ?{cond}", (check_id(video_id, "video id"), *args))
        if not rows:
            raise NotFoundError(f"video {video_id} not found")
        return VideoRecord(**rows[0])

    def list_videos(self, owner: str | None = None) -> list[VideoRecord]:
        cond, args = _owned_by(owner)
        rows = self._q(f"SELECT * FROM videos WHERE 1 = 1{cond} ORDER BY created_at DESC", args)
        return [VideoRecord(**r) for r in rows]

    def delete_video(self, video_id: str, owner: str | None = None) -> VideoRecord:
        """Remove the row and every file of the video (file, frames, evidence)."""
        rec = self.get_video(video_id, owner)
        self._q("DELETE FROM videos WHERE id = ?", (rec.id,))
        shutil.rmtree(self.video_dir(rec.id), ignore_errors=True)
        return rec

    # ---- conversations ------------------------------------------------------------------------------------
    def add_conversation(self, video_id: str, title: str, owner: str = LOCAL_USER) -> ConversationRecord:
        now = time.time()
        rec = ConversationRecord(
            id=new_id(), video_id=video_id, title=title, created_at=now, updated_at=now, owner=owner
        )
        self._q(
            "INSERT INTO conversations (id, video_id, title, created_at, updated_at, owner)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (rec.id, rec.video_id, rec.title, rec.created_at, rec.updated_at, rec.owner),
        )
        return rec

    def get_conversation(self, conversation_id: str, owner: str | None = None) -> ConversationRecord:
        """The conversation if ``owner`` owns it (any owner when None); 404 otherwise."""
        cond, args = _owned_by(owner)
        rows = self._q(
            f"SELECT * FROM conversations WHERE id = ?{cond}",
            (check_id(conversation_id, "conversation id"), *args),
        )
        if not rows:
            raise NotFoundError(f"conversation {conversation_id} not found")
        return ConversationRecord(**rows[0])

    def list_conversations(
        self, video_id: str | None = None, owner: str | None = None
    ) -> list[ConversationRecord]:
        cond, args = _owned_by(owner)
        if video_id is not None:
            cond, args = cond + " AND video_id = ?", (*args, check_id(video_id, "video id"))
        rows = self._q(f"SELECT * FROM conversations WHERE 1 = 1{cond} ORDER BY updated_at DESC", args)
        return [ConversationRecord(**r) for r in rows]

    def delete_conversation(self, conversation_id: str, owner: str | None = None) -> ConversationRecord:
        rec = self.get_conversation(conversation_id, owner)
        with self._transaction() as run:
            run("DELETE FROM messages WHERE conversation_id = ?", (rec.id,))
            run("DELETE FROM conversations WHERE id = ?", (rec.id,))
        shutil.rmtree(self.video_dir(rec.video_id) / "evidence" / rec.id, ignore_errors=True)
        return rec

    # ---- users --------------------------------------------------------------------------------------------
    def add_user(self, name: str, key: str) -> UserRecord:
        """A user with API key ``key`` (only its SHA-256 is stored); 409 when the name is taken."""
        if not re.match(USER_NAME_PATTERN, name) or name == LOCAL_USER:
            raise UnprocessableError(
                f"user name {name[:80]!r} is not valid: 1-64 of A-Z a-z 0-9 _ . - (not {LOCAL_USER!r})"
            )
        rec = UserRecord(name=name, key_sha256=key_digest(key), created_at=time.time())
        try:
            self._q(
                "INSERT INTO users (name, key_sha256, created_at) VALUES (?, ?, ?)",
                (rec.name, rec.key_sha256, rec.created_at),
            )
        except self.integrity_errors as exc:
            raise ConflictError(
                f"user {name!r} exists already: delete it first to give it a new key"
            ) from exc
        return rec

    def user_by_key(self, key: str) -> UserRecord | None:
        rows = self._q("SELECT * FROM users WHERE key_sha256 = ?", (key_digest(key),))
        return UserRecord(**rows[0]) if rows else None

    def list_users(self) -> list[UserRecord]:
        return [UserRecord(**r) for r in self._q("SELECT * FROM users ORDER BY name")]

    def delete_user(self, name: str) -> UserRecord:
        """Remove the user's key (its videos and conversations stay; the admin still sees them)."""
        rows = self._q("DELETE FROM users WHERE name = ? RETURNING *", (name,))
        if not rows:
            raise NotFoundError(f"user {name[:80]!r} not found")
        return UserRecord(**rows[0])

    # ---- messages -----------------------------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: str,
        *,
        text: str,
        box: list[float] | None,
        frame_idx: int | None,
        choice: int | None,
    ) -> int:
        """Store a user message ``running``, held by this replica's lease (when it has one); its id."""
        lease = f"{self.now_sql} + ?" if self.lease_s is not None else "?"
        with self._transaction() as run:
            rows = run(
                "INSERT INTO messages (conversation_id, turn, text, box, frame_idx, choice, status, created_at,"
                f" replica, lease_until) VALUES (?, 0, ?, ?, ?, ?, 'running', ?, ?, {lease}) RETURNING id",
                (
                    conversation_id,
                    text,
                    json.dumps(box) if box else None,
                    frame_idx,
                    choice,
                    time.time(),
                    self.replica_id,
                    self.lease_s,
                ),
            ).rows
            run("UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id))
        return int(rows[0]["id"])

    def turn_lock(self, conversation_id: str) -> AbstractContextManager[None]:
        """Held while a turn of ``conversation_id`` runs, so that turns of one conversation run one after the
        other (its LangGraph thread has one writer). One process: its model worker already runs one turn at
        a time, so nothing to hold; replicas override it."""
        return nullcontext()

    def renew_leases(self) -> int:
        """Extend the lease of every turn this replica runs (its heartbeat); how many it holds."""
        if self.lease_s is None:
            return 0
        with self._transaction() as run:
            return run(
                f"UPDATE messages SET lease_until = {self.now_sql} + ? WHERE replica = ? AND status = 'running'",
                (self.lease_s, self.replica_id),
            ).rowcount

    def finish_message(self, message_id: int, *, status: str, turn: int, **fields: Any) -> None:
        """Record how a message ended: ``answer``, ``clarification``, ``evidence``, ``tracks`` (JSON-able)."""
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"message status {status!r} is not one of {MESSAGE_STATUSES}")
        values = {k: (v if k == "answer" else json.dumps(v)) for k, v in fields.items() if v is not None}
        sets = ", ".join(["status = ?", "turn = ?"] + [f"{k} = ?" for k in values])
        self._q(f"UPDATE messages SET {sets} WHERE id = ?", (status, turn, *values.values(), int(message_id)))

    def get_message(self, conversation_id: str, message_id: int) -> dict[str, Any]:
        self._expire(conversation_id)
        rows = self._q(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id = ?",
            (conversation_id, int(message_id)),
        )
        if not rows:
            raise NotFoundError(f"message {message_id} not found in conversation {conversation_id}")
        return _message_dict(rows[0])

    def list_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        self._expire(conversation_id)
        rows = self._q(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [_message_dict(r) for r in rows]

    def _expire(self, conversation_id: str) -> None:
        """With replicas: a running turn of this conversation whose replica died shows as interrupted."""
        if self.shared:
            self._interrupt_dead_turns(conversation_id)


_MESSAGE_COLUMNS = (
    "id, conversation_id, turn, text, box, frame_idx, choice, status, answer, clarification, evidence, tracks,"
    " created_at"
)


def _message_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("box", "clarification", "evidence", "tracks"):
        out[key] = json.loads(out[key]) if out[key] else None
    return out
