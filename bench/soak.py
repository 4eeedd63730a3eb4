"""Gateway memory over a long run: RSS idle, after 100,000 requests, and across repeated rounds of 20,000.

Starts the mock upstream and the gateway (bench/gateway_app.py: the OpenAI provider, uvicorn, uvloop,
httptools, one worker; pinned to core 0, the mock and wrk to core 1, as in run.py), reads the gateway's RSS
before its first request and after 20 warm-up requests through one door (`--door`; the first answer is
checked to be complete), then drives wrk at c=64 in rounds of a few seconds until the gateway has answered
at least 100,000 requests (counted from wrk's output), printing RSS after each round, then three more rounds
of 20,000 each, and prints one verdict line per memory target of issue 20 (idle <= 60 MB, <= 80 MB after
100k requests on every door). Before that it measures where the idle RSS comes from: the resident memory
each of the gateway's imports adds.

The doors send the bodies doors.py sends (the same conversation in each door's shape, `--tokens` content
chunks asked for): chat completions (OpenAI passthrough), Messages (translated to chat completions),
Responses (passed through to the mock's /v1/responses; `store: false`, so the gateway's response store is not
what is measured) and embeddings (one short string in, one canned vector out).

    python bench/soak.py                          # the chat door, about 1-2 minutes
    python bench/soak.py --door messages          # or responses, embeddings
    python bench/soak.py --runner-gc              # the gateway with the runner's GC settings (cli._tune_gc)
    python bench/soak.py --block-imports rich,pygments   # as a production install without them would be
    python bench/soak.py --stream                 # streamed answers (16 chunks in one burst; not embeddings)

See bench/README.md ("Memory over a long run").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doors import QUESTION, door_bodies
from gateway_app import MODELS
from run import (
    BENCH,
    ROOT,
    Processes,
    StreamClient,
    free_port,
    mock_upstream,
    rss_mb,
    wait_for_port,
    wrk,
)

#: Issue 20's memory targets, for every door.
IDLE_TARGET_MB = 60.0
AFTER_TARGET_MB = 80.0
#: No target of issue 20: RSS that still grows across the repeated rounds would be a leak.
GROWTH_LIMIT_MB = 2.0
ROW = "openai"
WARM_UP = 20


@dataclass(frozen=True)
class Door:
    """What a complete answer through a door looks like: `delta` occurs once per content chunk of a stream,
    `end` closes it."""

    path: str
    delta: bytes | None = None
    end: bytes | None = None


DOORS = {
    "chat": Door("/v1/chat/completions", b'"content":"tok "', b"data: [DONE]"),
    "messages": Door("/v1/messages", b'"text":"tok "', b"event: message_stop"),
    "responses": Door("/v1/responses", b'"delta":"tok "', b"event: response.completed"),
    "embeddings": Door("/v1/embeddings"),
}


def soak_body(door: str, *, stream: bool, tokens: int) -> bytes:
    """The body wrk sends through `door`: doors.py's for the doors that chat, one short string to embed."""
    if door == "embeddings":
        return json.dumps({"model": MODELS[ROW], "input": QUESTION}).encode()
    return door_bodies(ROW, tokens, stream, paced=False)[door][1]


def answer_problem(door: str, *, stream: bool, tokens: int, status: int, body: bytes) -> str | None:
    """None when `body` is the whole answer the mock's canned one becomes through `door`, else what is
    wrong with it."""
    shape = DOORS[door]
    problem: str | None
    if status != 200:
        problem = f"status {status}"
    elif shape.delta is None:
        data = json.loads(body).get("data")
        ok = isinstance(data, list) and len(data) == 1 and len(data[0].get("embedding") or ()) > 0
        problem = None if ok else "no embedding"
    elif stream:
        chunks = body.count(shape.delta)
        ok = chunks == tokens and shape.end is not None and shape.end in body
        problem = None if ok else f"{chunks} of {tokens} content chunks, or no {shape.end!r}"
    else:
        problem = None if b"tok " * tokens in body else f"not the {tokens} chunks' text"
    if problem is None:
        return None
    return f"{door} answered {problem}: {body[:300].decode(errors='replace')}"


