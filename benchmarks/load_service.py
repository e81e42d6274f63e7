"""Load test for a running Artemis service: N concurrent clients x M conversation turns each.

    artemis serve --port 8000 &                                  # or: uvicorn agent.api.app:app_from_env --factory
    .venv/bin/python benchmarks/load_service.py --url http://127.0.0.1:8000 --clients 50 --turns 5

Each client opens its own conversation about one shared video (a generated clip unless ``--video``) and
asks ``--turns`` questions in a row (a boxed question, then follow-ups), reading each SSE stream to its
``done`` event. Reports errors (by kind), turn latency p50/p90/p99 and throughput, and the Retry-After
the service advised on each 503 (``--retries N``: wait that long and ask again, up to N times). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

QUESTIONS = [
    {"text": "What is the boxed object doing?", "box": None},
    {"text": "Where does it go?"},
    {"text": "What are all the objects doing?"},
    {"text": "What does it do at the end?"},
    {"text": "Summarize what happens in the whole video."},
]


def _clip(path: Path) -> tuple[Path, list[float]]:
    from synth import generate_clip, write_mp4

    clip = generate_clip(0, num_objects=3, width=160, height=120, num_frames=24)
    box = next(b for b in clip.objects[0].boxes if b is not None)
    return write_mp4(clip, path), [float(v) for v in box]


async def _turn(
    http: httpx.AsyncClient, cid: str, body: dict, retries: int = 0, advised: list[float] | None = None
) -> tuple[str, float]:
    """('ok' | error kind, seconds to the done event); a 503 is retried after its Retry-After (``retries``
    times at most), each advised wait appended to ``advised``."""
    t0 = time.perf_counter()
    try:
        for attempt in range(retries + 1):
            async with http.stream("POST", f"/conversations/{cid}/messages", json=body) as r:
                if r.status_code != 200:
                    await r.aread()
                    wait = r.headers.get("retry-after")
                    if r.status_code == 503 and wait is not None:
                        if advised is not None:
                            advised.append(float(wait))
                        if attempt < retries:
                            await asyncio.sleep(float(wait))
                            continue
                    return f"http_{r.status_code}", time.perf_counter() - t0
                status = "no_done_event"
                event = ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "done":
                        status = json.loads(line[5:])["status"]
                return (
                    "ok" if status in ("done", "clarification") else f"run_{status}"
                ), time.perf_counter() - t0
        return "no_attempt", time.perf_counter() - t0
    except httpx.HTTPError as exc:
        return f"transport_{type(exc).__name__}", time.perf_counter() - t0


async def _client(
    http: httpx.AsyncClient,
    video_id: str,
    box: list[float],
    turns: int,
    out: list,
    retries: int = 0,
    advised: list[float] | None = None,
) -> None:
    r = await http.post("/conversations", json={"video_id": video_id, "title": "load"})
    if r.status_code != 201:
        out.extend([(f"create_{r.status_code}", 0.0)] * turns)
        return
    cid = r.json()["id"]
    for k in range(turns):
        body = dict(QUESTIONS[k % len(QUESTIONS)])
        if "box" in body:
            body.update(box=box, frame_idx=0)
        out.append(await _turn(http, cid, body, retries, advised))


async def run(
    url: str,
    clients: int,
    turns: int,
    video: Path | None,
    api_key: str | None,
    timeout: float,
    retries: int = 0,
) -> dict:
    headers = {"X-API-Key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits) as http:
        ready = (await http.get("/readyz")).json()
        with tempfile.TemporaryDirectory() as tmp:
            path, box = (video, [10.0, 10.0, 60.0, 60.0]) if video else _clip(Path(tmp) / "load.mp4")
            r = await http.post("/videos", files={"file": (path.name, path.read_bytes(), "video/mp4")})
            r.raise_for_status()
        video_id = r.json()["id"]
        results: list[tuple[str, float]] = []
        advised: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(
            *[_client(http, video_id, box, turns, results, retries, advised) for _ in range(clients)]
        )
        wall = time.perf_counter() - t0
        worker = ((await http.get("/readyz")).json().get("worker")) or {}
        await http.delete(f"/videos/{video_id}")
    ok = sorted(s for kind, s in results if kind == "ok")
    q = (
        statistics.quantiles(ok, n=100, method="inclusive")
        if len(ok) >= 2
        else ok * 99 or [float("nan")] * 99
    )
    return {
        "url": url,
        "model": ready.get("model"),
        "clients": clients,
        "turns_per_client": turns,
        "requests": len(results),
        "ok": len(ok),
        "errors": dict(Counter(kind for kind, _ in results if kind != "ok")),
        "latency_s": {"p50": q[49], "p90": q[89], "p99": q[98], "max": ok[-1] if ok else float("nan")},
        "throughput_turns_per_s": len(ok) / wall if wall > 0 else 0.0,
        "wall_s": wall,
        "busy_503": len(advised),
        "retry_after_s": {
            "min": min(advised, default=float("nan")),
            "median": statistics.median(advised) if advised else float("nan"),
            "max": max(advised, default=float("nan")),
        },
        "measured_mean_turn_s": (worker.get("mean_job_s") or {}).get("turn"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--video", type=Path, default=None, help="Video file (default: a generated clip)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--timeout", type=float, default=600.0, help="Per-request timeout (s)")
    p.add_argument("--json", action="store_true", help="Print the report as JSON")
    p.add_argument(
        "--retries", type=int, default=0, help="Retry a 503 after its Retry-After, this many times"
    )
    args = p.parse_args(argv)
    report = asyncio.run(
        run(args.url, args.clients, args.turns, args.video, args.api_key, args.timeout, args.retries)
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lat, ra = report["latency_s"], report["retry_after_s"]
        print(
            f"{report['clients']} clients x {report['turns_per_client']} turns against {report['url']} "
            f"(model {report['model']}): {report['ok']}/{report['requests']} ok, errors {report['errors'] or 'none'}\n"
            f"turn latency p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s, p99 {lat['p99']:.2f} s, "
            f"max {lat['max']:.2f} s; throughput {report['throughput_turns_per_s']:.2f} turns/s; "
            f"wall {report['wall_s']:.1f} s\n"
            f"503 busy: {report['busy_503']}, Retry-After advised (s) min {ra['min']} median {ra['median']} "
            f"max {ra['max']}; measured mean turn {report['measured_mean_turn_s']} s"
        )
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
