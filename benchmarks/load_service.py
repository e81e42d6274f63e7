"""Load test of the Artemis service: N concurrent clients x M conversation turns each.

Against a running service (one URL, or several replicas: clients are spread round-robin)::

    artemis serve --port 8000 &                                  # or: uvicorn agent.api.app:app_from_env --factory
    .venv/bin/python benchmarks/load_service.py --url http://127.0.0.1:8000 --clients 50 --turns 5

Or set everything up on this machine and compare (``--topology two-replicas``, the default when no ``--url``)::

    .venv/bin/python benchmarks/load_service.py                  # = --topology two-replicas --clients 50 --turns 5

starts a throwaway PostgreSQL, Ray Serve with two model workers (the embedded world model, requests batched
across conversations), and two API replicas (uvicorn processes sharing PostgreSQL and one data directory, each
describing on the workers, ``--turn-threads`` turns at once); runs the load against both replicas; then, in the
same run, the single-process figure: one replica, the local describer, SQLite. For each it prints p50/p95/p99,
errors by kind, turns lost (every turn a client saw answered must be in the store with that answer), throughput,
and for the workers the requests each served and the batch sizes they ran in.

Each client opens its own conversation about one shared video (a generated clip unless ``--video``) and
asks ``--turns`` questions in a row (a boxed question, then follow-ups), reading each SSE stream to its
``done`` event. Reports errors (by kind), turn latency and throughput, and the Retry-After the service advised
on each 503 (``--retries N``: wait that long and ask again, up to N times). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    {"text": "What is the boxed object doing?", "box": None},
    {"text": "Where does it go?"},
    {"text": "What are all the objects doing?"},
    {"text": "What does it do at the end?"},
    {"text": "Summarize what happens in the whole video."},
]
PG_BIN = Path(os.environ.get("ARTEMIS_PG_BIN", "/usr/local/bin"))


def _clip(path: Path) -> tuple[Path, list[float]]:
    from synth import generate_clip, write_mp4

    clip = generate_clip(0, num_objects=3, width=160, height=120, num_frames=24)
    box = next(b for b in clip.objects[0].boxes if b is not None)
    return write_mp4(clip, path), [float(v) for v in box]


@dataclass
class TurnOutcome:
    kind: str
    """'ok' or the error's kind."""
    seconds: float
    message_id: int | None = None
    answer: str | None = None


@dataclass
class ClientLog:
    base: str
    conversation: str | None = None
    turns: list[TurnOutcome] = field(default_factory=list)


async def _turn(
    http: httpx.AsyncClient,
    conversation: str,
    body: dict,
    retries: int = 0,
    advised: list[float] | None = None,
) -> TurnOutcome:
    """A turn in ``conversation`` (its URL): its outcome ('ok' | error kind, seconds to the done event, its message id and answer); a 503 is
    retried after its Retry-After (``retries`` times at most), each advised wait appended to ``advised``."""
    t0 = time.perf_counter()
    try:
        for attempt in range(retries + 1):
            async with http.stream("POST", f"{conversation}/messages", json=body) as r:
                if r.status_code != 200:
                    await r.aread()
                    wait = r.headers.get("retry-after")
                    if r.status_code == 503 and wait is not None:
                        if advised is not None:
                            advised.append(float(wait))
                        if attempt < retries:
                            await asyncio.sleep(float(wait))
                            continue
                    return TurnOutcome(f"http_{r.status_code}", time.perf_counter() - t0)
                status, event, message_id, answer = "no_done_event", "", None, None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:])
                        if event == "done":
                            status = data["status"]
                        elif event == "message":
                            message_id = data["message_id"]
                        elif event == "answer":
                            answer = data["text"]
                kind = "ok" if status in ("done", "clarification") else f"run_{status}"
                return TurnOutcome(kind, time.perf_counter() - t0, message_id, answer)
        return TurnOutcome("no_attempt", time.perf_counter() - t0)
    except httpx.HTTPError as exc:
        return TurnOutcome(f"transport_{type(exc).__name__}", time.perf_counter() - t0)