async def warm_up(port: int, door: str, body: bytes, *, stream: bool, tokens: int) -> None:
    """WARM_UP sequential requests through `door`; the first answer is checked, so that a soak never counts
    refusals as served."""
    client = StreamClient("127.0.0.1", port)
    try:
        for index in range(WARM_UP):
            answer = await client.request(DOORS[door].path, body)
            if index == 0:
                problem = answer_problem(
                    door, stream=stream, tokens=tokens, status=answer.status, body=answer.body
                )
                if problem is not None:
                    raise RuntimeError(problem)
    finally:
        await client.close()


#: Written to a temporary directory put first on PYTHONPATH with --block-imports: makes the named top-level
#: packages unimportable, as if not installed (httpx imports its optional CLI, click + pygments + rich, when
#: they are there; a development environment has them for other reasons).
SITECUSTOMIZE = """\
import os
import sys

_BLOCKED = frozenset(n for n in os.environ.get("BENCH_BLOCK_IMPORTS", "").split(",") if n)


class _Block:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by bench/soak.py)", name=name)
        return None


sys.meta_path.insert(0, _Block)
"""

#: Run in a fresh interpreter: import the given steps in order, print the memory after each as JSON lines.
IMPORT_PROBE = """\
import importlib, json, sys
sys.path.insert(0, sys.argv[1])

def memory():
    values = {}
    with open("/proc/self/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(value.split()[0]) / 1000
    return values

def step(name):
    if name == "build gateway":
        import gateway_app
        global gateway
        gateway = gateway_app.build_gateway("openai", "http://127.0.0.1:9")
    elif name == "compile validators":
        from asgi_llm_gateway.schemas import _validator, validate_chat_request
        validate_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        _validator()
    elif name == "upstream client":
        import asyncio, httpx
        from asgi_llm_gateway.transport import create_client
        async def make():
            global client
            client = create_client(httpx.Timeout(5))
        asyncio.run(make())
    else:
        importlib.import_module(name)

print(json.dumps(["python", memory()]), flush=True)
for name in sys.argv[2:]:
    try:
        step(name)
    except ImportError as exc:
        print(json.dumps([f"{name} (not importable: {exc})", None]), flush=True)
        continue
    print(json.dumps([name, memory()]), flush=True)
"""

#: What the gateway process loads, in the order it loads it (standalone: each alone in a fresh interpreter).
IMPORT_STEPS = [
    "asyncio",
    "ssl",
    "anyio",
    "starlette.requests",
    "httpx",
    "aiohttp",
    "httpx_aiohttp",
    "jsonschema",
    "orjson",
    "asgi_llm_gateway",
    "asgi_llm_gateway.providers.openai",
    "uvloop",
    "httptools",
    "uvicorn",
    "uvicorn.protocols.http.httptools_impl",
]
STANDALONE = [
    "asyncio",
    "ssl",
    "anyio",
    "starlette.requests",
    "uvicorn",
    "httpx",
    "aiohttp",
    "httpx_aiohttp",
    "jsonschema",
    "jsonschema_rs",
    "orjson",
    "uvloop",
    "httptools",
    "click",
    "rich",
    "pygments",
]
#: After start-up: jsonschema_rs is imported on the first request, when the validators are compiled.
RUNTIME_STEPS = ["build gateway", "jsonschema_rs", "compile validators", "upstream client"]


def _probe(steps: list[str]) -> list[tuple[str, dict[str, float] | None]]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(BENCH), *steps],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    if done.returncode and len(rows) < len(steps) + 1:
        last = done.stderr.strip().splitlines()[-1:] or ["?"]
        rows.append([f"{steps[len(rows) - 1] if rows else 'python'} (failed: {last[0]})", None])
    return [(name, values) for name, values in rows]


