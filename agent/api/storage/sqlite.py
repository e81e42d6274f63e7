"""The embedded default: metadata in ``data_dir/metadata.sqlite`` (stdlib sqlite3), one process per data_dir."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from agent.api.storage.common import LOCAL_USER, BaseStore, DataDirBusyError, Rows, Run

logger = logging.getLogger(__name__)

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
    created_at REAL NOT NULL, replica TEXT, lease_until REAL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
"""
_ADDED_COLUMNS = {
    "videos": {"owner": f"TEXT NOT NULL DEFAULT '{LOCAL_USER}'"},
    "conversations": {"owner": f"TEXT NOT NULL DEFAULT '{LOCAL_USER}'"},
    "messages": {"replica": "TEXT", "lease_until": "REAL"},
}
"""Columns newer than the first data dirs: added when missing (old rows: the local user, no lease)."""


class Store(BaseStore):
    """Metadata in SQLite plus the file layout. Thread-safe (one connection behind a lock); the process holds
    ``data_dir/service.lock`` while it lives, so a turn left ``running`` at start was cut off by a dead one."""

    integrity_errors = (sqlite3.IntegrityError,)
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._owner = _own(self.data_dir / "service.lock")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.data_dir / "metadata.sqlite"), check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            for table, added in _ADDED_COLUMNS.items():
                columns = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
                for name, decl in added.items():
                    if name not in columns:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
            self._db.commit()
        self._start()

    @contextmanager
    def _transaction(self) -> Iterator[Run]:
        def run(sql: str, args: tuple) -> Rows:
            cur = self._db.execute(sql, args)
            return Rows([dict(r) for r in cur.fetchall()], cur.rowcount)

        with self._lock:
            try:
                yield run
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    def close(self) -> None:
        """Close the database and release the data_dir (again: nothing)."""
        with self._lock:
            self._db.close()
        self._owner.close()  # releases the flock


def _own(lock_path: Path) -> IO[str]:
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
            "(stop it, or give this one another ARTEMIS_DATA_DIR; several replicas need ARTEMIS_DATABASE_URL)"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}")
    fh.flush()
    return fh