async def _client(
    http: httpx.AsyncClient,
    log: ClientLog,
    video_id: str,
    box: list[float],
    turns: int,
    retries: int = 0,
    advised: list[float] | None = None,
) -> None:
    r = await http.post(f"{log.base}/conversations", json={"video_id": video_id, "title": "load"})
    if r.status_code != 201:
        log.turns.extend([TurnOutcome(f"create_{r.status_code}", 0.0)] * turns)
        return
    log.conversation = r.json()["id"]
    for k in range(turns):
        body = dict(QUESTIONS[k % len(QUESTIONS)])
        if "box" in body:
            body.update(box=box, frame_idx=0)
        log.turns.append(
            await _turn(http, f"{log.base}/conversations/{log.conversation}", body, retries, advised)
        )


async def _lost_turns(http: httpx.AsyncClient, logs: list[ClientLog], bases: list[str]) -> dict[str, int]:
    """Compare what each client got with what the store holds, read on ANOTHER replica than the client's
    (when there are several): every answered turn's message is there, finished, with the same answer."""
    counts: Counter[str] = Counter()
    for log in logs:
        if log.conversation is None:
            continue
        base = bases[(bases.index(log.base) + 1) % len(bases)]
        r = await http.get(f"{base}/conversations/{log.conversation}/messages")
        if r.status_code != 200:
            counts["conversation_unreadable"] += 1
            continue
        stored = {m["id"]: m for m in r.json()["messages"]}
        for turn in log.turns:
            if turn.kind != "ok":
                continue
            message = stored.get(turn.message_id)
            if message is None:
                counts["message_missing"] += 1
            elif message["status"] not in ("done", "clarification"):
                counts[f"message_{message['status']}"] += 1
            elif turn.answer is not None and message["answer"] != turn.answer:
                counts["answer_differs"] += 1
            else:
                counts["kept"] += 1
    return dict(counts)


def _quantiles(ok: list[float]) -> dict[str, float]:
    q = (
        statistics.quantiles(ok, n=100, method="inclusive")
        if len(ok) >= 2
        else ok * 99 or [float("nan")] * 99
    )
    return {"p50": q[49], "p90": q[89], "p95": q[94], "p99": q[98], "max": max(ok, default=float("nan"))}


async def run(
    urls: list[str] | str,
    clients: int,
    turns: int,
    video: Path | None,
    api_key: str | None,
    timeout: float,
    retries: int = 0,
) -> dict:
    """The load against ``urls`` (clients spread round-robin over them); the report as a dict."""
    bases = [urls] if isinstance(urls, str) else list(urls)
    headers = {"X-API-Key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as http:
        ready = (await http.get(f"{bases[0]}/readyz")).json()
        with tempfile.TemporaryDirectory() as tmp:
            path, box = (video, [10.0, 10.0, 60.0, 60.0]) if video else _clip(Path(tmp) / "load.mp4")
            r = await http.post(
                f"{bases[0]}/videos", files={"file": (path.name, path.read_bytes(), "video/mp4")}
            )
            r.raise_for_status()
        video_id = r.json()["id"]
        logs = [ClientLog(base=bases[i % len(bases)]) for i in range(clients)]
        advised: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*[_client(http, log, video_id, box, turns, retries, advised) for log in logs])
        wall = time.perf_counter() - t0
        lost = await _lost_turns(http, logs, bases)
        workers = [((await http.get(f"{b}/readyz")).json().get("worker")) or {} for b in bases]
        await http.delete(f"{bases[0]}/videos/{video_id}")
    results = [t for log in logs for t in log.turns]
    ok = sorted(t.seconds for t in results if t.kind == "ok")
    by_worker: Counter[str] = Counter()
    batches: Counter[int] = Counter()
    for w in workers:
        remote = w.get("model_workers") or {}
        by_worker.update(remote.get("by_worker", {}))
        batches.update({int(k): v for k, v in remote.get("batch_requests", {}).items()})
    return {
        "urls": bases,
        "model": ready.get("model"),
        "clients": clients,
        "turns_per_client": turns,
        "requests": len(results),
        "ok": len(ok),
        "errors": dict(Counter(t.kind for t in results if t.kind != "ok")),
        "turns_lost": sum(v for k, v in lost.items() if k != "kept"),
        "store_check": lost,
        "latency_s": _quantiles(ok),
        "throughput_turns_per_s": len(ok) / wall if wall > 0 else 0.0,
        "wall_s": wall,
        "busy_503": len(advised),
        "retry_after_s": {
            "min": min(advised, default=float("nan")),
            "median": statistics.median(advised) if advised else float("nan"),
            "max": max(advised, default=float("nan")),
        },
        "measured_mean_turn_s": [(w.get("mean_job_s") or {}).get("turn") for w in workers],
        "worker_requests": dict(sorted(by_worker.items())),
        "batch_size_histogram": dict(sorted(batches.items())),
    }


