"""Real HTTP servers for tests: uvicorn in a thread (browser) or in a subprocess (kill -9 persistence)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from agent.api import Settings, create_app

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base} not ready after {timeout} s")


@contextmanager
def thread_server(settings: Settings, **app_kwargs):
    """``base_url`` of the app served by uvicorn in a background thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, **app_kwargs), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def process_server(env: dict[str, str], port: int | None = None, *, script: str | None = None):
    """``(base_url, Popen)`` of the service (uvicorn, the app factory) in a subprocess; SIGKILLed on exit.
    ``script``: Python run as ``python -c script PORT`` instead (an app built with test parts).

    (``artemis serve`` runs the same app; importing every CLI sub-command would only slow the test.)
    """
    port = port or free_port()
    cmd = (
        [sys.executable, "-c", script, str(port)]
        if script is not None
        else [
            sys.executable,
            "-m",
            "uvicorn",
            "agent.api.app:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc=proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
