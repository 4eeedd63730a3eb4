"""Serve an ASGI app with uvicorn on a real loopback port, in a background thread, for a test's lifetime; or
run a server process (the standalone runner) until it answers, and stop it by its PID afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedURL(str):
    """The base URL of a served app; `.loop` is the event loop serving it (to inspect its tasks)."""

    loop: asyncio.AbstractEventLoop


@contextmanager
def serve(app: Any, *, lifespan: Literal["auto", "on", "off"] = "auto", **config: Any) -> Iterator[ServedURL]:
    """Yield `http://127.0.0.1:<port>` while uvicorn serves `app` there; shut it down afterwards."""
    port = free_port()
    config.setdefault("timeout_graceful_shutdown", 1)  # don't wait long for a fake's sleeping handlers
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, **config)
    )
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        url = ServedURL(f"http://127.0.0.1:{port}")
        url.loop = loop
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()


def runner_script() -> str:
    """The `asgi-llm-gateway` console script installed next to the tests' interpreter, as the README's quick
    start runs it."""
    script = shutil.which("asgi-llm-gateway", path=str(Path(sys.executable).parent))
    if script is None:
        raise RuntimeError(f"no asgi-llm-gateway script next to {sys.executable}: pip install -e '.[test]'")
    return script


@dataclass
class ServedProcess:
    """A server process a test started: its base URL and the file its output goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, then its exit status (-SIGTERM when uvicorn re-raises the signal after a clean stop)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def serve_process(
    command: Sequence[str],
    port: int,
    log: Path,
    env: Mapping[str, str],
    *,
    ready_path: str = "/healthz",
    start_timeout: float = 15,
) -> Iterator[ServedProcess]:
    """Run `command` (which listens on loopback `port`) with only `env` as its environment, output to `log`;
    yield once `GET ready_path` answers 200. Afterwards kill what is left of it and of what it started (its
    own process group, by its PID) and wait for it, whatever happened in between."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command), stdout=sink, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True
        )
    served = ServedProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{command[0]} exited with {process.returncode}:\n{served.output()}")
            with suppress(httpx.TransportError):
                if httpx.get(served.url + ready_path, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{command[0]} did not answer within {start_timeout} s:\n{served.output()}"
                )
            time.sleep(0.05)
        yield served
    finally:
        with suppress(ProcessLookupError):  # its group outlives it while a worker it started runs
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