def import_table() -> str:
    """Resident memory each import adds: alone in a fresh interpreter, and cumulatively in the gateway's
    order (what the gateway process pays), with the anonymous (heap) and file-backed (code, shared between
    worker processes) parts."""
    lines = [
        "| step | alone: + RSS MB | in order: RSS MB | + RSS MB | + anon MB | + file MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    alone: dict[str, float] = {}
    for name in STANDALONE:
        rows = _probe([name])
        if len(rows) == 2 and rows[1][1] and rows[0][1]:
            alone[name] = rows[1][1]["VmRSS"] - rows[0][1]["VmRSS"]
        else:
            alone[name] = math.nan
    cumulative = _probe(IMPORT_STEPS + RUNTIME_STEPS)
    previous: dict[str, float] | None = None
    for name, values in cumulative:
        if not values:
            lines.append(f"| {name} | | | | | |")
            continue
        if previous is None:
            lines.append(f"| {name} (bare interpreter) | | {values['VmRSS']:.1f} | | | |")
        else:
            shown = f"{alone[name]:.1f}" if name in alone and not math.isnan(alone[name]) else ""
            added = [values[k] - previous[k] for k in ("VmRSS", "RssAnon", "RssFile")]
            lines.append(
                f"| {name} | {shown} | {values['VmRSS']:.1f} | "
                + " | ".join(f"{v:+.1f}" for v in added)
                + " |"
            )
        previous = values
    for name in STANDALONE:
        if name not in IMPORT_STEPS + RUNTIME_STEPS:
            shown = "not installed or blocked" if math.isnan(alone[name]) else f"{alone[name]:.1f}"
            lines.append(f"| {name} (alone only) | {shown} | | | | |")
    return "\n".join(lines)


@dataclass
class Round:
    label: str
    requests: int
    total: int
    rps: float
    errors: int
    rss_mb: float
    noise: float | None


def drive(
    count: int,
    label: str,
    url: str,
    body: bytes,
    pid: int,
    total: int,
    args: argparse.Namespace,
    ctx: dict[str, Any],
) -> tuple[list[Round], int]:
    """wrk rounds (each of `--round` seconds or shorter, sized from the last rate) until `count` more requests
    were answered; a Round per wrk run."""
    rounds: list[Round] = []
    served = 0
    while served < count:
        rate = ctx.get("rate") or 2000.0
        seconds = max(1, min(args.round, math.ceil((count - served) / rate)))
        result = wrk(
            url, body, args.connections, seconds, ctx["tmp"], ctx["client_core"], pid, ctx["server_core"],
            ctx["mock_pid"],
        )  # fmt: skip
        if result.requests == 0:
            raise RuntimeError("wrk got no answers")
        ctx["rate"] = result.rps
        served += result.requests
        total += result.requests
        rss = rss_mb(pid)
        rounds.append(Round(label, result.requests, total, result.rps, result.errors, rss, result.foreign))
        noise = f", noise {result.foreign:.0%}" if result.foreign else ""
        print(
            f"  {label}: {result.requests:,} requests ({total:,} in all), {result.rps:,.0f} req/s, "
            f"RSS {rss:.1f} MB{noise}",
            file=sys.stderr,
        )
    return rounds, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000, help="the soak (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="repeated rounds after the soak (default 3)")
    parser.add_argument("--repeat-requests", type=int, default=20_000, help="requests per repeated round")
    parser.add_argument("--round", type=int, default=5, help="longest wrk run, seconds (default 5)")
    parser.add_argument("-c", "--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument(
        "--door", default="chat", choices=sorted(DOORS), help="the door soaked (default chat)"
    )
    parser.add_argument("--tokens", type=int, default=16, help="content chunks in the mock's answer")
    parser.add_argument("--stream", action="store_true", help="streamed answers (in one burst) instead")
    parser.add_argument(
        "--runner-gc", action="store_true", help="gateway: the garbage collector set up as the runner does"
    )
    parser.add_argument(
        "--block-imports",
        metavar="NAMES",
        default="",
        help="comma-separated top-level packages made unimportable in the gateway and the import table "
        "(e.g. rich,pygments: what a production install without them would load)",
    )
    parser.add_argument(
        "--sweep",
        metavar="C,...",
        default="",
        help="after the soak, --repeat rounds of --repeat-requests at each of these concurrencies (e.g. "
        "1,64,256): the memory a request retains at each, for issue 20's 'cost per request flat from c=1 "
        "to c=256'",
    )
    parser.add_argument("--no-imports", action="store_true", help="skip the import table")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--logs", metavar="DIR", help="keep the logs in DIR (default: discarded)")
    args = parser.parse_args()
    if args.stream and DOORS[args.door].delta is None:
        parser.error(f"the {args.door} door does not stream")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")

    server_core = client_core = None
    if not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        cores = sorted(os.sched_getaffinity(0))
        server_core, client_core = cores[0], cores[1]
        os.sched_setaffinity(0, {client_core})

    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llm-gateway-soak-") as tmpdir:
        tmp = Path(tmpdir)
        if args.block_imports:
            (tmp / "sitecustomize.py").write_text(SITECUSTOMIZE)
            os.environ["BENCH_BLOCK_IMPORTS"] = args.block_imports
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp), os.environ.get("PYTHONPATH")]))
        if not args.no_imports:
            print("-- imports", file=sys.stderr)
            blocked = f" (blocked: {args.block_imports})" if args.block_imports else ""
            out.append(f"Where the idle RSS comes from{blocked}:\n\n" + import_table())
        logs = Path(args.logs) if args.logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        procs = Processes(logs)
        try:
            with mock_upstream(procs, client_core, 1.0) as (mock_url, _, mock_pid):
                port = free_port()
                argv = [
                    sys.executable, str(BENCH / "gateway_app.py"), "--provider", ROW,
                    "--upstream", mock_url, "--port", str(port),
                ]  # fmt: skip
                if args.runner_gc:
                    argv.append("--runner-gc")
                gateway = procs.start("gateway", argv, server_core)
                if not wait_for_port(port, gateway):
                    sys.exit(f"the gateway did not start: {procs.log_tail('gateway')}")
                pid = gateway.pid
                fresh = rss_mb(pid)
                body = soak_body(args.door, stream=args.stream, tokens=args.tokens)
                asyncio.run(warm_up(port, args.door, body, stream=args.stream, tokens=args.tokens))
                idle = rss_mb(pid)
                print(f"-- RSS fresh {fresh:.1f} MB, after {WARM_UP} requests {idle:.1f} MB", file=sys.stderr)
                url = f"http://127.0.0.1:{port}{DOORS[args.door].path}"
                ctx = {
                    "tmp": tmp,
                    "client_core": client_core,
                    "server_core": server_core,
                    "mock_pid": mock_pid,
                }
                soak, total = drive(args.requests, "soak", url, body, pid, WARM_UP, args, ctx)
                after = rss_mb(pid)
                repeated: list[Round] = []
                for index in range(args.repeat):
                    rounds, total = drive(
                        args.repeat_requests, f"repeat {index + 1}", url, body, pid, total, args, ctx
                    )
                    repeated.append(
                        Round(
                            f"repeat {index + 1}",
                            sum(r.requests for r in rounds),
                            total,
                            sum(r.requests for r in rounds) / sum(r.requests / r.rps for r in rounds),
                            sum(r.errors for r in rounds),
                            rounds[-1].rss_mb,
                            max((r.noise or 0.0) for r in rounds),
                        )
                    )
                swept: list[tuple[int, list[float]]] = []
                for level in [int(c) for c in args.sweep.split(",") if c]:
                    at_level = argparse.Namespace(**{**vars(args), "connections": level})
                    after_rounds: list[float] = []
                    for index in range(args.repeat):
                        rounds, total = drive(
                            args.repeat_requests,
                            f"c={level} {index + 1}",
                            url,
                            body,
                            pid,
                            total,
                            at_level,
                            ctx,
                        )
                        after_rounds.append(rounds[-1].rss_mb)
                    swept.append((level, after_rounds))
                procs.stop(gateway)
        finally:
            procs.stop_all()

    lines = [
        "| after | requests | in all | req/s | errors | RSS MB | noise |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| start (no request yet) | 0 | 0 | | | {fresh:.1f} | |",
        f"| {WARM_UP} warm-up requests (idle) | {WARM_UP} | {WARM_UP} | | | {idle:.1f} | |",
    ]
    for index, r in enumerate([*soak, *repeated]):
        label = f"soak round {index + 1}" if r.label == "soak" else f"{r.label} (>= {args.repeat_requests:,})"
        noise = f"{r.noise:.0%}" if r.noise is not None else "-"
        cells = [
            label,
            f"{r.requests:,}",
            f"{r.total:,}",
            f"{r.rps:,.0f}",
            str(r.errors),
            f"{r.rss_mb:.1f}",
            noise,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    what = f"streamed answers of {args.tokens} chunks in one burst" if args.stream else "plain answers"
    freeze = ", the runner's garbage-collector settings" if args.runner_gc else ""
    blocked = f", imports blocked: {args.block_imports}" if args.block_imports else ""
    door = f"{args.door} door ({DOORS[args.door].path})"
    out.append(
        f"RSS of the gateway (one uvicorn worker, OpenAI provider, {door}, {what}, c={args.connections}"
        f"{freeze}{blocked}):\n\n" + "\n".join(lines)
    )
    soaked = soak[-1].total
    growth = max(r.rss_mb for r in repeated) - after if repeated else math.nan
    steps = "".join(f" -> {r.rss_mb:.1f}" for r in repeated)
    errors = sum(r.errors for r in [*soak, *repeated])

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    out.append(
        "\n".join(
            [
                f"issue 20, {door}, idle RSS <= {IDLE_TARGET_MB:.0f} MB: {idle:.1f} MB after {WARM_UP} "
                f"requests ({fresh:.1f} before the first): {verdict(idle <= IDLE_TARGET_MB)}",
                f"issue 20, {door}, RSS after 100k requests <= {AFTER_TARGET_MB:.0f} MB: {after:.1f} MB "
                f"after {soaked:,}: "
                + (verdict(after <= AFTER_TARGET_MB) if soaked >= 100_000 else "not measured (too few)"),
                f"(no target) growth across {len(repeated)} repeated rounds of {args.repeat_requests:,}: "
                f"{after:.1f}{steps} MB, {growth:+.1f} MB"
                + (f" (under {GROWTH_LIMIT_MB:.0f} MB: no leak seen)" if growth < GROWTH_LIMIT_MB else "")
                + (f"; {errors} failed requests (non-2xx, timeouts or socket errors)" if errors else ""),
            ]
        )
    )
    if swept:
        out.append(sweep_report(swept, args.repeat_requests))
    print("\n\n".join(out))


def sweep_report(swept: list[tuple[int, list[float]]], requests: int) -> str:
    """The memory a request costs at each concurrency: the RSS after each round of `requests` (what the
    connections and requests in flight hold), and what the rounds after the first added (what a request
    retains). Flat: no level retains anything that shows (a leak would grow with every round)."""
    lines = [
        "| concurrency | RSS after each round, MB | growth after the first round | retained per request |",
        "| ---: | --- | ---: | ---: |",
    ]
    flat = True
    for level, rss in swept:
        growth = rss[-1] - rss[0]
        served = requests * (len(rss) - 1)
        per_request = f"{growth * 1e6 / served:,.0f} B" if served else "-"
        flat = flat and growth < GROWTH_LIMIT_MB
        cells = [str(level), " -> ".join(f"{r:.1f}" for r in rss), f"{growth:+.1f} MB", per_request]
        lines.append("| " + " | ".join(cells) + " |")
    levels = ", ".join(str(level) for level, _ in swept)
    verdict = "MET" if flat else "NOT MET"
    return (
        f"Memory per request at c={levels} ({requests:,} requests a round):\n\n" + "\n".join(lines) + "\n\n"
        f"issue 20, memory cost per request flat from c={swept[0][0]} to c={swept[-1][0]} (growth under "
        f"{GROWTH_LIMIT_MB:.0f} MB at every level): {verdict}"
    )


if __name__ == "__main__":
    main()
