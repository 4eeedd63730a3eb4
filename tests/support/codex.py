"""Codex CLI as a real client: run `codex exec` against a Responses API base URL, and a recording fake for it.

`run_codex(base_url, prompt, workdir, model)` runs the native binary of the pinned `@openai/codex`
(tests/node) as `codex exec --json`, non-interactively and offline: a throwaway HOME and CODEX_HOME whose
config.toml defines one custom model provider (`base_url`, the key read from the environment variable
named by `env_key`, `wire_api = "responses"`, no retries), an environment built from nothing (no key, proxy
or CODEX_* setting of this machine leaks in), analytics, the update check and the curated-plugins sync off,
approvals and sandbox bypassed (it runs in a temporary directory) so a shell tool call runs without a
prompt. It returns the parsed JSONL events. With QUIET_CONFIG, the only connections it opens go to the base
URL (checked with strace for 0.171.0: without `analytics.enabled = false` it resolves ab.chatgpt.com,
without `features.plugins = false` api.github.com and chatgpt.com).

`RecordingResponses` is a tiny OpenAI Responses API on loopback that records every request (method, path
with its query, headers with secrets redacted, JSON body; websocket upgrades too) and answers `POST
/v1/responses` validly, as a stream of Responses events or as one response object, as the request asks.
It keeps the responses it gave (unless `store` is false) so `previous_response_id` continues a
conversation; the script sees the whole conversation as `input`. Answers come from a script,
`ToolThenAnswer` by default: turn 1 calls a tool (Codex's `exec_command` with `cat notes.txt`), the turn
carrying its output is answered with that output's text, and a later turn with no new output is answered
from the last output in the history. Any other path is recorded and answered 404, so a capture shows every
call a client made.

`capture(...)` runs one session of the real Codex against the fake and returns it sanitized for
tests/fixtures/codex/ (no key, fixed ids, temporary paths and per-run values replaced by placeholders,
every shape kept); `python -m tests.support.codex` rewrites that fixture.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.support.requirements import NODE_DIR

PACKAGE = NODE_DIR / "node_modules" / "@openai" / "codex"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex"

KEY = "sk-codex-test-0123456789"
MODEL = "openai/gpt-4.1"  # a gateway model id: Codex has no metadata for it
PROVIDER = "target"  # the custom model provider's id in config.toml
KEY_ENV = "CODEX_TARGET_API_KEY"  # the provider's env_key: Codex sends it as `Authorization: Bearer`
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
REDACTED = "<redacted>"
SHELL_TOOL = "exec_command"  # Codex's shell tool (unified exec): {"cmd": "<shell command line>", ...}
# One of Codex's own models (0.171.0's default): for it Codex sends its tools in an `additional_tools` input
# item, the shell reachable only through the code-mode `exec` freeform tool of the `functions` namespace,
# whose input is JavaScript calling `tools.exec_command(...)`. A gateway offers `exec` to a chat upstream as
# the one-string function `functions__exec` (the namespace flattened; its parameter is `input`).
OWN_MODEL = "gpt-6.2-sol"
EXEC_FUNCTION = "functions__exec"

# What makes Codex a quiet, offline client of one endpoint (config.toml keys, checked with --strict-config).
QUIET_CONFIG = """\
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
"""
QUIET_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


# -- running Codex ------------------------------------------------------------------------------------------


def codex_executable() -> Path | None:
    """The native `codex` binary of the installed package, or None when tests/node has none.

    `bin/codex.js` only finds it and execs it: npm installs the one platform package that matches this
    os and cpu (`@openai/codex-<os>-<cpu>`, an alias of `@openai/codex@<version>-<os>-<cpu>`), whose
    `vendor/<target triple>/bin/codex` is the program. Running it directly skips node."""
    for candidate in sorted(PACKAGE.parent.glob("codex-*/vendor/*/bin/codex*")):
        if candidate.name in ("codex", "codex.exe") and os.access(candidate, os.X_OK):
            return candidate
    return None


def installed_version() -> str | None:
    manifest = PACKAGE / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.is_file() else None


def config_toml(base_url: str, model: str | None) -> str:
    """The throwaway CODEX_HOME's config.toml: one custom Responses provider at `base_url` and quiet."""
    model_line = f"model = {json.dumps(model)}\n" if model is not None else ""
    return (
        f"{model_line}model_provider = {json.dumps(PROVIDER)}\n"
        f"{QUIET_CONFIG}\n"
        f"[model_providers.{PROVIDER}]\n"
        f'name = "Gateway under test"\n'
        f"base_url = {json.dumps(base_url)}\n"
        f"env_key = {json.dumps(KEY_ENV)}\n"
        f'wire_api = "responses"\n'
        f"request_max_retries = 0\n"
        f"stream_max_retries = 0\n"
    )