# ---- setting up the topology on this machine ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL (``PG_BIN``'s; :func:`agent.api.storage.postgres.local_cluster`); its URL."""
    from agent.api.storage.postgres import local_cluster

    if not (PG_BIN / "initdb").exists():
        raise SystemExit(
            f"PostgreSQL is not installed ({PG_BIN / 'initdb'} is absent): apt-get install postgresql"
        )
    with local_cluster(PG_BIN, user="bench") as (socket_dir, port):
        yield f"postgresql://bench@/postgres?host={socket_dir}&port={port}"


@contextmanager
def model_workers(data_dir: Path, replicas: int, max_batch_size: int, batch_wait_s: float) -> Iterator[str]:
    """Ray (a local cluster of this machine's CPUs) + Serve: ``replicas`` workers of the embedded world model
    reading ``data_dir``; their URL. Shut down on exit."""
    from tools.model_workers import WorkerConfig
    from tools.model_workers.serve import ServeOptions, deploy, shutdown

    options = ServeOptions(
        replicas=replicas,
        num_cpus=min(1.0, (os.cpu_count() or 2) / (replicas + 1)),
        max_batch_size=max_batch_size,
        batch_wait_timeout_s=batch_wait_s,
        max_queued_requests=256,
    )
    try:
        yield deploy(
            WorkerConfig(data_root=data_dir, describer="world"),
            options,
            port=_free_port(),
            num_cpus=os.cpu_count(),
            log_to_driver=False,
        )
    finally:
        shutdown()


@contextmanager
def api_replica(env: dict[str, str]) -> Iterator[str]:
    """The service (uvicorn, the app factory) in a subprocess with ``env``; its URL once ready. Killed on exit."""
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "agent.api.app:app_from_env", "--factory", "--host", "127.0.0.1"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"the replica exited with {proc.returncode}: {log.read().decode()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"{base} not ready after 180 s")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def _service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "ARTEMIS_DATA_DIR": str(data_dir),
        "ARTEMIS_GROUNDING_BACKEND": "offline",  # the generated clip: the synthetic world's flat shapes
        "ARTEMIS_QUEUE_SIZE": "256",
        "ARTEMIS_QUEUE_TIMEOUT_S": "600",
        "ARTEMIS_TURN_BUDGET_S": "600",
        **extra,
    }


