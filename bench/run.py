"""Gateway overhead, measured against the upstream itself and against the Python floor, in one run.

Starts the mock upstream, the floor proxy and the gateway (one row at a time, one uvicorn worker each, with
uvloop and httptools), pins the server under test to core 0 and the mock, wrk and the streaming client to
core 1, drives load, and prints one table. Everything it starts it stops (by the PIDs it started).

    python bench/run.py                         # every row, 5 s per cell (a few minutes)
    python bench/run.py --rows floor,openai -d 3
    python bench/run.py --profile               # py-spy profile of the c=64 OpenAI passthrough case

See bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from gateway_app import CANT_BUILD, MODELS  # noqa: E402

ALL_ROWS = ["direct", "floor", "openai", "anthropic", "gemini", "bedrock"]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SERVER_CORE = 0
CLIENT_CORE = 1
#: a cell during which other processes took more than this share of a core is measured again
NOISY = 0.10


# -- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_to(core: int | None) -> Callable[[], None] | None:
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


class Processes:
    """The processes this run started; `stop_all` ends exactly those, by PID."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}

    def start(
        self, name: str, argv: list[str], core: int | None, root: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        """Start `argv` with the package imported from `root` (another checkout, for comparisons)."""
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        }
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=pin_to(core), cwd=root
        )
        log.close()
        self.running[process.pid] = (name, process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        self.running.pop(process.pid, None)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly (and cProfile gets written)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for _, process in list(self.running.values()):
            self.stop(process)

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.logdir / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(text[-lines:])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def core_busy() -> dict[int, float]:
    """Busy seconds per core since boot, from /proc/stat: user, nice, system and steal (time the hypervisor
    gave to someone else). Interrupt time is left out: loopback traffic of our own processes lands there."""
    busy = {}
    with open("/proc/stat") as file:
        for line in file:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values]
                busy[int(name[3:])] = (ticks[0] + ticks[1] + ticks[2] + ticks[7]) / TICKS
    return busy


def wait_quiet(max_wait: float, threshold: float = 0.10) -> float:
    """Wait (up to `max_wait` s) until no core is more than `threshold` busy: other people's test runs on a
    shared machine skew every number. Returns the busiest core's share in the last window."""
    deadline = time.monotonic() + max_wait
    while True:
        before = core_busy()
        time.sleep(0.3)
        after = core_busy()
        worst = max((after[c] - before[c]) / 0.3 for c in after)
        if worst <= threshold or time.monotonic() >= deadline:
            return worst


def _client_side_cpu(mock_pid: int | None) -> float:
    """CPU of everything this run keeps on the client core: the mock, this process, finished wrk runs."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return total + (cpu_seconds(mock_pid) if mock_pid else 0.0)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as file:
        return int(file.read().split()[1]) * PAGE / 1e6


# -- load ------------------------------------------------------------------------------------------------


def request_body(row: str, *, stream: bool, tokens: int, paced: bool = True) -> bytes:
    """The OpenAI request every row gets. The mock answers `tokens` content chunks, and paces a stream
    (one event per --chunk-interval-ms) unless `temperature` is 0, when it sends the stream in one burst."""
    model = MODELS.get(row, "gpt-bench")
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a benchmark. Answer briefly."},
            {"role": "user", "content": "Say a few words about latency."},
        ],
        "max_tokens": tokens,
        "temperature": 0.5 if paced else 0,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: float | None = None
    #: share of the server's core used by processes this run did not start (noise), 0..1
    foreign: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.cpu_s is None or not self.requests:
            return None
        return self.cpu_s * 1e6 / self.requests


def wrk(
    url: str,
    body: bytes,
    connections: int,
    seconds: int,
    tmp: Path,
    core: int | None,
    pid: int | None = None,
    server_core: int | None = None,
    mock_pid: int | None = None,
) -> WrkResult:
    """One wrk run; with `pid`, the CPU that process used during it; with `server_core`, how busy
    processes this run did not start kept the two cores meanwhile."""
    body_file = tmp / f"body-{abs(hash(body))}.json"
    body_file.write_bytes(body)
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(BENCH / "post.lua"), url, "--", str(body_file),
    ]  # fmt: skip
    before = cpu_seconds(pid) if pid else None
    client_before = _client_side_cpu(mock_pid)
    busy_before, started = core_busy(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pin_to(core), check=False)
    busy_after, elapsed = core_busy(), time.monotonic() - started
    client_used = _client_side_cpu(mock_pid) - client_before
    after = cpu_seconds(pid) if pid else None
    foreign = None
    if server_core is not None and core is not None and {server_core, core} <= busy_after.keys():
        server_used = (after - before) if before is not None and after is not None else 0.0
        on_server = busy_after[server_core] - busy_before[server_core] - server_used
        on_client = busy_after[core] - busy_before[core] - client_used
        foreign = max(0.0, on_server, on_client) / elapsed
    match = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(match.group(1))
    errors = sum(data[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        cpu_s=(after - before) if before is not None and after is not None else None,
        foreign=foreign,
    )


@dataclass
class Streamed:
    status: int
    ttfc_s: float
    total_s: float
    body: bytes


class _Response:
    """httptools callbacks for one response: when the first body byte came, and the whole body."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.first: float | None = None
        self.parts: list[bytes] = []
        self.complete = False

    def on_body(self, data: bytes) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.parts.append(data)

    def on_message_complete(self) -> None:
        self.complete = True


