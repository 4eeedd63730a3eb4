"""Is a change faster? The working tree against a git revision, interleaved, each round against the floor.

On a shared machine throughput drifts by 20% or more between runs minutes apart, so two `run.py` tables taken
before and after a change can disagree about which is faster. This starts the floor, the gateway from the
working tree and the gateway from REV (checked out into a temporary git worktree, removed afterwards) side by
side on core 0, then runs wrk at c=N against each in turn, round after round, so that drift hits all three
alike. It prints, per target, the median req/s, CPU µs per request, and the median ratio to the floor of the
same round.

    python bench/compare.py HEAD~1                 # 5 rounds of 4 s, OpenAI passthrough, c=64
    python bench/compare.py main --row anthropic --rounds 8 --stream paced

With the settings of one of issue 20's throughput targets (OpenAI plain at c=64 or 200-chunk bursts at
c=16, both >= 0.7 x the floor; Bedrock plain at c=64, >= 0.5 x) it ends with that target's verdict for the
working tree. Plain (non-streamed) requests unless `--stream burst|paced` (then streamed answers of
`--tokens` chunks, all at once or one every 1 ms, and the CPU column is per stream). Everything it starts it
stops, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from run import (
    BENCH,
    CLIENT_CORE,
    MODELS,
    ROOT,
    SERVER_CORE,
    Processes,
    WrkResult,
    free_port,
    mock_upstream,
    request_body,
    wait_for_port,
    wrk,
)


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """REV checked out into a temporary directory (its own bench/ scripts are used for its gateway)."""
    path = Path(tempfile.mkdtemp(prefix="gateway-compare-"))
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(path), rev], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def server_script(root: Path | None, row: str, mock_url: str) -> list[str]:
    """The floor's script (root None) or the gateway's from checkout `root`, with all arguments but --port."""
    if root is None:
        return [str(BENCH / "floor_proxy.py"), "--upstream", mock_url]
    return [str(root / "bench" / "gateway_app.py"), "--provider", row, "--upstream", mock_url]


def start(
    procs: Processes, name: str, root: Path | None, row: str, mock_url: str, options: list[str]
) -> tuple[int, int]:
    """The floor (root None) or the gateway from checkout `root`, on the server core: (port, pid)."""
    port = free_port()
    script = server_script(root, row, mock_url)
    if options and any(option not in Path(script[0]).read_text() for option in options):
        sys.exit(f"{name}: {script[0]} does not take {' '.join(options)}")
    script += options
    log_name = name.replace(" ", "-").replace("/", "-")
    process = procs.start(log_name, [sys.executable, *script, "--port", str(port)], SERVER_CORE, root or ROOT)
    if not wait_for_port(port, process):
        sys.exit(f"{name} did not start: {procs.log_tail(log_name)}")
    return port, process.pid


#: Issue 20's throughput targets that this comparison measures as the issue states them: (provider,
#: streamed, connections, chunks) -> the least ratio to the floor. Plain calls are judged at 64 connections
#: whatever their chunk count; streams as 200-chunk bursts over 16 connections.
TARGETS = {
    ("openai", None, 64, None): 0.7,
    ("openai", "burst", 16, 200): 0.7,
    ("bedrock", None, 64, None): 0.5,
}


def target_of(args: argparse.Namespace) -> float | None:
    """The target of issue 20 that this run's settings measure, if any."""
    chunks = args.tokens if args.stream else None
    return TARGETS.get((args.row, args.stream, args.connections, chunks))


def report(results: dict[str, list[WrkResult]], title: str, target: float | None = None) -> None:
    floor = results["floor"]
    print(f"\n{title}")
    print("| target | req/s (median) | CPU us/req (median) | ratio to the floor (median) | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        ratios = [run.rps / base.rps for run, base in zip(runs, floor, strict=True) if base.rps]
        cpu = [run.cpu_us_per_request for run in runs if run.cpu_us_per_request is not None]
        rps = statistics.median(run.rps for run in runs)
        ratio, errors = statistics.median(ratios), sum(run.errors for run in runs)
        print(f"| {name} | {rps:,.0f} | {statistics.median(cpu):.0f} | {ratio:.3f} | {errors} |")
    if target is not None:
        ratio = statistics.median(
            run.rps / base.rps for run, base in zip(results["working tree"], floor, strict=True) if base.rps
        )
        verdict = "met" if ratio >= target else "NOT MET"
        print(
            f"\nissue 20's target for these settings: >= {target} x the floor; "
            f"the working tree: {ratio:.3f}, {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the git revision to compare the working tree with (e.g. HEAD~1, main)")
    parser.add_argument("--row", default="openai", choices=sorted(MODELS), help="provider (default openai)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("-d", "--duration", type=int, default=4, help="seconds per measured run (default 4)")
    parser.add_argument("-c", "--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--tokens", type=int, default=16, help="content chunks per answer (default 16)")
    parser.add_argument("--stream", choices=["burst", "paced"], help="streamed answers, all at once or paced")
    parser.add_argument(
        "--runner-gc",
        action="store_true",
        help="every server sets the garbage collector up as the runner does (see gateway_app.py)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")

    body = request_body(args.row, stream=bool(args.stream), tokens=args.tokens, paced=args.stream == "paced")
    results: dict[str, list[WrkResult]] = {"floor": [], args.rev: [], "working tree": []}
    with tempfile.TemporaryDirectory() as tmp, worktree(args.rev) as other:
        procs = Processes(Path(tmp))
        try:
            with mock_upstream(procs, CLIENT_CORE, 1.0) as (mock_url, _, mock_pid):
                roots = {"floor": None, args.rev: other, "working tree": ROOT}
                options = ["--runner-gc"] if args.runner_gc else []
                servers = {
                    name: start(procs, name, root, args.row, mock_url, options)
                    for name, root in roots.items()
                }
                for round_number in range(1, args.rounds + 1):
                    line = []
                    for name, (port, pid) in servers.items():
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        wrk(url, body, args.connections, 1, Path(tmp), CLIENT_CORE)  # warm-up
                        result = wrk(
                            url, body, args.connections, args.duration, Path(tmp), CLIENT_CORE, pid,
                            SERVER_CORE, mock_pid,
                        )  # fmt: skip
                        results[name].append(result)
                        line.append(f"{name} {result.rps:,.0f}")
                    print(f"round {round_number}: " + ", ".join(line) + " req/s", file=sys.stderr)
        finally:
            procs.stop_all()
    kind = f"streams ({args.stream})" if args.stream else "requests"
    title = f"{args.row}, c={args.connections}, {args.rounds} rounds of {args.duration} s, {kind}"
    report(results, title, target_of(args))


if __name__ == "__main__":
    main()