@dataclass
class CodexResult:
    """One `codex exec --json` run: exit code, its JSONL events, the raw output, the wall time in seconds
    and the throwaway HOME it ran with."""

    returncode: int
    events: list[dict[str, Any]]
    stdout: str
    stderr: str
    seconds: float
    home: Path

    def items(self, kind: str) -> list[dict[str, Any]]:
        """The completed items of one type (agent_message, command_execution, error...)."""
        return [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == kind
        ]

    @property
    def text(self) -> str:
        """The last agent message."""
        messages = self.items("agent_message")
        return str(messages[-1].get("text", "")) if messages else ""

    @property
    def failed(self) -> bool:
        return any(e.get("type") in ("turn.failed", "error") for e in self.events)

    def describe(self) -> str:
        return (
            f"codex exited {self.returncode} after {self.seconds:.1f}s\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def codex_env(home: Path, *, key: str = KEY, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a run, built from PATH alone."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "SHELL": shutil.which("bash") or "/bin/sh",
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        KEY_ENV: key,
        **QUIET_ENV,
    }
    env.update(extra or {})
    return env


def codex_command(executable: Path, prompt: str, model: str | None) -> list[str]:
    return [
        str(executable),
        "exec",
        "--json",
        "--color",
        "never",
        "--skip-git-repo-check",  # the workdir is a temporary directory, not a git checkout
        "--dangerously-bypass-approvals-and-sandbox",  # run the tool call, no prompt, no bwrap sandbox
        "--ephemeral",  # no session files
        "--ignore-rules",  # no execpolicy .rules of this machine
        "--strict-config",  # a config key this version does not know is an error, not ignored
        *(["--model", model] if model is not None else []),
        prompt,
    ]


