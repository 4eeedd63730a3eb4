"""What each door costs: the same upstream called through /v1/chat/completions, /v1/messages and
/v1/responses, CPU per request of one gateway process, interleaved round after round.

Issue 20's target: each new door at c=64 costs at most 1.2x the CPU per request of the chat door for the same
upstream. One gateway (bench/gateway_app.py, the working tree) in front of the mock upstream with the provider
of `--row`; wrk POSTs each door's own body, asking for the same answer (`--tokens` content chunks), in turn,
so that drift hits every door alike; the table gives the median req/s, CPU µs per request and the ratio of
CPU per request to the chat door's.

    python bench/doors.py                  # anthropic row: chat and responses translated, messages native
    python bench/doors.py --row openai --rounds 5 --stream burst

With `--row openai` the Responses door is passed through to the upstream's own /v1/responses (the mock serves
it), the Messages door translated to chat completions. Everything it starts it stops, by PID.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import (
    BENCH,
    CLIENT_CORE,
    MODELS,
    SERVER_CORE,
    Processes,
    WrkResult,
    free_port,
    mock_upstream,
    request_body,
    wait_for_port,
    wrk,
)

SYSTEM = "You are a benchmark. Answer briefly."
QUESTION = "Say a few words about latency."


def door_bodies(row: str, tokens: int, stream: bool, paced: bool) -> dict[str, tuple[str, bytes]]:
    """Door name -> (path, body): the same conversation and output bound in each door's own shape."""
    model = MODELS[row]
    temperature = 0.5 if paced else 0
    messages: dict[str, Any] = {
        "model": model,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": tokens,
        "temperature": temperature,
    }
    responses: dict[str, Any] = {
        "model": model,
        "instructions": SYSTEM,
        "input": QUESTION,
        "max_output_tokens": tokens,
        "temperature": temperature,
        "store": False,  # the door's cost, not the store's
    }
    if stream:
        messages["stream"] = responses["stream"] = True
    doors = {
        "chat": ("/v1/chat/completions", request_body(row, stream=stream, tokens=tokens, paced=paced)),
        "messages": ("/v1/messages", json.dumps(messages).encode()),
        "responses": ("/v1/responses", json.dumps(responses).encode()),
    }
    return doors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--row", default="anthropic", choices=sorted(MODELS), help="provider (default anthropic)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-d", "--duration", type=int, default=4, help="seconds per measured run")
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16, help="content chunks per answer")
    parser.add_argument("--stream", choices=["burst", "paced"], help="streamed answers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    doors = door_bodies(args.row, args.tokens, args.stream is not None, args.stream == "paced")
    results: dict[str, list[WrkResult]] = {name: [] for name in doors}
    with tempfile.TemporaryDirectory(prefix="gateway-doors-") as directory:
        tmp = Path(directory)
        procs = Processes(tmp)
        try:
            with mock_upstream(procs, CLIENT_CORE, 1.0) as (mock_url, _, mock_pid):
                port = free_port()
                script = [str(BENCH / "gateway_app.py"), "--provider", args.row, "--upstream", mock_url]
                gateway = procs.start("gateway", [sys.executable, *script, "--port", str(port)], SERVER_CORE)
                if not wait_for_port(port, gateway):
                    sys.exit(f"the gateway did not start: {procs.log_tail('gateway')}")
                for number in range(1, args.rounds + 1):
                    line = []
                    for name, (path, body) in doors.items():
                        url = f"http://127.0.0.1:{port}{path}"
                        wrk(url, body, args.connections, 1, tmp, CLIENT_CORE)  # warm-up
                        result = wrk(
                            url, body, args.connections, args.duration, tmp, CLIENT_CORE, gateway.pid,
                            SERVER_CORE, mock_pid,
                        )  # fmt: skip
                        results[name].append(result)
                        line.append(f"{name} {result.rps:,.0f} ({result.errors} errors)")
                    print(f"round {number}: " + ", ".join(line) + " req/s", file=sys.stderr, flush=True)
        finally:
            procs.stop_all()
    unit = "stream" if args.stream else "request"
    chat_cpu = statistics.median(r.cpu_us_per_request or 0.0 for r in results["chat"])
    kind = f"{args.stream} streams" if args.stream else "requests"
    print(f"\n{args.row}, c={args.connections}, {args.rounds} rounds of {args.duration} s, {kind}")
    print(f"| door | req/s (median) | CPU us/{unit} (median) | CPU ratio to chat | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in results.items():
        cpu = statistics.median(r.cpu_us_per_request or 0.0 for r in runs)
        rps = statistics.median(r.rps for r in runs)
        errors = sum(r.errors for r in runs)
        print(f"| {name} | {rps:,.0f} | {cpu:,.0f} | {cpu / chat_cpu:.2f} | {errors} |")


if __name__ == "__main__":
    main()
