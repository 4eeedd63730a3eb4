"""Instructions per request: the floor, the gateway from a git revision and from the working tree, counted
by valgrind's callgrind, which counts executed instructions rather than timing them.

On this shared VM a wrk run's req/s drifts by 20% between runs minutes apart and `compare.py` needs many
interleaved rounds to see a 5% change. An instruction count does not drift: the same requests through the
same code give the same count (±1%, from what batching the event loop happens to do), whatever else the
machine runs. It is not time (cache misses and branch mispredictions cost cycles it does not count), so it
judges a change to the gateway's own code, not the machine; confirm a win with `compare.py`.

    python bench/instructions.py HEAD~1                       # OpenAI passthrough, plain, c=8
    python bench/instructions.py HEAD~1 --stream burst --tokens 200
    python bench/instructions.py --row anthropic              # the floor and the working tree only

Each server runs under `valgrind --tool=callgrind` with instrumentation off while it starts and warms up
(everything is ~50x slower under valgrind), then `callgrind_control` switches it on for one wrk run of
`-d` seconds and dumps the count. Everything it starts it stops, by PID.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import server_script, worktree
from run import (
    CLIENT_CORE,
    MODELS,
    ROOT,
    SERVER_CORE,
    Processes,
    free_port,
    mock_upstream,
    request_body,
    wait_for_port,
    wrk,
)


def count(
    procs: Processes, tmp: Path, name: str, root: Path | None, args: argparse.Namespace, mock: str
) -> str:
    """One server under callgrind: warm it up, count one wrk run, return the table row."""
    port = free_port()
    out = tmp / f"callgrind-{name.replace(' ', '-')}.out"
    script = server_script(root, args.row, mock)
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    process = procs.start(
        f"cg-{name}".replace(" ", "-"), [*valgrind, sys.executable, *script, "--port", str(port)],
        SERVER_CORE, root or ROOT,
    )  # fmt: skip
    try:
        if not wait_for_port(port, process, timeout=180):
            sys.exit(f"{name} did not start under valgrind: {procs.log_tail(f'cg-{name}'.replace(' ', '-'))}")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = request_body(args.row, stream=bool(args.stream), tokens=args.tokens, paced=False)
        wrk(url, body, args.connections, args.warmup, tmp, CLIENT_CORE)  # imports, first connections
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(process.pid)], check=True, capture_output=True)
        result = wrk(url, body, args.connections, args.duration, tmp, CLIENT_CORE)
        subprocess.run([*control, "-d", str(process.pid)], check=True, capture_output=True)
    finally:
        procs.stop(process)
    dump = out.with_name(out.name + ".1")  # the first dump: `-d`'s (the one at exit comes without a suffix)
    text = dump.read_text(errors="replace") if dump.exists() else ""
    match = re.search(r"^totals: (\d+)", text, re.M)
    if os.environ.get("BENCH_KEEP") and dump.exists():
        shutil.copy(dump, Path(os.environ["BENCH_KEEP"]) / dump.name)
    if match is None or not result.requests:
        sys.exit(f"{name}: no instruction count (valgrind log: {procs.log_tail(f'cg-{name}')})")
    per_request = int(match.group(1)) / result.requests
    return f"| {name} | {result.requests:,} | {per_request / 1000:,.0f} | {result.errors} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", nargs="?", help="a git revision to count too (e.g. HEAD~1, main)")
    parser.add_argument("--row", default="openai", choices=sorted(MODELS), help="provider (default openai)")
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds counted (default 10)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of uncounted load first (default 5)")
    parser.add_argument("-c", "--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--tokens", type=int, default=16, help="content chunks per answer (default 16)")
    parser.add_argument("--stream", choices=["burst"], help="streamed answers, sent by the mock at once")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor")
    args = parser.parse_args()
    for tool in ("wrk", "valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y wrk valgrind)")

    kind = f"{args.tokens}-chunk streams" if args.stream else "requests"
    rows = [
        f"\n{args.row}, c={args.connections}, {kind}, {args.duration} s counted",
        "| target | requests counted | thousand instructions per request | errors |",
        "| --- | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_KEEP")) as tmp_name:
        tmp = Path(tmp_name)
        procs = Processes(tmp)
        try:
            with mock_upstream(procs, CLIENT_CORE, 1.0) as (mock_url, _, _):
                if not args.no_floor:
                    rows.append(count(procs, tmp, "floor", None, args, mock_url))
                if args.rev:
                    with worktree(args.rev) as other:
                        rows.append(count(procs, tmp, args.rev, other, args, mock_url))
                rows.append(count(procs, tmp, "working tree", ROOT, args, mock_url))
        finally:
            procs.stop_all()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
