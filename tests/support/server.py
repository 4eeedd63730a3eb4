"""Serve an ASGI app with uvicorn on a real loopback port, in a background thread, for a test's lifetime."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedURL(str):
    """The base URL of a served app; `.loop` is the event loop serving it (to inspect its tasks)."""

    loop: asyncio.AbstractEventLoop


@contextmanager
def serve(app: Any, *, lifespan: str = "auto", **config: Any) -> Iterator[ServedURL]:
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