class StreamClient:
    """A minimal keep-alive HTTP/1.1 client that timestamps the first body byte of each response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: bytes) -> Streamed:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer bench\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        self.writer.write(head + body)
        response = _Response(started)
        parser = httptools.HttpResponseParser(response)
        while not response.complete:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("connection closed mid-response")
            parser.feed_data(data)
        ended = time.perf_counter()
        if not parser.should_keep_alive():
            await self.close()
        first = response.first if response.first is not None else ended
        return Streamed(parser.get_status_code(), first - started, ended - started, b"".join(response.parts))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def content_chunks(body: bytes) -> int:
    """The number of SSE events that carry a piece of the canned answer."""
    return sum(1 for line in body.split(b"\n") if line.startswith(b"data:") and b"tok " in line)


async def _ttfc(port: int, path: str, body: bytes, count: int, warmup: int) -> list[float]:
    client = StreamClient("127.0.0.1", port)
    try:
        for _ in range(warmup):
            await client.request(path, body)
        times = []
        for _ in range(count):
            result = await client.request(path, body)
            if result.status != 200:
                raise RuntimeError(f"streaming request answered {result.status}: {result.body[:300]!r}")
            times.append(result.ttfc_s)
        return times
    finally:
        await client.close()


async def _check(port: int, path: str, row: Row, tokens: int) -> str | None:
    """None when the target answers both a plain and a streamed request correctly, else what is wrong.
    Also notes how long the very first request took (lazy start-up work lands there)."""
    client = StreamClient("127.0.0.1", port)
    try:
        plain = await client.request(path, request_body(row.name, stream=False, tokens=tokens))
        row.first_ms = plain.total_s * 1000
        if plain.status != 200 or (b"tok " * tokens) not in plain.body:
            return (
                f"non-streaming request answered {plain.status}: {plain.body[:300].decode(errors='replace')}"
            )
        streamed = await client.request(path, request_body(row.name, stream=True, tokens=tokens))
        found = content_chunks(streamed.body)
        if streamed.status != 200 or found != tokens or b"[DONE]" not in streamed.body:
            return (
                f"streaming request answered {streamed.status} with {found} of {tokens} content chunks: "
                f"{streamed.body[-300:].decode(errors='replace')}"
            )
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- one row ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    label: str
    cells: dict[int, WrkResult] = field(default_factory=dict)
    #: paced -> CPU us per chunk
    cpu_per_chunk_us: dict[bool, float] = field(default_factory=dict)
    ttfc_p50_ms: float | None = None
    ttfc_p99_ms: float | None = None
    rss_idle_mb: float | None = None
    rss_after_mb: float | None = None
    first_ms: float | None = None
    stream_foreign: float = 0.0
    note: str = ""
    #: the floor at c=64 again, measured just before this row: the machine drifts between rows
    floor_beside: WrkResult | None = None

    @property
    def noise(self) -> float | None:
        """The largest share of the server core other processes took during any cell of this row."""
        shares = [c.foreign for c in self.cells.values() if c.foreign is not None]
        return max([*shares, self.stream_foreign]) if shares else None


LABELS = {
    "direct": "no gateway (mock upstream direct)",
    "floor": "floor: Starlette + aiohttp passthrough",
    "openai": "gateway: OpenAI passthrough",
    "anthropic": "gateway: Anthropic (translated)",
    "gemini": "gateway: Gemini (translated)",
    "bedrock": "gateway: Bedrock (translated)",
}


@dataclass
class Settings:
    seconds: int
    warmup: int
    concurrency: list[int]
    tokens: int
    stream_connections: int
    stream_chunks: int
    ttfc_requests: int
    server_core: int | None
    client_core: int | None
    tmp: Path
    quiet_wait: float = 0.0
    chunk_interval_ms: float = 1.0
    retries: int = 1
    mock_pid: int | None = None

    def run(self, url: str, body: bytes, connections: int, pid: int | None) -> WrkResult:
        """A warm-up run, a wait for the machine to be quiet, then the measured run; a run that other
        processes disturbed (more than NOISY of a core) is done again, and the quieter one kept."""
        if self.warmup:
            wrk(url, body, connections, self.warmup, self.tmp, self.client_core)
        best: WrkResult | None = None
        for _ in range(1 + self.retries):
            if self.quiet_wait:
                wait_quiet(self.quiet_wait)
            result = wrk(
                url, body, connections, self.seconds, self.tmp, self.client_core, pid, self.server_core,
                self.mock_pid,
            )  # fmt: skip
            if best is None or (result.foreign or 0.0) < (best.foreign or 0.0):
                best = result
            if (best.foreign or 0.0) <= NOISY:
                break
        assert best is not None
        return best


def measure_row(row: Row, port: int, pid: int | None, s: Settings) -> None:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    path = "/v1/chat/completions"
    problem = asyncio.run(_check(port, path, row, 3))
    if problem:
        row.note = f"skipped: {problem}"
        return
    asyncio.run(_ttfc(port, path, request_body(row.name, stream=False, tokens=s.tokens), 20, 0))
    if pid:
        row.rss_idle_mb = rss_mb(pid)
    plain = request_body(row.name, stream=False, tokens=s.tokens)
    for connections in s.concurrency:
        cell = row.cells[connections] = s.run(url, plain, connections, pid)
        noise = f", other processes used {cell.foreign:.0%} of a core" if cell.foreign else ""
        print(f"  {row.name} c={connections}: {cell.rps:,.0f} req/s{noise}", file=sys.stderr)
    # Time to first chunk: sequential streamed requests from the Python client.
    small = request_body(row.name, stream=True, tokens=2)
    if s.quiet_wait:
        wait_quiet(s.quiet_wait)
    times = asyncio.run(_ttfc(port, path, small, s.ttfc_requests, 20))
    row.ttfc_p50_ms = statistics.median(times) * 1000
    row.ttfc_p99_ms = percentile(times, 99) * 1000
    # CPU per streamed chunk: the marginal cost of (chunks - 1) more chunks per stream, with the chunks
    # paced (each in its own read, as from a real model) and in one burst (many per read).
    if pid:
        for paced in (True, False):
            short, long = (
                s.run(
                    url, request_body(row.name, stream=True, tokens=n, paced=paced), s.stream_connections, pid
                )
                for n in (1, s.stream_chunks)
            )
            if short.cpu_us_per_request is not None and long.cpu_us_per_request is not None:
                per_chunk = (long.cpu_us_per_request - short.cpu_us_per_request) / (s.stream_chunks - 1)
                row.cpu_per_chunk_us[paced] = per_chunk
            row.stream_foreign = max(row.stream_foreign, short.foreign or 0.0, long.foreign or 0.0)
            if long.errors or short.errors:
                row.note += f" {short.errors + long.errors} failed streams."
        row.rss_after_mb = rss_mb(pid)
    errors = sum(cell.errors for cell in row.cells.values())
    if errors:
        row.note += f" {errors} failed requests (non-2xx, timeouts or socket errors)."


def run_rows(
    rows: list[str],
    s: Settings,
    procs: Processes,
    mock_url: str,
    mock_port: int,
    gateway_options: list[str],
    floor_options: list[str],
) -> list[Row]:
    results = []
    floor: tuple[str, subprocess.Popen[bytes]] | None = None  # kept running once its row is done
    try:
        for name in rows:
            row = Row(name, LABELS[name])
            print(f"-- {row.label}", file=sys.stderr)
            if name == "direct":
                measure_row(row, mock_port, None, s)
            else:
                if floor is not None and 64 in s.concurrency:
                    plain = request_body(name, stream=False, tokens=s.tokens)
                    row.floor_beside = s.run(floor[0], plain, 64, floor[1].pid)
                    print(f"  floor c=64, again: {row.floor_beside.rps:,.0f} req/s", file=sys.stderr)
                process = _measure_server(row, s, procs, mock_url, gateway_options, floor_options)
                if name == "floor" and process is not None:
                    floor = (f"http://127.0.0.1:{process[0]}/v1/chat/completions", process[1])
                elif process is not None:
                    procs.stop(process[1])
            results.append(row)
    finally:
        if floor is not None:
            procs.stop(floor[1])
    return results


def _measure_server(
    row: Row,
    s: Settings,
    procs: Processes,
    mock_url: str,
    gateway_options: list[str],
    floor_options: list[str],
) -> tuple[int, subprocess.Popen[bytes]] | None:
    """Start the floor or a gateway for `row` and measure it; returns (port, process) while it still runs."""
    name = row.name
    port = free_port()
    if name == "floor":
        argv = [
            sys.executable, str(BENCH / "floor_proxy.py"), "--upstream", mock_url, "--port", str(port),
            *floor_options,
        ]  # fmt: skip
    else:
        argv = [
            sys.executable, str(BENCH / "gateway_app.py"), "--provider", name,
            "--upstream", mock_url, "--port", str(port), *gateway_options,
        ]  # fmt: skip
    process = procs.start(name, argv, s.server_core)
    if not wait_for_port(port, process):
        status = process.poll()
        reason = "provider unavailable" if status == CANT_BUILD else f"did not start (exit {status})"
        row.note = f"skipped: {reason}: {procs.log_tail(name)}"
        procs.stop(process)
        return None
    measure_row(row, port, process.pid, s)
    return port, process


# -- the table -------------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


#: Issue 20's targets per row: c=64 throughput (times the floor measured just before the row), c=1 added
#: latency (times the floor's), CPU per streamed chunk in a burst (µs). Its memory targets (RSS idle, after
#: 100k requests, and the cost per request flat from c=1 to c=256) are bench/soak.py's to judge: this run's
#: gateway is a development install, and the CPU spread across concurrency is shown beside the floor's.
_THROUGHPUT = {"openai": 0.7, "bedrock": 0.5}
_ADDED_LATENCY = {"openai": 1.3}
_BURST_CHUNK_US = {"openai": 3.0}
_TRANSLATED_BURST_CHUNK_US = 6.0
_RSS_IDLE_MB, _RSS_AFTER_MB = 60.0, 80.0


def _verdict(value: float, target: float, at_most: bool) -> str:
    return "met" if (value <= target if at_most else value >= target) else "NOT MET"


def _targets(row: Row, floor: Row, base: WrkResult | None, concurrency: list[int]) -> list[str]:
    """One row's measurements against issue 20's targets, each with its verdict."""
    parts: list[str] = []
    beside = row.floor_beside or floor.cells.get(64)
    if 64 in row.cells and beside is not None and row.name in _THROUGHPUT:
        ratio, target = row.cells[64].rps / beside.rps, _THROUGHPUT[row.name]
        parts.append(
            f"c=64 throughput {ratio:.2f}x floor (target >= {target}: {_verdict(ratio, target, False)}; "
            f"the floor just before this row: {beside.rps:,.0f} req/s)"
        )
    if 1 in row.cells and 1 in floor.cells and base is not None and row.name in _ADDED_LATENCY:
        added, floor_added = row.cells[1].p50_ms - base.p50_ms, floor.cells[1].p50_ms - base.p50_ms
        if floor_added > 0:
            ratio, target = added / floor_added, _ADDED_LATENCY[row.name]
            verdict = _verdict(ratio, target, True)
            parts.append(f"c=1 added latency {ratio:.2f}x floor's (target <= {target}: {verdict})")
    burst = row.cpu_per_chunk_us.get(False)
    if burst is not None:
        target = _BURST_CHUNK_US.get(row.name, _TRANSLATED_BURST_CHUNK_US)
        floor_burst = floor.cpu_per_chunk_us.get(False)
        beside_floor = f", the floor {floor_burst:.1f}" if floor_burst is not None else ""
        parts.append(
            f"{burst:.1f} us/chunk in a burst, whole process{beside_floor} (target <= {target:g}: "
            f"{_verdict(burst, target, True)})"
        )
    spread, floor_spread = _cpu_spread(row, concurrency), _cpu_spread(floor, concurrency)
    if spread is not None:
        beside_floor = f", the floor's {floor_spread:.2f}x" if floor_spread is not None else ""
        parts.append(
            f"CPU/request c={concurrency[0]}..{concurrency[-1]} spread {spread:.2f}x{beside_floor} "
            "(no target here: issue 20's 'cost per request flat from c=1 to c=256' is one of its memory "
            "targets, judged by bench/soak.py --sweep)"
        )
    if row.rss_idle_mb is not None and row.rss_after_mb is not None:
        parts.append(
            f"RSS idle {row.rss_idle_mb:.1f} MB, after {row.rss_after_mb:.1f} MB in this development install "
            f"(the targets, <= {_RSS_IDLE_MB:g} and <= {_RSS_AFTER_MB:g} after 100k, are judged by "
            "bench/soak.py on a production install)"
        )
    return parts


def _cpu_spread(row: Row, concurrency: list[int]) -> float | None:
    """The largest CPU per request over the smallest, across the concurrencies measured."""
    known = [row.cells[c].cpu_us_per_request for c in concurrency if c in row.cells]
    values = [value for value in known if value]
    return max(values) / min(values) if len(values) > 1 else None


def render(rows: list[Row], s: Settings) -> str:
    direct = next((r for r in rows if r.name == "direct" and r.cells), None)
    floor = next((r for r in rows if r.name == "floor" and r.cells), None)
    base = direct.cells.get(1) if direct else None
    base_ttfc = direct.ttfc_p50_ms if direct else None
    high = [c for c in s.concurrency if c != 1]
    head = ["target", "c=1 added p50 ms", "c=1 added p99 ms"]
    for c in high:
        head += [f"c={c} req/s", f"c={c} p99 ms"]
    head += [
        "CPU us/req " + "/".join(f"c{c}" for c in s.concurrency),
        "CPU us/chunk paced",
        "CPU us/chunk burst",
        "TTFC p50 ms (added)",
        "RSS idle->after MB",
        "1st request ms",
        "noise",
    ]
    lines = ["| " + " | ".join(head) + " |", "| --- " + "| ---: " * (len(head) - 1) + "|"]
    for row in rows:
        if not row.cells:
            continue
        one = row.cells.get(1)
        cells = [row.label]
        if one is not None and base is not None and row is not direct:
            cells += [f"{one.p50_ms - base.p50_ms:.3f}", f"{one.p99_ms - base.p99_ms:.3f}"]
        elif one is not None:
            cells += [f"0 ({one.p50_ms:.3f} abs)", f"0 ({one.p99_ms:.3f} abs)"]
        else:
            cells += ["-", "-"]
        for c in high:
            cell = row.cells.get(c)
            cells += [fmt(cell.rps if cell else None, ",.0f"), fmt(cell.p99_ms if cell else None)]
        cpu = [row.cells[c].cpu_us_per_request if c in row.cells else None for c in s.concurrency]
        cells.append("/".join(fmt(v, ".0f") for v in cpu) if any(v is not None for v in cpu) else "-")
        cells.append(fmt(row.cpu_per_chunk_us.get(True), ".1f"))
        cells.append(fmt(row.cpu_per_chunk_us.get(False), ".1f"))
        if row.ttfc_p50_ms is not None and base_ttfc is not None and row is not direct:
            cells.append(f"{row.ttfc_p50_ms:.3f} (+{row.ttfc_p50_ms - base_ttfc:.3f})")
        else:
            cells.append(fmt(row.ttfc_p50_ms, ".3f"))
        cells.append(
            f"{row.rss_idle_mb:.0f}->{row.rss_after_mb:.0f}"
            if row.rss_idle_mb is not None and row.rss_after_mb is not None
            else "-"
        )
        cells.append(fmt(row.first_ms, ".1f"))
        cells.append("-" if row.noise is None else f"{row.noise:.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    out = ["\n".join(lines)]
    notes = [f"- {r.name}: {r.note.strip()}" for r in rows if r.note.strip()]
    if floor:
        ratios = []
        for row in rows:
            if row.name in ("direct", "floor") or not row.cells:
                continue
            ratios.append(f"- {row.name}: " + "; ".join(_targets(row, floor, base, s.concurrency)))
        if ratios:
            out.append("Issue 20's targets, against the floor in this run:\n" + "\n".join(ratios))
    if notes:
        out.append("Notes:\n" + "\n".join(notes))
    out.append(
        f"Settings: {s.seconds} s per cell (+{s.warmup} s warm-up), non-streamed answers of {s.tokens} "
        "chunks; "
        f"streams: {s.stream_connections} connections, 1 vs {s.stream_chunks} chunks, paced every "
        f"{s.chunk_interval_ms:g} ms or in one burst; TTFC over "
        f"{s.ttfc_requests} sequential requests; "
        + (
            f"server on core {s.server_core}, mock/wrk/client on core {s.client_core}."
            if s.server_core is not None
            else "no CPU pinning."
        )
    )
    return "\n\n".join(out)


# -- profile ---------------------------------------------------------------------------------------------


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
#: path fragment -> the component a Python frame belongs to (first match wins)
_COMPONENTS = (
    ("asgi_llm_gateway/", "gateway code"),
    ("uvicorn/", "uvicorn"),
    ("starlette/", "starlette"),
    ("anyio/", "anyio"),
    ("sniffio/", "anyio"),
    ("httpx_aiohttp/", "httpx"),
    ("httpx/", "httpx"),
    ("aiohttp/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("jsonschema", "jsonschema"),
    ("referencing/", "jsonschema"),
    ("botocore/", "botocore"),
    ("asyncio/", "asyncio"),
)
_SYSCALLS = frozenset(
    {
        "read",
        "write",
        "writev",
        "readv",
        "send",
        "sendmsg",
        "recv",
        "recvfrom",
        "epoll_wait",
        "epoll_pwait",
        "epoll_ctl",
        "getpid",
        "getrandom",
        "clock_gettime",
        "__libc_send",
        "__libc_recv",
    }
)


def _frame(frame: str) -> tuple[str, str]:
    """(function, shortened file) of one py-spy frame."""
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    path = match.group("file")
    for marker in ("site-packages/", "asgi_llm_gateway/", "lib/python3"):
        if marker in path:
            path = (marker if marker == "asgi_llm_gateway/" else "") + path.split(marker, 1)[1]
            break
    return match.group("func"), path


def _component(frames: list[tuple[str, str]]) -> str:
    func, path = frames[-1]
    if func.startswith("gc_collect") or func == "collect_with_callback":
        return "garbage collector"
    if func in _SYSCALLS:
        return f"syscall {func}"
    for func, path in reversed(frames):
        if path.endswith(".py") or path.startswith("asgi_llm_gateway/"):
            native = "" if (func, path) == frames[-1] else " (C below it)"
            for marker, name in _COMPONENTS:
                if marker in path:
                    return name + native
            return "other Python" + native
    return "native, no Python frame"


def summarize_profile(collapsed: Path, top: int) -> str:
    """Where the busy samples of py-spy's collapsed ('raw') output went: by component, by function (self
    and inclusive), and for the hottest leaves the gateway function that led to them."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    via: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        names = [f"{func} ({path})" for func, path in frames]
        own[names[-1]] += count
        components[_component(frames)] += count
        for name in set(names):
            inclusive[name] += count
        ours = [n for n in names if "asgi_llm_gateway/" in n]
        via[names[-1]][ours[-1] if ours else "(outside the gateway's code)"] += count
    if not total:
        return "py-spy recorded no samples."

    def share(count: int) -> str:
        return f"{100 * count / total:5.1f}%"

    def table(counter: collections.Counter[str], title: str, keep: Callable[[str], bool]) -> str:
        rows = [f"{title} (share of {total} busy samples)"]
        rows += [f"  {share(c)}  {n}" for n, c in [(n, c) for n, c in counter.most_common() if keep(n)][:top]]
        return "\n".join(rows)

    hottest = [f"Top self time, with the innermost gateway function above it (share of {total} busy samples)"]
    for name, count in own.most_common(top):
        callers = ", ".join(f"{caller} {100 * n / count:.0f}%" for caller, n in via[name].most_common(2))
        hottest.append(f"  {share(count)}  {name}\n           via {callers}")
    return "\n\n".join(
        [
            table(components, "Self time by component", lambda n: True),
            "\n".join(hottest),
            table(inclusive, "Inclusive time, gateway functions", lambda n: "asgi_llm_gateway/" in n),
        ]
    )