def run_topology(args: argparse.Namespace) -> dict:
    """Two API replicas + two model workers + PostgreSQL, then one process (local describer, SQLite)."""
    load = (args.clients, args.turns, args.video, args.api_key, args.timeout, args.retries)
    with tempfile.TemporaryDirectory(prefix="artemis-load-") as tmp:
        root = Path(tmp)
        data_dir = root / "shared"
        data_dir.mkdir()
        with ExitStack() as stack:
            url = stack.enter_context(postgres())
            workers = stack.enter_context(
                model_workers(data_dir, args.workers, args.max_batch_size, args.batch_wait_s)
            )
            bases = [
                stack.enter_context(
                    api_replica(
                        _service_env(
                            data_dir,
                            ARTEMIS_DATABASE_URL=url,
                            ARTEMIS_MODEL_WORKERS=workers,
                            ARTEMIS_TURN_THREADS=str(args.turn_threads),
                            ARTEMIS_REPLICA_ID=f"replica-{k}",
                        )
                    )
                )
                for k in range(args.replicas)
            ]
            distributed = asyncio.run(run(bases, *load))
        single_dir = root / "single"
        with api_replica(_service_env(single_dir, ARTEMIS_DESCRIBER="world")) as base:
            single = asyncio.run(run([base], *load))
    return {
        "distributed": {
            **distributed,
            "topology": f"{args.replicas} API replicas (PostgreSQL, {args.turn_threads} turn threads each) + "
            f"{args.workers} model workers (Ray Serve, batches <= {args.max_batch_size})",
        },
        "single_process": {**single, "topology": "1 process: local describer, SQLite"},
    }


def _print(report: dict) -> None:
    lat, ra = report["latency_s"], report["retry_after_s"]
    print(
        f"{report.get('topology', ', '.join(report['urls']))} (model {report['model']}):\n"
        f"  {report['clients']} clients x {report['turns_per_client']} turns: {report['ok']}/{report['requests']} "
        f"ok, errors {report['errors'] or 'none'}, turns lost {report['turns_lost']} "
        f"(store check {report['store_check']})\n"
        f"  turn latency p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, p99 {lat['p99']:.2f} s, max "
        f"{lat['max']:.2f} s; throughput {report['throughput_turns_per_s']:.2f} turns/s; wall {report['wall_s']:.1f} s\n"
        f"  503 busy: {report['busy_503']}, Retry-After advised (s) min {ra['min']} median {ra['median']} max "
        f"{ra['max']}; measured mean turn {report['measured_mean_turn_s']} s"
    )
    if report["worker_requests"]:
        print(
            f"  model workers: requests {report['worker_requests']}; batch size (requests) -> requests "
            f"{report['batch_size_histogram']}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", default=None, help="A running replica (repeat for several)")
    p.add_argument(
        "--topology",
        choices=["two-replicas"],
        default=None,
        help="Set up replicas + workers + PostgreSQL here, then one process (default when no --url)",
    )
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--video", type=Path, default=None, help="Video file (default: a generated clip)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--timeout", type=float, default=600.0, help="Per-request timeout (s)")
    p.add_argument("--json", action="store_true", help="Print the report as JSON")
    p.add_argument(
        "--retries", type=int, default=0, help="Retry a 503 after its Retry-After, this many times"
    )
    p.add_argument("--replicas", type=int, default=2, help="API replicas of the topology")
    p.add_argument("--workers", type=int, default=2, help="Model workers of the topology")
    p.add_argument(
        "--turn-threads", type=int, default=4, help="Turns each replica of the topology runs at once"
    )
    p.add_argument("--max-batch-size", type=int, default=8, help="Requests a worker batches together")
    p.add_argument("--batch-wait-s", type=float, default=0.05, help="How long a worker's batch gathers")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ray").setLevel(logging.WARNING)
    if args.url:
        reports = {
            "service": asyncio.run(
                run(args.url, args.clients, args.turns, args.video, args.api_key, args.timeout, args.retries)
            )
        }
    else:
        reports = run_topology(args)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports.values():
            _print(report)
        if "distributed" in reports:
            d, s = reports["distributed"]["latency_s"], reports["single_process"]["latency_s"]
            print(
                f"p95 turn latency: distributed {d['p95']:.2f} s vs single process {s['p95']:.2f} s (same run)"
            )
    failed = any(r["errors"] or r["turns_lost"] for r in reports.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
