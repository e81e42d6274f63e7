"""Where the service keeps things: the metadata DB (stdlib sqlite3) and the files under ``data_dir``.

Every path is built here from server-generated ids (uuid4 hex, checked by :func:`check_id`) and integers;
no path ever comes from a client. Layout::

    data_dir/service.lock               held (flock) by the one process that serves this data_dir
    data_dir/metadata.sqlite            videos, conversations, messages
    data_dir/checkpoints.sqlite         LangGraph checkpoints (one thread per conversation)
    data_dir/uploads/<id>.part          an upload being received
    data_dir/videos/<id>/video          the uploaded file
    data_dir/videos/<id>/frames/<n>.jpg frames served so far
    data_dir/videos/<id>/evidence/<conversation>/<message>/frame_<n>.jpg
    data_dir/features/<content_hash>/   the model's feature cache (when a model is loaded)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.api.errors import ConflictError, NotFoundError, UnprocessableError

logger = logging.getLogger(__name__)
ID_PATTERN = r"^[0-9a-f]{32}$"
_ID = re.compile(ID_PATTERN)

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, size_bytes INTEGER NOT NULL, num_frames INTEGER NOT NULL,
    fps REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, content_hash TEXT NOT NULL,
    created_at REAL NOT NULL, owner TEXT NOT NULL DEFAULT 'local');
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, video_id TEXT NOT NULL, title TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, owner TEXT NOT NULL DEFAULT 'local');
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, key_sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, turn INTEGER NOT NULL,
    text TEXT NOT NULL, box TEXT, frame_idx INTEGER, choice INTEGER, status TEXT NOT NULL,
    answer TEXT NOT NULL DEFAULT '', clarification TEXT, evidence TEXT, tracks TEXT,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
"""
LOCAL_USER = "local"
"""Owner of everything made while API keys are off (the single-user local case)."""
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_OWNED = ("videos", "conversations")


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
died (found at the next start); ``rejected`` when it never ran (503); ``timed_out`` past its wall-time budget."""
INTERRUPTED_ANSWER = "(this turn was cut off: the service stopped while it ran; ask again)"


class DataDirBusyError(RuntimeError):
    """Another live process serves the same ``data_dir`` (one process owns it: SQLite, turns in flight)."""


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


class Store:
    """Metadata in SQLite plus the file layout above. Thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.videos_dir = self.data_dir / "videos"
        self.uploads_dir = self.data_dir / "uploads"
        for d in (self.data_dir, self.videos_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._owner = _own(self.data_dir / "service.lock")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.data_dir / "metadata.sqlite"), check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            for table in _OWNED:  # a data_dir from before users: everything belongs to the local user
                columns = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if "owner" not in columns:
                    self._db.execute(
                        f"ALTER TABLE {table} ADD COLUMN owner TEXT NOT NULL DEFAULT '{LOCAL_USER}'"
                    )
            self._db.commit()
        self._clean_partial_uploads()
        self.interrupted = self._interrupt_dead_turns()

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._owner.close()  # releases the flock

    def _interrupt_dead_turns(self) -> int:
        """Turns still ``running`` at start were cut off by the death of the process that ran them (this one
        holds the data_dir's lock, so no live process runs them): mark them ``interrupted``."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE messages SET status = 'interrupted', answer = CASE WHEN answer = '' THEN ? ELSE answer END"
                " WHERE status = 'running'",
                (INTERRUPTED_ANSWER,),
            )
            self._db.commit()
        if cur.rowcount:
            logger.warning("%d turn(s) cut off by the previous process marked 'interrupted'", cur.rowcount)
        return int(cur.rowcount)

    def _q(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
            self._db.commit()
            return rows

    def _clean_partial_uploads(self) -> None:
        """Uploads cut off by a crash leave ``.part`` files (and maybe a video dir without a row)."""
        for part in self.uploads_dir.glob("*.part"):
            part.unlink(missing_ok=True)
        known = {r["id"] for r in self._q("SELECT id FROM videos")}
        for child in self.videos_dir.iterdir():
            if child.is_dir() and _ID.match(child.name) and child.name not in known:
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
        return VideoRecord(**dict(rows[0]))

    def list_videos(self, owner: str | None = None) -> list[VideoRecord]:
        cond, args = _owned_by(owner)
        rows = self._q(f"SELECT * FROM videos WHERE 1 = 1{cond} ORDER BY created_at DESC", args)
        return [VideoRecord(**dict(r)) for r in rows]

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
        return ConversationRecord(**dict(rows[0]))

    def list_conversations(
        self, video_id: str | None = None, owner: str | None = None
    ) -> list[ConversationRecord]:
        cond, args = _owned_by(owner)
        if video_id is not None:
            cond, args = cond + " AND video_id = ?", (*args, check_id(video_id, "video id"))
        rows = self._q(f"SELECT * FROM conversations WHERE 1 = 1{cond} ORDER BY updated_at DESC", args)
        return [ConversationRecord(**dict(r)) for r in rows]

    def delete_conversation(self, conversation_id: str, owner: str | None = None) -> ConversationRecord:
        rec = self.get_conversation(conversation_id, owner)
        self._q("DELETE FROM messages WHERE conversation_id = ?", (rec.id,))
        self._q("DELETE FROM conversations WHERE id = ?", (rec.id,))
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
            self._q("INSERT INTO users VALUES (?, ?, ?)", (rec.name, rec.key_sha256, rec.created_at))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(
                f"user {name!r} exists already: delete it first to give it a new key"
            ) from exc
        return rec

    def user_by_key(self, key: str) -> UserRecord | None:
        rows = self._q("SELECT * FROM users WHERE key_sha256 = ?", (key_digest(key),))
        return UserRecord(**dict(rows[0])) if rows else None

    def list_users(self) -> list[UserRecord]:
        return [UserRecord(**dict(r)) for r in self._q("SELECT * FROM users ORDER BY name")]

    def delete_user(self, name: str) -> UserRecord:
        """Remove the user's key (its videos and conversations stay; the admin still sees them)."""
        rows = self._q("SELECT * FROM users WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"user {name[:80]!r} not found")
        self._q("DELETE FROM users WHERE name = ?", (name,))
        return UserRecord(**dict(rows[0]))

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
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, turn, text, box, frame_idx, choice, status, created_at)"
                " VALUES (?, 0, ?, ?, ?, ?, 'running', ?)",
                (conversation_id, text, json.dumps(box) if box else None, frame_idx, choice, time.time()),
            )
            self._db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id)
            )
            self._db.commit()
            return int(cur.lastrowid)

    def finish_message(self, message_id: int, *, status: str, turn: int, **fields: Any) -> None:
        """Record how a message ended: ``answer``, ``clarification``, ``evidence``, ``tracks`` (JSON-able)."""
        values = {k: (v if k == "answer" else json.dumps(v)) for k, v in fields.items() if v is not None}
        sets = ", ".join(["status = ?", "turn = ?"] + [f"{k} = ?" for k in values])
        self._q(f"UPDATE messages SET {sets} WHERE id = ?", (status, turn, *values.values(), message_id))

    def get_message(self, conversation_id: str, message_id: int) -> dict[str, Any]:
        rows = self._q(
            "SELECT * FROM messages WHERE conversation_id = ? AND id = ?", (conversation_id, int(message_id))
        )
        if not rows:
            raise NotFoundError(f"message {message_id} not found in conversation {conversation_id}")
        return _message_dict(rows[0])

    def list_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self._q("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [_message_dict(r) for r in rows]


def _own(lock_path: Path):
    """Hold an exclusive ``flock`` on ``lock_path`` for the life of the returned file (the OS drops it when the
    process dies, even by SIGKILL); :class:`DataDirBusyError` when a live process holds it."""
    fh = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's life, closed in Store.close
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise DataDirBusyError(
            f"the data directory {lock_path.parent} is served by {holder}: one process per data_dir "
            "(stop it, or give this one another ARTEMIS_DATA_DIR)"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    return fh


def _message_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("box", "clarification", "evidence", "tracks"):
        out[key] = json.loads(out[key]) if out[key] else None
    return out
