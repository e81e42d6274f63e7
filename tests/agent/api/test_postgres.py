"""The store on both backends, and replicas sharing one state in a real PostgreSQL (a throwaway cluster).

A conversation started on replica A goes on on replica B (history and the agent's memory); ``kill -9`` of a
replica mid-turn: the other shows that turn ``interrupted`` once its lease expired and the history intact.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agent.api import Settings
from agent.api.errors import ConflictError, NotFoundError
from agent.api.storage import INTERRUPTED_ANSWER, BaseStore, Store, VideoRecord, new_id
from tests.agent.api.conftest import parse_sse
from tests.agent.api.live import REPO, process_server, thread_server
from tools.describers import HeuristicDescriber

PG_BIN = Path(os.environ.get("ARTEMIS_TEST_PG_BIN", "/usr/local/bin"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[str, int]]:
    """``(socket_dir, port)`` of a throwaway PostgreSQL 15 cluster (trust auth, user ``test``, unix socket
    only, fsync off), stopped and removed at the end of the session."""
    from agent.api.storage.postgres import local_cluster

    if not (PG_BIN / "initdb").exists():
        pytest.skip(
            f"PostgreSQL is not installed ({PG_BIN / 'initdb'} is absent): apt-get install postgresql"
        )
    with local_cluster(PG_BIN, user="test") as server:
        yield server


@pytest.fixture
def pg_url(postgres_server) -> Iterator[str]:
    """A fresh database in the session's cluster, dropped after the test."""
    import psycopg

    host, port = postgres_server
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://test@/postgres?host={host}&port={port}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://test@/{name}?host={host}&port={port}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_store(request, backend, tmp_path) -> Iterator[Callable[..., BaseStore]]:
    """``make_store(**kwargs)`` -> an opened store of ``backend`` on ``tmp_path / 'data'`` (``kwargs``:
    PostgresStore's, ignored by SQLite)."""
    opened: list[BaseStore] = []
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None

    def factory(**kwargs) -> BaseStore:
        if url is None:
            store = Store(tmp_path / "data")
        else:
            from agent.api.storage.postgres import PostgresStore

            store = PostgresStore(tmp_path / "data", url, **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()  # idempotent


def _video(owner: str = "local", created_at: float = 1.0) -> VideoRecord:
    return VideoRecord(
        id=new_id(),
        filename="clip.mp4",
        size_bytes=10,
        num_frames=16,
        fps=8.0,
        width=160,
        height=120,
        content_hash="ab" * 32,
        created_at=created_at,
        owner=owner,
    )


# ---- the store, on both backends ----------------------------------------------------------------------------
def test_store_keeps_videos_conversations_and_users(make_store):
    store = make_store()
    mine, theirs = _video("alice", 1.0), _video("bob", 2.0)
    store.add_video(mine)
    store.add_video(theirs)
    assert store.get_video(mine.id, "alice") == mine
    with pytest.raises(NotFoundError, match=mine.id):
        store.get_video(mine.id, "bob")
    assert [v.id for v in store.list_videos()] == [theirs.id, mine.id]
    assert [v.id for v in store.list_videos("alice")] == [mine.id]

    conv = store.add_conversation(mine.id, "first", owner="alice")
    store.add_conversation(theirs.id, "second", owner="bob")
    assert store.get_conversation(conv.id, "alice") == conv
    assert [c.id for c in store.list_conversations(mine.id)] == [conv.id]
    assert [c.title for c in store.list_conversations(owner="bob")] == ["second"]

    user = store.add_user("carol", "key-1")
    with pytest.raises(ConflictError, match="'carol' exists already"):
        store.add_user("carol", "key-2")
    assert store.user_by_key("key-1") == user and store.user_by_key("key-2") is None
    assert [u.name for u in store.list_users()] == ["carol"]
    assert store.delete_user("carol") == user
    with pytest.raises(NotFoundError, match="carol"):
        store.delete_user("carol")

    assert store.delete_video(theirs.id, "bob") == theirs
    assert [v.id for v in store.list_videos()] == [mine.id]


def test_store_keeps_messages_as_json(make_store):
    store = make_store()
    video = _video()
    store.add_video(video)
    conv = store.add_conversation(video.id, "t")
    first = store.add_message(
        conv.id, text="what is it?", box=[1.0, 2.0, 30.0, 40.0], frame_idx=3, choice=None
    )
    second = store.add_message(conv.id, text="and then?", box=None, frame_idx=None, choice=2)
    assert second > first
    evidence = {"targets": [{"id": 1, "label": "red circle"}], "frames": []}
    store.finish_message(
        first,
        status="done",
        turn=1,
        answer="a red circle",
        evidence=evidence,
        tracks=[{"target_id": 1, "boxes": [[1, 2, 3, 4], None]}],
    )
    with pytest.raises(ValueError, match="'finished'"):
        store.finish_message(second, status="finished", turn=2)
    got = store.get_message(conv.id, first)
    assert got["box"] == [1.0, 2.0, 30.0, 40.0] and got["frame_idx"] == 3
    assert got["evidence"] == evidence and got["tracks"][0]["boxes"] == [[1, 2, 3, 4], None]
    assert (got["status"], got["turn"], got["answer"]) == ("done", 1, "a red circle")
    msgs = store.list_messages(conv.id)
    assert [(m["id"], m["status"], m["choice"]) for m in msgs] == [
        (first, "done", None),
        (second, "running", 2),
    ]
    assert "replica" not in msgs[0] and "lease_until" not in msgs[0]
    store.delete_conversation(conv.id)
    assert store.list_messages(conv.id) == []
    with pytest.raises(NotFoundError):
        store.get_message(conv.id, first)


def test_a_turn_left_running_by_a_dead_store_is_interrupted_at_the_next_start(make_store, backend):
    """SQLite: at the next start (the process owns the data_dir). PostgreSQL: once the dead replica's lease
    expired, at the start of any replica."""
    dead = make_store(lease_s=0.3)
    video = _video()
    dead.add_video(video)
    conv = dead.add_conversation(video.id, "t")
    done = dead.add_message(conv.id, text="what is it?", box=None, frame_idx=None, choice=None)
    dead.finish_message(done, status="done", turn=1, answer="a red circle")
    cut = dead.add_message(conv.id, text="and then?", box=None, frame_idx=None, choice=None)
    dead.close()  # its heartbeat stops; nothing marks the turn: as after SIGKILL
    if backend == "postgres":
        time.sleep(0.5)
    store = make_store()
    assert store.interrupted == 1
    msgs = store.list_messages(conv.id)
    assert [(m["id"], m["status"]) for m in msgs] == [(done, "done"), (cut, "interrupted")]
    assert msgs[0]["answer"] == "a red circle" and msgs[1]["answer"] == INTERRUPTED_ANSWER


# ---- leases (PostgreSQL replicas) ---------------------------------------------------------------------------
def test_replicas_share_a_data_dir_and_a_live_replica_keeps_its_turn_running(pg_url, tmp_path):
    from agent.api.storage.postgres import PostgresStore

    a = PostgresStore(tmp_path / "data", pg_url, replica_id="a", lease_s=0.6)
    b = PostgresStore(tmp_path / "data", pg_url, replica_id="b", lease_s=0.6)  # no DataDirBusyError
    try:
        video = _video()
        a.add_video(video)
        assert b.get_video(video.id) == video
        conv = a.add_conversation(video.id, "t")
        msg = a.add_message(conv.id, text="what is it?", box=None, frame_idx=None, choice=None)
        time.sleep(1.8)  # three leases: only the heartbeat keeps it alive
        assert b.get_message(conv.id, msg)["status"] == "running"
        a.finish_message(msg, status="done", turn=1, answer="a red circle")
        assert b.list_messages(conv.id)[0]["answer"] == "a red circle"

        other = a.add_message(conv.id, text="and then?", box=None, frame_idx=None, choice=None)
        a.close()  # replica a dies
        assert b.get_message(conv.id, other)["status"] == "running"  # its lease still runs
        time.sleep(0.9)
        got = b.get_message(conv.id, other)  # read after expiry: interrupted, by replica b
        assert (got["status"], got["answer"]) == ("interrupted", INTERRUPTED_ANSWER)
        assert b.list_messages(conv.id)[0]["status"] == "done"
    finally:
        a.close()  # idempotent
        b.close()


def test_turns_of_one_conversation_run_one_after_the_other_across_replicas(pg_url, tmp_path):
    from agent.api.storage.postgres import PostgresStore

    a = PostgresStore(tmp_path / "data", pg_url, replica_id="a")
    b = PostgresStore(tmp_path / "data", pg_url, replica_id="b")
    cid, other = new_id(), new_id()
    order: list[str] = []
    try:
        with a.turn_lock(cid):

            def on_b() -> None:
                with b.turn_lock(cid):
                    order.append("b")

            waiting = threading.Thread(target=on_b)
            waiting.start()
            with b.turn_lock(other):  # another conversation is not held up
                order.append("b-other")
            time.sleep(0.3)
            order.append("a")
        waiting.join(5)
        assert order == ["b-other", "a", "b"]

        # a replica killed (SIGKILL) while it holds the lock: its connection closes, the lock with it
        script = textwrap.dedent(
            f"""
            import os, signal
            from agent.api.storage.postgres import PostgresStore
            store = PostgresStore({str(tmp_path / "data")!r}, {pg_url!r}, replica_id="doomed")
            with store.turn_lock({cid!r}):
                os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        dead = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        assert dead.returncode == -signal.SIGKILL
        after_death = threading.Thread(target=on_b)
        after_death.start()
        after_death.join(10)
        assert not after_death.is_alive() and order == ["b-other", "a", "b", "b"]
    finally:
        a.close()
        b.close()


def test_database_url_must_be_postgresql(tmp_path):
    from agent.api.storage.postgres import PostgresStore

    with pytest.raises(ValueError, match="'mysql' is not postgresql"):
        PostgresStore(tmp_path / "data", "mysql://x@localhost/db")


# ---- real replicas ------------------------------------------------------------------------------------------
class GatedDescriber:
    """The heuristic describer; while the file ``gate`` exists, each call touches ``<gate>.entered`` and
    blocks (a turn stuck on a slow model, for killing its replica mid-turn)."""

    def __init__(self, gate: str | Path) -> None:
        self.gate = Path(gate)
        self.inner = HeuristicDescriber()

    def __call__(self, video, box, *, frame_idx, question):
        if self.gate.exists():
            self.gate.with_suffix(".entered").touch()
            time.sleep(300)
        return self.inner(video, box, frame_idx=frame_idx, question=question)


REPLICA = textwrap.dedent(
    """
    import os
    import sys
    import uvicorn
    from agent.api import Settings, create_app
    from tests.agent.api.test_postgres import GatedDescriber

    app = create_app(Settings(), describer=GatedDescriber(os.environ["ARTEMIS_TEST_GATE"]))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


@contextmanager
def replica_process(env: dict[str, str], gate: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``(base_url, Popen)`` of a replica served by uvicorn in its own process (SIGKILLed at the end)."""
    extra = {"PYTHONPATH": str(REPO), "ARTEMIS_TEST_GATE": str(gate)}
    with process_server({**env, **extra}, script=REPLICA) as served:
        yield served


def _ask(http: httpx.Client, cid: str, **body) -> dict:
    with http.stream("POST", f"/conversations/{cid}/messages", json=body, timeout=60) as r:
        assert r.status_code == 200, r.read()
        return dict(parse_sse(r.iter_lines()))


def _settled(http: httpx.Client, cid: str) -> dict:
    """The conversation's messages once no turn is ``running`` (a stream's ``done`` event comes just before
    the turn's row is updated)."""
    out: dict = {}

    def settled() -> bool:
        out.update(http.get(f"/conversations/{cid}/messages").json())
        return all(m["status"] != "running" for m in out["messages"])

    _wait_for(settled, 10, "the finished turn's row")
    return out


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    start = time.time()
    while not predicate():
        if time.time() - start > timeout_s:
            raise TimeoutError(f"{what} not seen after {timeout_s} s")
        time.sleep(0.1)
    return time.time() - start


def test_two_replicas_share_conversations_and_a_killed_replica_s_turn_is_interrupted(
    pg_url, tmp_path, red_circle
):
    clip, data = red_circle
    data_dir, gate, lease_s = tmp_path / "shared", tmp_path / "gate", 2.0
    env = {
        "ARTEMIS_DATA_DIR": str(data_dir),
        "ARTEMIS_DATABASE_URL": pg_url,
        "ARTEMIS_GROUNDING_BACKEND": "offline",  # the synthetic world's clips: flat shapes
        "ARTEMIS_REPLICA_ID": "replica-a",
        "ARTEMIS_REPLICA_LEASE_S": str(lease_s),
    }
    settings_b = Settings(
        data_dir=data_dir,
        database_url=pg_url,
        grounding_backend="offline",
        describer="heuristic",
        replica_id="replica-b",
        replica_lease_s=lease_s,
    )
    with replica_process(env, gate) as (base_a, proc_a), thread_server(settings_b) as base_b:
        a, b = httpx.Client(base_url=base_a, timeout=30), httpx.Client(base_url=base_b, timeout=30)
        vid = a.post("/videos", files={"file": ("red.mp4", data, "video/mp4")}).json()["id"]
        cid = a.post("/conversations", json={"video_id": vid}).json()["id"]
        first = _ask(a, cid, text="What is the boxed object doing?", box=list(clip.truth_box(0, 0)))
        assert "red circle" in first["answer"]["text"]

        # replica B: the same conversation, video and frames; the agent's memory of the target
        assert (
            b.get(f"/conversations/{cid}/messages").json() == a.get(f"/conversations/{cid}/messages").json()
        )
        assert b.get(f"/videos/{vid}/frames/3").content == a.get(f"/videos/{vid}/frames/3").content
        follow = _ask(b, cid, text="And what does it do?")
        assert follow["plan"]["plan"]["target_source"] == "previous", "B recalled A's target"
        assert "red circle" in follow["answer"]["text"] and follow["done"]["turn"] == 2
        history = _settled(b, cid)["messages"]
        assert a.get(f"/conversations/{cid}/messages").json()["messages"] == history
        assert [m["status"] for m in history] == ["done", "done"]

        # replica A is killed (SIGKILL) while its turn runs
        gate.touch()

        def cut_off_turn() -> None:
            try:
                _ask(httpx.Client(base_url=base_a, timeout=60), cid, text="Where does it go?")
            except (httpx.TransportError, AssertionError):
                pass  # the server died under it

        asking = threading.Thread(target=cut_off_turn, daemon=True)
        asking.start()
        _wait_for(gate.with_suffix(".entered").exists, 30, "the turn on replica A")
        assert b.get(f"/conversations/{cid}/messages").json()["messages"][-1]["status"] == "running"
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait(10)
        asking.join(10)

        def last_status() -> str:
            return b.get(f"/conversations/{cid}/messages").json()["messages"][-1]["status"]

        waited = _wait_for(lambda: last_status() == "interrupted", 4 * lease_s, "the interrupted turn")
        logging.getLogger(__name__).info("replica A's turn shown interrupted %.1f s after its death", waited)
        msgs = b.get(f"/conversations/{cid}/messages").json()["messages"]
        assert msgs[:2] == history, "the history before the cut-off turn is intact"
        assert msgs[2]["text"] == "Where does it go?" and msgs[2]["answer"] == INTERRUPTED_ANSWER

        # the conversation goes on on B (after a checkpoint written mid-turn by the dead replica)
        again = _ask(b, cid, text="Where does it go?")
        assert again["done"]["status"] == "done" and "red circle" in again["answer"]["text"]
        statuses = [
            "done",
            "done",
            "interrupted",
            "done",
        ]  # (the stream's `done` event precedes the row's update)
        _wait_for(
            lambda: (
                [m["status"] for m in b.get(f"/conversations/{cid}/messages").json()["messages"]] == statuses
            ),
            10,
            f"statuses {statuses}",
        )


# ---- the disk quota across replicas -------------------------------------------------------------------------
def _quota_rows(url: str) -> list[dict]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT id, replica, why, bytes FROM quota_reservations").fetchall()


@pytest.mark.parametrize("shared", [True, False], ids=["in-the-database", "per-process"])
def test_concurrent_reservations_of_two_replicas_take_from_one_room(pg_url, tmp_path, shared):
    """Four writers on each of two replicas ask at once for a room that holds two: exactly two get it, the
    others the single-process 507. ``per-process`` (each replica's reservations in its own memory: the book
    SQLite's store gives, and every store's before) shows what the shared table prevents: each replica hands
    out the whole room, four grants in all."""
    from agent.api.errors import QuotaExceededError
    from agent.api.quota import DiskQuota
    from agent.api.storage.postgres import PostgresStore

    size = 3 << 20  # above the 1 MiB step: each writer asks for exactly this
    limit = 2 * size + 1000
    stores = [PostgresStore(tmp_path / "data", pg_url, replica_id=name) for name in ("a", "b")]
    quotas = [
        DiskQuota(limit, lambda s=s: s.used_bytes(partial=False), s.quota_reservations() if shared else None)
        for s in stores
    ]
    writers = [quota for quota in quotas for _ in range(4)]
    start, held = threading.Barrier(len(writers)), threading.Barrier(len(writers))
    granted: list[int] = []
    refused: list[QuotaExceededError] = []

    def write(quota: DiskQuota) -> None:
        with quota.reservation("the upload") as reservation:
            start.wait(10)
            try:
                reservation.ensure(size)
                granted.append(reservation.granted)
            except QuotaExceededError as exc:
                refused.append(exc)
            held.wait(10)  # every grant is held until every writer was answered

    try:
        threads = [threading.Thread(target=write, args=(q,)) for q in writers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        if not shared:
            assert len(granted) == 4, "per-process reservations: each replica grants the whole room"
            return
        assert granted == [size, size] and len(refused) == 6, (granted, refused)
        for exc in refused:
            assert (exc.status, exc.code) == (507, "disk_quota_exceeded")
            assert str(exc).startswith(f"the disk quota is full: the upload needs {size} more bytes but ")
            assert str(exc).endswith(f" of {limit} are left; delete videos first")
        assert quotas[0].reserved == 0 and _quota_rows(pg_url) == [], "every reservation was released"
        # the message of one process alone, for comparison: the same words
        alone = DiskQuota(limit, lambda: 0)
        alone.reservation("first").ensure(2 * size)
        with pytest.raises(
            QuotaExceededError, match=f"the upload needs {size} more bytes but 1000 of {limit}"
        ):
            alone.reservation("the upload").ensure(size)
    finally:
        for store in stores:
            store.close()


def test_a_killed_replica_s_reservation_expires_and_a_live_one_s_is_renewed(pg_url, tmp_path):
    """A replica killed (SIGKILL) while it holds 6 MiB of a 10 MiB room: that room comes back once its lease
    ran out, while the live replica's 4 MiB outlive its own shorter lease (its heartbeat renews them)."""
    from agent.api.errors import QuotaExceededError
    from agent.api.quota import DiskQuota
    from agent.api.storage.postgres import PostgresStore

    mib, dead_lease_s = 1 << 20, 1.5
    script = textwrap.dedent(
        f"""
        import os, signal
        from agent.api.quota import DiskQuota
        from agent.api.storage.postgres import PostgresStore
        store = PostgresStore({str(tmp_path / "data")!r}, {pg_url!r}, replica_id="doomed", lease_s={dead_lease_s})
        DiskQuota({10 * mib}, lambda: 0, store.quota_reservations()).reservation("its upload").ensure({6 * mib})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    dead = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert dead.returncode == -signal.SIGKILL
    live_lease_s = 0.3
    live = PostgresStore(tmp_path / "data", pg_url, replica_id="live", lease_s=live_lease_s)
    try:
        quota = DiskQuota(10 * mib, lambda: 0, live.quota_reservations())
        mine = quota.reservation("a live upload")
        mine.ensure(4 * mib)  # 6 + 4: the room is full
        held_since = time.time()
        assert quota.reserved == 10 * mib
        assert sorted((r["replica"], r["why"], r["bytes"]) for r in _quota_rows(pg_url)) == [
            ("doomed", "its upload", 6 * mib),
            ("live", "a live upload", 4 * mib),
        ]
        with pytest.raises(QuotaExceededError, match="needs 1 more bytes but 0 of 10485760 are left"):
            quota.reservation("one byte").ensure(1)

        def room_came_back() -> bool:
            try:
                quota.reservation("another upload").ensure(6 * mib)  # held, not released
            except QuotaExceededError:
                return False
            return True

        waited = _wait_for(room_came_back, 4 * dead_lease_s, "the dead replica's room")
        assert waited <= dead_lease_s + 0.5, f"the dead replica's 6 MiB came back after {waited:.1f} s"
        # the live replica's 4 MiB outlived its lease: its heartbeat renewed it
        assert time.time() - held_since > 2 * live_lease_s
        assert quota.reserved == 10 * mib
        assert {r["replica"] for r in _quota_rows(pg_url)} == {"live"}
        mine.release()
        assert quota.reserved == 6 * mib
    finally:
        live.close()


def test_two_live_replicas_uploading_at_once_stay_within_the_quota(pg_url, tmp_path, red_circle):
    """Three slow uploads on each of two replicas (a uvicorn process and a thread) against room for two
    videos: the files under the shared data_dir never exceed the quota, at most two uploads are stored in
    all, the others are refused (507) and leave no file."""
    from tests.agent.api.test_quota import _slow_multipart

    data = red_circle[1]
    quota = int(len(data) * 2.5)  # room for two
    data_dir = tmp_path / "shared"
    env = {
        "PYTHONPATH": str(REPO),
        "ARTEMIS_DATA_DIR": str(data_dir),
        "ARTEMIS_DATABASE_URL": pg_url,
        "ARTEMIS_DISK_QUOTA_BYTES": str(quota),
        "ARTEMIS_DESCRIBER": "heuristic",
        "ARTEMIS_GROUNDING_BACKEND": "offline",
        "ARTEMIS_REPLICA_ID": "replica-a",
    }
    settings_b = Settings(
        data_dir=data_dir,
        database_url=pg_url,
        disk_quota_bytes=quota,
        describer="heuristic",
        grounding_backend="offline",
        replica_id="replica-b",
    )

    def on_disk() -> int:
        return sum(
            f.stat().st_size
            for d in (data_dir / "videos", data_dir / "uploads")
            for f in d.rglob("*")
            if f.is_file()
        )

    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], on_disk())
            except FileNotFoundError:
                continue  # a file renamed or removed while walked
            time.sleep(0.005)

    with process_server(env) as (base_a, _proc), thread_server(settings_b) as base_b:
        bases = [base_a] * 3 + [base_b] * 3
        barrier = threading.Barrier(len(bases))
        answers: list[httpx.Response] = []

        def one(base: str) -> None:
            barrier.wait(10)
            boundary = "artemis-test-boundary"
            answers.append(
                httpx.post(
                    f"{base}/videos",
                    content=_slow_multipart(data, boundary, 0.5),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                    timeout=30,
                )
            )

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        threads = [threading.Thread(target=one, args=(base,)) for base in bases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stop.set()
        watcher.join(5)
        listed = [httpx.get(f"{base}/videos").json() for base in (base_a, base_b)]
    statuses = sorted(r.status_code for r in answers)
    stored = [r for r in answers if r.status_code == 201]
    assert len(answers) == 6 and 1 <= len(stored) <= 2, statuses
    assert statuses == [201] * len(stored) + [507] * (6 - len(stored)), statuses
    assert all(r.json()["code"] == "disk_quota_exceeded" for r in answers if r.status_code == 507)
    assert peak[0] <= quota, f"{peak[0]} bytes on disk at the peak, quota {quota}"
    assert listed[0] == listed[1] and len(listed[0]["videos"]) == len(stored)
    assert listed[0]["used_bytes"] == len(stored) * len(data) <= quota
    assert not list((data_dir / "uploads").iterdir()), "refused uploads leave nothing"
    assert {p.name for p in (data_dir / "videos").iterdir()} == {r.json()["id"] for r in stored}
    assert _quota_rows(pg_url) == [], "every reservation was released"
