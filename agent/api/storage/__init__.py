"""Where the service keeps things: the metadata DB and the files under ``data_dir``.

Every path is built here from server-generated ids (uuid4 hex, checked by :func:`check_id`) and integers;
no path ever comes from a client. Metadata lives in SQLite by default (:class:`Store`, one process per
data_dir) or in PostgreSQL (:class:`PostgresStore`, ``ARTEMIS_DATABASE_URL``: several replicas share the
database and a ``data_dir`` on a shared filesystem). Layout::

    data_dir/service.lock               held (flock) by the one process that serves this data_dir (SQLite)
    data_dir/metadata.sqlite            videos, conversations, messages (SQLite)
    data_dir/checkpoints.sqlite         LangGraph checkpoints, one thread per conversation (SQLite)
    data_dir/uploads/<id>.part          an upload being received
    data_dir/videos/<id>/video          the uploaded file
    data_dir/videos/<id>/frames/<n>.jpg frames served so far
    data_dir/videos/<id>/evidence/<conversation>/<message>/frame_<n>.jpg
    data_dir/features/<content_hash>/   the model's feature cache (when a model is loaded)
"""

from __future__ import annotations

from agent.api.storage.common import (
    ID_PATTERN,
    INTERRUPTED_ANSWER,
    LOCAL_USER,
    MESSAGE_STATUSES,
    USER_NAME_PATTERN,
    BaseStore,
    ConversationRecord,
    DataDirBusyError,
    UserRecord,
    VideoRecord,
    check_id,
    display_name,
    inside,
    key_digest,
    new_id,
)
from agent.api.storage.sqlite import Store

__all__ = [
    "ID_PATTERN",
    "INTERRUPTED_ANSWER",
    "LOCAL_USER",
    "MESSAGE_STATUSES",
    "USER_NAME_PATTERN",
    "BaseStore",
    "ConversationRecord",
    "DataDirBusyError",
    "Store",
    "UserRecord",
    "VideoRecord",
    "check_id",
    "display_name",
    "inside",
    "key_digest",
    "new_id",
]