def run_codex(
    base_url: str,
    prompt: str,
    workdir: Path,
    model: str | None = MODEL,
    *,
    key: str = KEY,
    home: Path | None = None,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
    executable: Path | None = None,
) -> CodexResult:
    """Run `codex exec --json <prompt>` in `workdir` against the Responses API at `base_url` (Codex posts
    to `<base_url>/responses`, so it ends in /v1) and return its events.

    `model` None leaves Codex's default model. `home` (a fresh directory next to `workdir` when not given)
    is the run's HOME; CODEX_HOME is its `.codex`."""
    executable = executable or codex_executable()
    if executable is None:
        raise FileNotFoundError(f"no codex binary under {PACKAGE.parent}: run `npm ci` in {NODE_DIR}")
    home = home or workdir.parent / f"{workdir.name}-home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    (home / ".codex" / "config.toml").write_text(config_toml(base_url, model))
    started = time.monotonic()
    result = subprocess.run(
        codex_command(executable, prompt, model),
        cwd=workdir,
        env=codex_env(home, key=key, extra=extra_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    events = []
    for line in result.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return CodexResult(result.returncode, events, result.stdout, result.stderr, seconds, home)


# -- the recording fake -------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer: the output items of a response (message, function_call...)."""

    output: list[dict[str, Any]]


Script = Callable[[dict[str, Any]], Reply]


def message_item(text: str, item_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def offered_tools(body: dict[str, Any]) -> dict[str, str]:
    """The tools a request offers, name → type ("function", "custom", "web_search"...): the top-level
    `tools`, those of `additional_tools` input items (Codex sends its tools there for models it knows), and
    those inside `namespace` groups of either."""
    found: dict[str, str] = {}

    def add(tools: Any) -> None:
        for tool in tools or []:
            if not isinstance(tool, dict):
                continue
            if tool.get("type") == "namespace":
                add(tool.get("tools"))
            else:
                found.setdefault(str(tool.get("name") or tool.get("type")), str(tool.get("type")))

    add(body.get("tools"))
    for item in input_items(body):
        if item.get("type") == "additional_tools":
            add(item.get("tools"))
    return found


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A request's `input` as a list of items (a string is one user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return [i for i in items or [] if isinstance(i, dict)]


def output_text(item: dict[str, Any]) -> str:
    """The text of a tool output item (a string, or a list of input_text parts)."""
    output = item.get("output")
    if isinstance(output, str):
        return output
    return "\n".join(p.get("text", "") for p in output or [] if isinstance(p, dict))


OUTPUTS = ("function_call_output", "custom_tool_call_output")


def tool_outputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if i.get("type") in OUTPUTS]


def since_last_user_message(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = max((n for n, i in enumerate(items) if i.get("role") == "user"), default=-1)
    return items[last + 1 :]


@dataclass
class ToolThenAnswer:
    """The model's script, reading the whole conversation (`input` with the `previous_response_id` chain
    expanded): when the turn since the last user message carries a tool output, answer with its text;
    else, when the history holds one (a follow-up question), answer from the last; else call `tool` with
    `arguments` — as a function_call when the request offers it as a function, or, when it offers Codex's
    code-mode `exec` freeform tool instead (Codex's own models), as a custom_tool_call of `exec` whose
    JavaScript calls `tools.<tool>(arguments)`."""

    tool: str = SHELL_TOOL
    arguments: dict[str, Any] = field(default_factory=lambda: {"cmd": "cat notes.txt"})
    code_tool: str = "exec"
    calls: int = 0
    answers: int = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        items = input_items(body)
        fresh, earlier = tool_outputs(since_last_user_message(items)), tool_outputs(items)
        offered = offered_tools(body)
        if fresh or earlier:
            if fresh:
                return self._answer(f"The tool said: {output_text(fresh[-1])}".strip())
            return self._answer(f"Earlier: {output_text(earlier[-1])}".strip())
        self.calls += 1
        number, arguments = f"{self.calls:04d}", json.dumps(self.arguments)
        if offered.get(self.tool) == "function":
            call = {"type": "function_call", "id": f"fc_rec{number}", "call_id": f"call_rec{number}"}
            return Reply([{**call, "name": self.tool, "arguments": arguments, "status": "completed"}])
        if offered.get(self.code_tool) == "custom":
            source = f"text(await tools.{self.tool}({arguments}));"
            call = {"type": "custom_tool_call", "id": f"ctc_rec{number}", "call_id": f"call_rec{number}"}
            return Reply([{**call, "name": self.code_tool, "input": source, "status": "completed"}])
        self.calls -= 1
        return self._answer(f"No {self.tool} tool was offered.")

    def _answer(self, text: str) -> Reply:
        self.answers += 1
        return Reply([message_item(text, f"msg_rec{self.answers:04d}")])


@dataclass
class RecordingResponses:
    """The ASGI app. `requests` holds every request, on any path, in order; a /v1/responses entry also
    holds the `reply` it was answered with (as a whole response object, however it was sent)."""

    script: Script = field(default_factory=ToolThenAnswer)
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        self._app = Starlette(
            routes=[
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/{path:path}", self._other, methods=methods),
                WebSocketRoute("/{path:path}", self._websocket),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    def calls(self) -> list[str]:
        """`METHOD /path?query` of every request, in order."""
        return [f"{r['method']} {r['path']}" for r in self.requests]

    def responses(self) -> list[dict[str, Any]]:
        """The bodies of the POST /v1/responses requests, as sent."""
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/responses"]

    def conversation(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The whole conversation a request continues: its `previous_response_id` chain's inputs and
        outputs, then its own input."""
        previous = body.get("previous_response_id")
        if not previous:
            return input_items(body)
        history, response = self.stored[previous]
        return [*history, *copy.deepcopy(response["output"]), *input_items(body)]

    def _entry(self, method: str, url: Any, headers: Any, body: Any) -> dict[str, Any]:
        path = url.path + (f"?{url.query}" if url.query else "")
        recorded = {k: (REDACTED if k in SECRET_HEADERS else v) for k, v in headers.items()}
        entry = {"method": method, "path": path, "headers": recorded, "body": body}
        self.requests.append(entry)
        return entry

    async def _websocket(self, websocket: WebSocket) -> None:
        self._entry("WEBSOCKET", websocket.url, websocket.headers, None)
        await websocket.close(code=1008)

    async def _record(self, request: Request) -> tuple[dict[str, Any], Any, Response | None]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        entry = self._entry(request.method, request.url, request.headers, body)
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return entry, body, _error(401, "invalid_api_key", "Incorrect API key provided.", None)
        if request.method == "POST" and not isinstance(body, dict):
            return entry, body, _error(400, "invalid_json", "The request body is not valid JSON.", None)
        return entry, body, None

    async def _responses(self, request: Request) -> Response:
        entry, body, refused = await self._record(request)
        if refused is not None:
            return refused
        previous = body.get("previous_response_id")
        if previous and previous not in self.stored:
            message = f"Previous response with id '{previous}' not found."
            return _error(400, "previous_response_not_found", message, "previous_response_id")
        conversation = self.conversation(body)
        reply = self.script({**body, "input": conversation})
        response = _response(f"resp_rec{len(self.requests):04d}", body, reply)
        entry["reply"] = response
        if body.get("store", True) is not False:
            self.stored[response["id"]] = (conversation, response)
        if not body.get("stream"):
            return JSONResponse(response)
        return StreamingResponse(_sse(stream_events(response)), media_type="text/event-stream")

    async def _other(self, request: Request) -> Response:
        await self._record(request)
        return _error(404, "not_found", f"{request.method} {request.url.path} is not served here", None)


def _error(status: int, code: str, message: str, param: str | None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def _response(response_id: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    input_tokens = max(1, len(json.dumps(body)) // 4)
    output_tokens = max(1, len(json.dumps(reply.output)) // 4)
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model", MODEL),
        "output": reply.output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None, **(body.get("reasoning") or {})},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The Responses streaming sequence that delivers `response`: created, in_progress, per output item
    added / its parts and deltas / done, completed; `sequence_number` counting from 0."""
    numbers = iter(range(1 << 30))

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "sequence_number": next(numbers), **fields}

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        kind = item["type"]
        if kind == "message":
            added = {**item, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=index, item=added)
            for part_index, part in enumerate(item["content"]):
                at = {"item_id": item["id"], "output_index": index, "content_index": part_index}
                yield event("response.content_part.added", **at, part={**part, "text": ""})
                for piece in _pieces(part["text"]):
                    yield event("response.output_text.delta", **at, delta=piece, logprobs=[])
                yield event("response.output_text.done", **at, text=part["text"], logprobs=[])
                yield event("response.content_part.done", **at, part=part)
        elif kind == "function_call":
            added = {**item, "status": "in_progress", "arguments": ""}
            yield event("response.output_item.added", output_index=index, item=added)
            at = {"item_id": item["id"], "output_index": index}
            arguments = item["arguments"]
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                yield event("response.function_call_arguments.delta", **at, delta=piece)
            yield event("response.function_call_arguments.done", **at, name=item["name"], arguments=arguments)
        elif kind == "custom_tool_call":
            added = {**item, "status": "in_progress", "input": ""}
            yield event("response.output_item.added", output_index=index, item=added)
            at = {"item_id": item["id"], "output_index": index}
            for piece in _pieces(item["input"]):
                yield event("response.custom_tool_call_input.delta", **at, delta=piece)
            yield event("response.custom_tool_call_input.done", **at, input=item["input"])
        else:
            raise ValueError(f"no stream encoding for a {kind} item")
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [text]


async def _sse(events: Iterable[dict[str, Any]]) -> AsyncIterator[bytes]:
    for data in events:
        yield f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


# -- the fixture --------------------------------------------------------------------------------------------

SECRET_WORD = "PELICAN-42"
# The call is spelled out for the echo-style fakes behind a gateway, which call the tools a prompt mentions
# with the arguments of a `name(key=value)` mention; the recording fake calls exec_command regardless.
PROMPT = "Run exec_command(cmd=cat notes.txt) and tell me the secret word it holds."
# The same for OWN_MODEL, whose shell is JavaScript behind `exec`, spelled as each fake's echo model reads
# arguments: Anthropic's from `name(key=value)`, a value holding at most one level of parentheses (so the
# script keeps its result in a variable); Gemini's `name(…)` ends at the first `)`, so it is named alone and
# its argument given as a `key=value` hint, which ends at whitespace, a comma or a semicolon (so the script
# has none: `await(…)`, and `\x20` for the space of the command).
OWN_MODEL_PROMPTS = {
    "anthropic": (
        f'Run {EXEC_FUNCTION}(input=const r=await tools.exec_command({{cmd:"cat notes.txt"}});text(r)) '
        "and tell me the secret word it holds."
    ),
    "gemini": (
        f'Run {EXEC_FUNCTION} with input=text(await(tools.exec_command({{cmd:"cat\\x20notes.txt"}}))) '
        "and tell me the secret word it holds."
    ),
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sanitize(value: Any, replacements: dict[str, str]) -> Any:
    """`value` (JSON) safe to commit and stable across runs: each `replacements` key (a temp path...)
    replaced by its placeholder, UUIDs (thread, turn, window, installation, item ids) by fixed ones in order
    of appearance, the loopback port, the date, the OS in the user agent, epoch milliseconds and the exec
    tool's per-run chunk id and wall time by placeholders. Secrets were redacted when recorded."""
    text = json.dumps(value)
    for real, placeholder in sorted(replacements.items(), key=lambda item: -len(item[0])):
        text = text.replace(json.dumps(real)[1:-1], placeholder)
    uuids: dict[str, str] = {}
    text = UUID.sub(
        lambda m: uuids.setdefault(m.group(0), f"00000000-0000-4000-8000-{len(uuids) + 1:012d}"), text
    )
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}(?=</current_date>)", "<date>", text)
    text = re.sub(r"<timezone>[^<]*</timezone>", "<timezone><tz></timezone>", text)
    text = re.sub(r"(codex_exec/[0-9.]+) \([^;)]*;", r"\1 (<os>;", text)
    text = re.sub(r"(_unix_ms\\?\"\s*:\s*)\d+", r"\g<1>0", text)
    text = re.sub(r"(Chunk ID: |chunk_id\W+)[0-9a-f]+", r"\g<1>0", text)
    text = re.sub(r"(Wall time:? )[0-9.]+( seconds)", r"\g<1>0\2", text)
    text = re.sub(r"(wall_time_seconds\W+)[0-9.e-]+", r"\g<1>0", text)
    return json.loads(text)


def capture(model: str | None) -> dict[str, Any]:
    """Run one shell-then-answer session of the real Codex against the recording fake and return it
    sanitized: how it was run (command, environment, config.toml), every request (with the reply to each
    POST /v1/responses), and its JSONL events."""
    from tests.support.server import serve  # uvicorn: imported only where a server runs

    with tempfile.TemporaryDirectory(prefix="codex-capture-") as tmp:
        root = Path(tmp).resolve()
        workdir, home = root / "project", root / "home"
        workdir.mkdir()
        (workdir / "notes.txt").write_text(f"The secret word is {SECRET_WORD}.\n")
        fake = RecordingResponses()
        with serve(fake) as url:
            result = run_codex(url + "/v1", PROMPT, workdir, model, home=home)
            config = (home / ".codex" / "config.toml").read_text()
        if result.returncode != 0 or SECRET_WORD not in result.text:
            raise RuntimeError(result.describe())
        executable = codex_executable()
        assert executable is not None
        env = {k: (REDACTED if k == KEY_ENV else v) for k, v in codex_env(home).items() if k != "PATH"}
        session = {
            "codex_version": installed_version(),
            "about": (
                "One real `codex exec` session against tests/support/codex.py's RecordingResponses: the fake "
                "answers turn 1 with an exec_command function_call (`cat notes.txt`) and turn 2 with the "
                "tool output's text. Every request in order, as sent, except: the key redacted, UUIDs fixed, "
                "temp paths, port, date, OS and timings replaced by placeholders (so content-length no "
                "longer matches), client_metadata keys sorted. Regenerate: python -m tests.support.codex"
            ),
            "command": ["codex", *codex_command(executable, PROMPT, model)[1:]],
            "env": env,
            "config_toml": config,
            "requests": fake.requests,
            "events": result.events,
        }
        for request in fake.requests:  # a map in Codex: its key order changes from run to run
            body = request["body"]
            if isinstance(body, dict) and isinstance(body.get("client_metadata"), dict):
                body["client_metadata"] = dict(sorted(body["client_metadata"].items()))
        replacements = {str(workdir): "<WORKDIR>", str(home): "<HOME>", str(root): "<TMP>"}
        return sanitize(session, replacements)  # type: ignore[no-any-return]


STEERING = (
    "model",
    "stream",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "include",
    "text",
    "service_tier",
)


def shape(session: dict[str, Any]) -> dict[str, Any]:
    """What a session's requests look like, without their texts: calls, header names, body keys and the
    values that steer features, input item types and roles with their keys, tools by type and name (with
    the names inside namespaces). Two sessions of one Codex version have the same shape; a new version that
    sends something else does not."""
    requests = []
    for request in session["requests"]:
        body = request["body"] if isinstance(request["body"], dict) else {}
        additional = [t for i in input_items(body) if i.get("type") == "additional_tools" for t in i["tools"]]
        tools = []
        for where, tool in [("tools", t) for t in body.get("tools") or []] + [
            ("input", t) for t in additional
        ]:
            nested = [[t.get("type"), t.get("name")] for t in tool.get("tools") or []]
            tools.append([where, tool.get("type"), tool.get("name"), *([nested] if nested else [])])
        requests.append(
            {
                "call": f"{request['method']} {request['path']}",
                "headers": sorted(request["headers"]),
                "keys": list(body),
                **{key: body[key] for key in STEERING if key in body},
                "client_metadata": sorted(body.get("client_metadata") or {}),
                "input": [[item.get("type"), item.get("role"), sorted(item)] for item in input_items(body)],
                "tools": tools,
            }
        )
    return {"codex_version": session["codex_version"], "requests": requests}


# (model flag, fixture file): a gateway-style model id Codex has no metadata for (what a gateway user runs:
# the classic shape, tools at the top level), and Codex's default model, one of its own (its tools in an
# `additional_tools` input item, behind the code-mode `exec` freeform tool).
SESSIONS = ((MODEL, "session.json"), (None, "session-default-model.json"))


def main() -> None:
    for model, name in SESSIONS:
        session = capture(model)
        path = FIXTURES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(session, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {len(session['requests'])} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
