"""A real `redis-server` for the tests: started from PATH on a free loopback port, stopped by its PID.

`running_redis()` starts one in a temporary directory with no persistence (`--save '' --appendonly no`),
waits until it answers PING, yields `redis://127.0.0.1:<port>/0` and stops it at the end. The `redis_url`
fixture (session scope) is that server for a whole test session; a module uses it with
`from tests.support.redis_server import redis_url_fixture  # noqa: F401` and tests keep apart by key prefix.

Without `redis-server` on PATH the tests that need it skip, except under CI (`CI` set), where they fail: a
skip must never pass CI silently. `.ci/run` installs it from the OS packages.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.requirements import tool
from tests.support.server import free_port

__all__ = ["redis_server_path", "redis_url_fixture", "running_redis"]


def redis_server_path() -> str:
    """`redis-server` from PATH; skips the test without it, or fails it under CI."""
    return tool("redis-server", "the Redis store tests need it (.ci/run installs it)")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis(executable: str | None = None, *, start_timeout: float = 10) -> Iterator[str]:
    """Yield the URL of a fresh redis-server on loopback while it runs; stop it (SIGTERM, then SIGKILL)."""
    executable = executable or redis_server_path()
    with tempfile.TemporaryDirectory(prefix="redis-test-") as directory:
        log = Path(directory) / "redis.log"
        for _ in range(3):  # the free port may be taken between finding it and binding it
            port = free_port()
            options = {
                "port": str(port),
                "bind": "127.0.0.1",
                "save": "",  # no snapshots, no append-only file: nothing is written but the log
                "appendonly": "no",
                "dir": directory,
                "logfile": str(log),
                "daemonize": "no",
            }
            process = subprocess.Popen(
                [executable, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
            try:
                deadline = time.monotonic() + start_timeout
                while process.poll() is None and not _ping(port):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not answer PING within {start_timeout} s")
                    time.sleep(0.02)
                if process.poll() is not None:  # it exited: most likely the port was taken
                    continue
                yield f"redis://127.0.0.1:{port}/0"
                return
            finally:
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server would not start:\n{tail}")


@pytest.fixture(scope="session", name="redis_url")
def redis_url_fixture() -> Iterator[str]:
    """The URL of a redis-server started for this test session."""
    with running_redis() as url:
        yield url
