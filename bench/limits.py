"""What the limits hook adds to a call: admission + settlement, in µs, memory and Redis on loopback.

    python bench/limits.py                      # starts its own redis-server (from PATH), stops it by PID
    python bench/limits.py --redis-url redis://127.0.0.1:6379/0 -n 5000

Each call is one `LimitsHook.admit` and one `request_ended` (two Redis round trips: the admission script
and the settlement script) under four rules that all apply: requests and tokens per minute, concurrency
and a monthly budget, per key (16 keys). Limits are high, so every call is admitted: this measures the
path every admitted request pays. Printed: p50 and p99 per call, for N calls one after another and for N
calls from 64 concurrent tasks (there the latency includes waiting for the event loop and for Redis).
Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asgi_llm_gateway import Call, Principal
from asgi_llm_gateway.limits import Limiter, LimitsHook, MemoryLimiter, Rule
from asgi_llm_gateway.pricing import Price
from asgi_llm_gateway.providers import EchoProvider
from asgi_llm_gateway.routing import Target

TARGET = Target("echo", EchoProvider(), "echo-1")
RULES = [
    Rule("requests", 10**9),
    Rule("tokens", 10**12),
    Rule("concurrent", 10**6),
    Rule("spend", 10**6, period="month"),
]
PRICES = {"echo/*": Price(input=1, output=2)}
KEYS = [Principal(f"key-{index}") for index in range(16)]
BODY = {"model": "echo/echo-1", "messages": [{"role": "user", "content": "hello " * 50}], "max_tokens": 256}
USAGE = {"prompt_tokens": 60, "completion_tokens": 40, "total_tokens": 100}


async def one(hook: LimitsHook, index: int) -> float:
    """One admitted call's admission and settlement, in µs."""
    call = Call(f"req-{index}", "chat.completions", KEYS[index % len(KEYS)], "echo/echo-1", BODY)
    started = time.perf_counter()
    await hook.admit(call, [TARGET])
    call.target, call.usage = TARGET, USAGE
    await hook.request_ended(call, call.record(200))
    return (time.perf_counter() - started) * 1e6


async def measure(limiter: Limiter, calls: int, concurrency: int) -> tuple[list[float], float]:
    """Each call's µs, and the calls per second over the whole run."""
    hook = LimitsHook(limiter, RULES, prices=PRICES)
    for index in range(200):  # warm-up: connections, scripts loaded
        await one(hook, index)
    results: list[float] = []

    async def worker(start: int) -> None:
        for index in range(start, calls, concurrency):
            results.append(await one(hook, index))

    started = time.perf_counter()
    await asyncio.gather(*(worker(start) for start in range(concurrency)))
    return results, calls / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


@contextmanager
def redis_server() -> Iterator[str]:
    """A fresh redis-server on a free loopback port, stopped by its PID at the end."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not on PATH (or pass --redis-url)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


async def run(url: str, calls: int) -> None:
    from asgi_llm_gateway.limits.redis import RedisLimiter

    print(f"{'backend':<8} {'concurrency':>11} {'calls':>6} {'p50 µs':>8} {'p99 µs':>8} {'calls/s':>8}")
    for name in ("memory", "redis"):
        for concurrency in (1, 64):
            limiter: Limiter = (
                MemoryLimiter()
                if name == "memory"
                else RedisLimiter(url, prefix=f"bench:{os.getpid()}:", timeout=1)
            )
            try:
                values, rate = await measure(limiter, calls, concurrency)
            finally:
                await limiter.aclose()
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            print(f"{name:<8} {concurrency:>11} {len(values):>6} {p50:>8.0f} {p99:>8.0f} {rate:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="an existing Redis (default: start one)")
    parser.add_argument("-n", "--calls", type=int, default=3000)
    options = parser.parse_args()
    if options.redis_url:
        asyncio.run(run(options.redis_url, options.calls))
    else:
        with redis_server() as url:
            asyncio.run(run(url, options.calls))


if __name__ == "__main__":
    main()