@dataclass
class ProfileOptions:
    row: str = "openai"
    connections: int = 64
    stream: str | None = None  # None: plain requests; "paced" or "burst": streams of --stream-chunks chunks
    native: bool = False
    rate: int = 250
    top: int = 25
    save_to: Path | None = None


def profile(
    s: Settings, procs: Processes, mock_url: str, o: ProfileOptions, gateway_options: list[str]
) -> str:
    """Load one gateway row with wrk while py-spy samples it: where its CPU goes; the collector's share."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return "py-spy is not installed: pip install py-spy"
    port = free_port()
    name = f"{o.row}-profiled"
    argv = [
        sys.executable, str(BENCH / "gateway_app.py"), "--provider", o.row,
        "--upstream", mock_url, "--port", str(port), "--gc-stats", *gateway_options,
    ]  # fmt: skip
    process = procs.start(name, argv, s.server_core)
    try:
        if not wait_for_port(port, process):
            return f"gateway did not start: {procs.log_tail(name)}"
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        if o.stream:
            body = request_body(o.row, stream=True, tokens=s.stream_chunks, paced=o.stream == "paced")
        else:
            body = request_body(o.row, stream=False, tokens=s.tokens)
        wrk(url, body, o.connections, max(1, s.warmup), s.tmp, s.client_core)
        out = o.save_to or s.tmp / "profile.txt"
        spy_argv = [
            py_spy, "record", "--pid", str(process.pid), "--duration", str(s.seconds + 1),
            "--rate", str(o.rate), "--format", "raw", "--output", str(out),
        ]  # fmt: skip
        # --native (C frames of uvloop, aiohttp's parser, orjson...) needs the process paused at each sample;
        # that pausing lands disproportionately in system calls, so compare shares in the default mode.
        spy_argv.append("--native" if o.native else "--nonblocking")
        spy = procs.start("py-spy", spy_argv, s.client_core)
        time.sleep(0.5)
        result = wrk(url, body, o.connections, s.seconds, s.tmp, s.client_core, process.pid)
        try:
            spy.wait(s.seconds + 30)
        finally:
            procs.stop(spy)
        total_cpu = cpu_seconds(process.pid)
        procs.stop(process)
        if not out.exists():
            return f"py-spy wrote nothing: {procs.log_tail('py-spy')}"
        what = f"streams of {s.stream_chunks} chunks ({o.stream})" if o.stream else "plain requests"
        unit = "stream" if o.stream else "request"
        head = [
            f"Profile of gateway row '{o.row}', {what}, c={o.connections}: {result.rps:,.0f} {unit}s/s, "
            f"{fmt(result.cpu_us_per_request, '.0f')} CPU us/{unit} (slower than unprofiled)."
        ]
        match = re.search(r"^GCSTATS (\{.*\})$", (procs.logdir / f"{name}.log").read_text(), re.M)
        if match:
            gc_stats = json.loads(match.group(1))
            seconds = sum(g["seconds"] for g in gc_stats.values())
            head.append(
                f"Garbage collector: {100 * seconds / total_cpu:.0f}% of the gateway's CPU over its life "
                + ", ".join(
                    f"gen{gen}: {g['collections']} runs, {1000 * g['seconds']:.0f} ms, {g['collected']} freed"
                    for gen, g in gc_stats.items()
                )
                + "."
            )
        return "\n".join(head) + "\n\n" + summarize_profile(out, o.top)
    finally:
        procs.stop(process)


# -- main ------------------------------------------------------------------------------------------------


@contextmanager
def mock_upstream(procs: Processes, core: int | None, interval_ms: float) -> Iterator[tuple[str, int, int]]:
    port = free_port()
    argv = [
        sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port),
        "--chunk-interval-ms", str(interval_ms),
    ]  # fmt: skip
    process = procs.start("mock", argv, core)
    try:
        if not wait_for_port(port, process):
            raise RuntimeError(f"the mock upstream did not start: {procs.log_tail('mock')}")
        yield f"http://127.0.0.1:{port}", port, process.pid
    finally:
        procs.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-d", "--duration", type=int, default=5, help="seconds per measured cell (default 5)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up before each cell (default 1)"
    )
    parser.add_argument("--rows", default=",".join(ALL_ROWS), help=f"comma-separated subset of {ALL_ROWS}")
    parser.add_argument("--concurrency", default="1,64,256", help="wrk connection counts (default 1,64,256)")
    parser.add_argument("--tokens", type=int, default=16, help="content chunks in a non-streamed answer")
    parser.add_argument("--stream-chunks", type=int, default=100, help="chunks per stream for CPU/chunk")
    parser.add_argument("--stream-connections", type=int, default=16, help="concurrent streams for CPU/chunk")
    parser.add_argument(
        "--chunk-interval-ms", type=float, default=1.0, help="mock's delay between stream events (default 1)"
    )
    parser.add_argument("--ttfc-requests", type=int, default=300, help="sequential streams for TTFC")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="before each cell, wait up to this many seconds for other processes to leave the cores idle "
        "(default 20; 0 = never wait)",
    )
    parser.add_argument(
        "--runner-gc",
        action="store_true",
        help="the floor's and the gateways' processes set the garbage collector up as the runner does "
        "(start-up heap frozen, a higher young-generation threshold)",
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="re-measure a cell disturbed by other processes (default 1)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--logs", metavar="DIR", help="keep the servers' logs in DIR (default: discarded)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="profile the c=64 OpenAI case with py-spy instead"
    )
    parser.add_argument("--profile-connections", type=int, default=64)
    parser.add_argument("--profile-row", default="openai", choices=[r for r in ALL_ROWS if r in MODELS])
    parser.add_argument(
        "--profile-stream",
        choices=["paced", "burst"],
        help="with --profile: streams instead of plain requests",
    )
    parser.add_argument("--profile-rate", type=int, default=250, help="with --profile: samples per second")
    parser.add_argument("--native", action="store_true", help="with --profile: include native (C) frames")
    parser.add_argument(
        "--profile-output", metavar="FILE", help="with --profile: keep py-spy's collapsed stacks"
    )
    parser.add_argument("--top", type=int, default=25, help="with --profile: how many functions to list")
    parser.add_argument(
        "--hooks",
        help="observability on the gateway rows: a comma-separated list of logs, metrics, otel (see "
        "gateway_app.py; BENCH_HOOKS does the same for compare.py)",
    )
    args = parser.parse_args()
    floor_options = ["--runner-gc"] if args.runner_gc else []
    gateway_options = list(floor_options)
    if args.hooks:
        gateway_options += ["--hooks", args.hooks]

    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ALL_ROWS)
    if unknown:
        sys.exit(f"unknown rows: {sorted(unknown)}; choose from {ALL_ROWS}")
    server_core: int | None = None
    client_core: int | None = None
    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    if pin:
        cores = sorted(os.sched_getaffinity(0))
        server_core, client_core = cores[SERVER_CORE], cores[CLIENT_CORE]
        os.sched_setaffinity(0, {client_core})  # this process runs the streaming client

    with tempfile.TemporaryDirectory(prefix="llm-gateway-bench-") as tmpdir:
        tmp = Path(tmpdir)
        logs = Path(args.logs) if args.logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            seconds=args.duration,
            warmup=args.warmup,
            concurrency=[int(c) for c in args.concurrency.split(",")],
            tokens=args.tokens,
            stream_connections=args.stream_connections,
            stream_chunks=max(2, args.stream_chunks),
            ttfc_requests=args.ttfc_requests,
            server_core=server_core,
            client_core=client_core,
            tmp=tmp,
            quiet_wait=args.quiet_wait,
            retries=args.retries,
            chunk_interval_ms=args.chunk_interval_ms,
        )
        procs = Processes(logs)
        try:
            with mock_upstream(procs, client_core, args.chunk_interval_ms) as (mock_url, mock_port, mock_pid):
                settings.mock_pid = mock_pid
                if args.profile:
                    options = ProfileOptions(
                        row=args.profile_row,
                        connections=args.profile_connections,
                        stream=args.profile_stream,
                        native=args.native,
                        rate=args.profile_rate,
                        top=args.top,
                        save_to=Path(args.profile_output).resolve() if args.profile_output else None,
                    )
                    print(profile(settings, procs, mock_url, options, gateway_options))
                    return
                results = run_rows(rows, settings, procs, mock_url, mock_port, gateway_options, floor_options)
        finally:
            procs.stop_all()
    print(render(results, settings))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        **{k: v for k, v in vars(r).items() if k not in ("cells", "floor_beside")},
                        "floor_beside": {**vars(r.floor_beside), "rps": r.floor_beside.rps}
                        if r.floor_beside
                        else None,
                        "cells": {c: {**vars(w), "rps": w.rps} for c, w in r.cells.items()},
                    }
                    for r in results
                ],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
