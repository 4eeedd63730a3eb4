"""Throughput of the standalone runner with N worker processes (`python -m asgi_llm_gateway --workers N`).

Starts the mock upstream (pinned to the last core when there are two or more), writes a config with one
`openai-compatible` provider pointed at it, then for each worker count starts the runner in its own process
group, waits for it to answer, warms it up and drives wrk against `/v1/chat/completions` (model
`openai/gpt-bench`). The runner is not pinned: its workers, the mock and wrk share whatever cores there are,
so on a 2-core machine the second worker competes with the mock and wrk for the second core. Everything it
starts it stops: the mock by PID, the runner by its process group.

    python bench/workers.py                      # --workers 1,2, c=64, 5 s each (under a minute)
    python bench/workers.py --workers 1,2,4 -d 3 --access-log

See bench/README.md ("Worker processes").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from run import (
    NOISY,
    ROOT,
    Processes,
    StreamClient,
    core_busy,
    cpu_seconds,
    free_port,
    mock_upstream,
    request_body,
    rss_mb,
    wait_for_port,
    wait_quiet,
    wrk,
)

PATH = "/v1/chat/completions"
MODEL_ROW = "openai"  # request_body's row whose model is `openai/gpt-bench`


def group_pids(pgid: int) -> list[int]:
    """The live processes in process group `pgid` (the runner's manager and its workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # fields[2] is the process group id
            pids.append(int(entry))
    return pids


def group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds used so far by each process of the group."""
    used = {}
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            used[pid] = cpu_seconds(pid)
    return used


def group_rss(pgid: int) -> tuple[float, float]:
    """(RSS of all the group's processes, largest RSS of one serving process) in MB. With N > 1 the group
    holds uvicorn's manager (the group leader), multiprocessing's resource tracker and the N workers; with
    N = 1 the leader serves."""
    total = worker = 0.0
    pids = group_pids(pgid)
    for pid in pids:
        with contextlib.suppress(OSError):
            rss = rss_mb(pid)
            total += rss
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                serving = b"spawn_main" in file.read() or len(pids) == 1
            if serving:
                worker = max(worker, rss)
    return total, worker


def own_cpu() -> float:
    """CPU of this process and its finished children (wrk): what the client side used."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Runner:
    """`python -m asgi_llm_gateway` in a new session (so in its own process group), stopped by that group."""

    def __init__(self, config: Path, workers: int, logdir: Path, access_log: bool) -> None:
        self.port = free_port()
        self.log = logdir / f"runner-{workers}.log"
        argv = [
            sys.executable, "-m", "asgi_llm_gateway", "--config", str(config), "--workers", str(workers),
            "--port", str(self.port), "--graceful-timeout", "2",
        ]  # fmt: skip
        # Access lines are logged at level info.
        argv += (
            ["--access-log", "--log-level", "info"]
            if access_log
            else ["--no-access-log", "--log-level", "warning"]
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
            )
        self.pgid = self.process.pid  # a session leader's group id is its PID

    def log_tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM to the manager (it stops its workers), then SIGKILL to whatever is left in the group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        for _ in range(50):
            if not group_pids(self.pgid):
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


async def _ready(port: int, body: bytes, timeout: float) -> str | None:
    """None once the runner answers a chat request with 200, else why not."""
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        client = StreamClient("127.0.0.1", port)
        try:
            result = await client.request(PATH, body)
            if result.status == 200 and b"tok " in result.body:
                return None
            problem = f"answered {result.status}: {result.body[:300].decode(errors='replace')}"
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            await client.close()
        await asyncio.sleep(0.1)
    return problem


@dataclass
class Cell:
    workers: int
    processes: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float | None
    rss_mb: float
    worker_rss_mb: float
    foreign: float | None
    #: each process's share of the group's CPU during the run, largest first
    split: list[float]


def _run(
    n: int,
    processes: int,
    runner: Runner,
    url: str,
    mock_pid: int,
    args: argparse.Namespace,
    tmp: Path,
    body: bytes,
) -> Cell:
    """One measured wrk run against a ready runner."""
    if args.quiet_wait:
        wait_quiet(args.quiet_wait)
    cpu_before, client_before, busy_before = group_cpu(runner.pgid), own_cpu(), core_busy()
    mock_before, started = cpu_seconds(mock_pid), time.monotonic()
    result = wrk(url, body, args.connections, args.duration, tmp, None)
    elapsed = time.monotonic() - started
    cpu_after = group_cpu(runner.pgid)
    per_process = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
    cpu_used = sum(per_process.values())
    # How the load fell on the workers (uvicorn's workers share one listening socket: whoever accepts first
    # gets the connection, so keep-alive connections need not spread evenly).
    split = sorted((used / cpu_used for used in per_process.values()), reverse=True)
    ours = cpu_used + own_cpu() - client_before + cpu_seconds(mock_pid) - mock_before
    busy_after = core_busy()
    busy = sum(busy_after[c] - busy_before.get(c, 0.0) for c in busy_after)
    # Other people's processes, in cores: all busy time minus ours (runner, mock, wrk, this script).
    foreign = max(0.0, busy - ours) / elapsed if elapsed else None
    rss_all, rss_worker = group_rss(runner.pgid)
    return Cell(
        workers=n,
        processes=processes,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu_us=cpu_used * 1e6 / result.requests if result.requests else None,
        rss_mb=rss_all,
        worker_rss_mb=rss_worker,
        foreign=foreign,
        split=split if cpu_used else [],
    )


def measure(
    n: int, config: Path, mock_pid: int, args: argparse.Namespace, tmp: Path, body: bytes
) -> Cell | str:
    runner = Runner(config, n, tmp, args.access_log)
    try:
        if not wait_for_port(runner.port, runner.process, 30):
            return f"did not start (exit {runner.process.poll()}): {runner.log_tail()}"
        problem = asyncio.run(_ready(runner.port, body, 30))
        if problem:
            return f"not ready: {problem} | {runner.log_tail()}"
        url = f"http://127.0.0.1:{runner.port}{PATH}"
        # Warm-up: the first requests of every worker (lazy set-up) stay out of the measured run.
        wrk(url, body, args.connections, args.warmup, tmp, None)
        processes = len(group_pids(runner.pgid))
        best: Cell | None = None
        for _ in range(1 + args.retries):
            cell = _run(n, processes, runner, url, mock_pid, args, tmp, body)
            if best is None or (cell.foreign or 0.0) < (best.foreign or 0.0):
                best = cell
            if (best.foreign or 0.0) <= NOISY:
                break
        assert best is not None
        return best
    finally:
        runner.stop()


def render(cells: list[Cell], notes: list[str], args: argparse.Namespace, cores: int, mock_core: str) -> str:
    base = next((c.rps for c in cells if c.workers == 1), None)
    head = [
        "workers",
        "processes",
        f"c={args.connections} req/s",
        "x 1 worker",
        "p50 ms",
        "p99 ms",
        "CPU us/req",
        "CPU split",
        "RSS MB all / per worker",
        "noise",
    ]
    lines = ["| " + " | ".join(head) + " |", "| ---: " * len(head) + "|"]
    for c in cells:
        lines.append(
            "| "
            + " | ".join(
                [
                    str(c.workers),
                    str(c.processes),
                    f"{c.rps:,.0f}",
                    f"{c.rps / base:.2f}" if base else "-",
                    f"{c.p50_ms:.2f}",
                    f"{c.p99_ms:.2f}",
                    f"{c.cpu_us:.0f}" if c.cpu_us is not None else "-",
                    "/".join(f"{share:.0%}" for share in c.split if share >= 0.005) or "-",
                    f"{c.rss_mb:.0f} / {c.worker_rss_mb:.0f}",
                    f"{c.foreign:.0%}" if c.foreign is not None else "-",
                ]
            )
            + " |"
        )
    out = ["\n".join(lines)]
    errors = [f"{c.workers} workers: {c.errors} failed requests" for c in cells if c.errors]
    if notes or errors:
        out.append("Notes:\n" + "\n".join(f"- {n}" for n in [*notes, *errors]))
    out.append(
        f"Settings: {cores} cores usable; runner not pinned; mock {mock_core}; wrk (1 thread) unpinned; "
        f"{args.duration} s per cell after {args.warmup} s warm-up; access log "
        f"{'on' if args.access_log else 'off'}. 'processes' counts the runner's process group (with N > 1: "
        "uvicorn's manager, multiprocessing's resource tracker and N workers); CPU us/req is theirs, and "
        "'CPU split' how it fell on them (shares under 0.5% left out); noise is the CPU (in cores) that "
        "processes this script did not start used during the run."
    )
    if cores <= 2:
        out.append(
            f"This machine has {cores} cores and the mock and wrk run on them too, so more than one worker "
            "cannot scale linearly here: the ratio shows what a second worker gets from the CPU the first "
            "one leaves over, not the per-core scaling of a larger machine."
        )
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("-c", "--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("-d", "--duration", type=int, default=5, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per runner (default 2)")
    parser.add_argument("--tokens", type=int, default=16, help="content chunks in the mock's answer")
    parser.add_argument(
        "--access-log", action="store_true", help="run the runner with its access log on (default off)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each run, wait up to this long for other processes to leave the cores idle (default 10)",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="re-measure a run disturbed by other processes (default 2)"
    )
    parser.add_argument("--logs", metavar="DIR", help="keep the logs in DIR (default: discarded)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    mock_core = cores[-1] if len(cores) >= 2 else None
    body = request_body(MODEL_ROW, stream=False, tokens=args.tokens)
    cells: list[Cell] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llm-gateway-workers-") as tmpdir:
        tmp = Path(tmpdir)
        logs = Path(args.logs) if args.logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        procs = Processes(logs)
        try:
            with mock_upstream(procs, mock_core, 1.0) as (mock_url, _, mock_pid):
                config = tmp / "gateway.toml"
                config.write_text(
                    "[providers.openai]\n"
                    'type = "openai-compatible"\n'
                    f'base_url = "{mock_url}/v1"\n'
                    'api_key = "k"\n'
                )
                for n in counts:
                    print(f"-- {n} worker(s)", file=sys.stderr)
                    cell = measure(n, config, mock_pid, args, logs, body)
                    if isinstance(cell, str):
                        notes.append(f"{n} workers: {cell}")
                        print(f"  {cell}", file=sys.stderr)
                        continue
                    print(f"  {cell.rps:,.0f} req/s", file=sys.stderr)
                    cells.append(cell)
        finally:
            procs.stop_all()
    where = f"pinned to core {mock_core}" if mock_core is not None else "unpinned"
    print(render(cells, notes, args, len(cores) or os.cpu_count() or 0, where))


if __name__ == "__main__":
    main()
