"""Claude Code as a real client: run `claude -p` against a base URL, and a recording Anthropic fake for it.

`run_claude(base_url, prompt, workdir, model)` runs the pinned `@anthropic-ai/claude-code` (tests/node)
in print mode, non-interactively and offline: its own throwaway HOME and config dir, an environment built
from nothing (no key, proxy or CLAUDE_* setting of this machine leaks in), telemetry, error reports,
auto-update and all non-essential traffic off, the `Read` tool pre-approved so a tool turn runs without a
prompt. It returns the parsed `--output-format json` result. With CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
set, the only connections it opens go to the base URL (checked with strace for 2.1.197); without it, it
resolves Anthropic's API host even when ANTHROPIC_BASE_URL points elsewhere.

`RecordingAnthropic` is a tiny Anthropic Messages API on loopback that records every request Claude Code
makes (method, path with its query, headers with secrets redacted, JSON body) and answers it validly,
streaming or not as the request asks. Main-loop answers (requests offering tools) come from a script,
`ReadThenAnswer` by default: turn 1 calls the `Read` tool on a file, turn 2 answers with text built from
the tool's result; with thinking on, both start with a signed thinking block, so a capture shows whether
Claude Code replays it. Other requests get a short text. It also answers `/v1/messages/count_tokens` and
`GET /v1/models`, and records a 404 for any other path, so a capture shows every call Claude Code made.

`capture(...)` runs one session against the fake and returns it sanitized for
tests/fixtures/claude_code/ (no key, fixed ids, temporary paths replaced by placeholders, every shape
kept); `python -m tests.support.claude_code` rewrites those fixtures.
"""

from __future__ import annotations

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
from starlette.routing import Route

from tests.support.requirements import NODE_DIR

PACKAGE = NODE_DIR / "node_modules" / "@anthropic-ai" / "claude-code"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"

KEY = "sk-ant-claude-code-test-0123456789"
MODEL = "claude-sonnet-4-6"
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
REDACTED = "<redacted>"

# What makes Claude Code a quiet, offline client of one endpoint. The first line alone implies the next
# four (and is what keeps it off the network); they are spelled out for older or newer versions.
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",  # no CLAUDE.md of the directories above the workdir
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


# -- running Claude Code ------------------------------------------------------------------------------------


def claude_executable() -> Path | None:
    """The native `claude` binary of the installed package, or None when tests/node has none.

    The package's postinstall hard-links its platform package's binary over `bin/claude.exe`, but npm
    may skip install scripts; so the binary is taken from the platform package itself (npm installs only
    the one matching this os, cpu and libc), and the placed copy is the fallback."""
    for candidate in sorted(PACKAGE.parent.glob("claude-code-*/claude*")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    placed = PACKAGE / "bin" / "claude.exe"
    if placed.is_file() and placed.stat().st_size > 1 << 20:  # not the few-byte stub
        return placed
    return None


def installed_version() -> str | None:
    manifest = PACKAGE / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.is_file() else None


@dataclass
class ClaudeResult:
    """One `claude -p` run: exit code, the parsed JSON result (None if stdout was not JSON), the raw
    output, the wall time in seconds and the throwaway HOME it ran with."""

    returncode: int
    output: dict[str, Any] | None
    stdout: str
    stderr: str
    seconds: float
    home: Path

    @property
    def text(self) -> str:
        return str((self.output or {}).get("result", ""))

    def describe(self) -> str:
        return (
            f"claude exited {self.returncode} after {self.seconds:.1f}s\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def claude_env(
    base_url: str, home: Path, *, key: str = KEY, bearer: bool = False, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The whole environment of a run, built from PATH alone: the key goes in ANTHROPIC_API_KEY (sent as
    `x-api-key`) or, with `bearer`, ANTHROPIC_AUTH_TOKEN (sent as `Authorization: Bearer`)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "SHELL": shutil.which("bash") or "/bin/sh",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": base_url,
        ("ANTHROPIC_AUTH_TOKEN" if bearer else "ANTHROPIC_API_KEY"): key,
        **QUIET_ENV,
    }
    env.update(extra or {})
    return env


def claude_command(
    executable: Path,
    prompt: str,
    model: str | None,
    allowed: Iterable[str],
    tools: Iterable[str] | None,
    max_turns: int,
) -> list[str]:
    return [
        str(executable),
        "-p",
        prompt,
        "--output-format",
        "json",
        "--max-turns",
        str(max_turns),
        "--permission-mode",
        "default",
        "--allowedTools",
        ",".join(allowed),
        "--strict-mcp-config",
        "--no-session-persistence",
        *(["--model", model] if model is not None else []),
        *(["--tools", ",".join(tools)] if tools is not None else []),
    ]


def run_claude(
    base_url: str,
    prompt: str,
    workdir: Path,
    model: str | None = MODEL,
    *,
    key: str = KEY,
    bearer: bool = False,
    home: Path | None = None,
    allowed: Iterable[str] = ("Read",),
    tools: Iterable[str] | None = None,
    max_turns: int = 4,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
    executable: Path | None = None,
) -> ClaudeResult:
    """Run `claude -p <prompt>` in `workdir` against `base_url` and return its JSON result.

    `model` None leaves Claude Code's default model. `home` (a fresh directory next to `workdir` when not
    given) is the run's HOME and config dir. Claude Code offers its default tool set (only `tools` when
    given); `allowed` tools run without a permission prompt; the run stops after `max_turns`."""
    executable = executable or claude_executable()
    if executable is None:
        raise FileNotFoundError(f"no claude binary under {PACKAGE.parent}: run `npm ci` in {NODE_DIR}")
    home = home or workdir.parent / f"{workdir.name}-home"
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        claude_command(executable, prompt, model, allowed, tools, max_turns),
        cwd=workdir,
        env=claude_env(base_url, home, key=key, bearer=bearer, extra=extra_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    try:
        output = json.loads(result.stdout)
    except ValueError:
        output = None
    output = output if isinstance(output, dict) else None
    return ClaudeResult(result.returncode, output, result.stdout, result.stderr, seconds, home)


# -- the recording fake -------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer: content blocks (text, tool_use, thinking with its signature), a stop reason."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"


Script = Callable[[dict[str, Any]], Reply]
SIGNATURE = "ZmFrZS1zaWduYXR1cmUtb2YtdGhlLXJlY29yZGluZy1mYWtl"


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user turn."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            blocks = content if isinstance(content, list) else []
            return [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    return []


def result_text(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


def thinks(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


@dataclass
class ReadThenAnswer:
    """The main loop's script: while the request offers `tool` and carries no tool result, call it on
    `path` (turn 1); when the last user turn carries a result, answer with its text (turn 2)."""

    path: str
    tool: str = "Read"
    calls: int = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        offered = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        results = tool_results(body)
        thinking = [{"type": "thinking", "thinking": "The answer is in the file.", "signature": SIGNATURE}]
        thinking = thinking if thinks(body) else []
        if results:
            return Reply([*thinking, {"type": "text", "text": f"The file says: {result_text(results[-1])}"}])
        if self.tool not in offered:
            return Reply([{"type": "text", "text": f"No {self.tool} tool was offered."}])
        self.calls += 1
        call = {
            "type": "tool_use",
            "id": f"toolu_rec{self.calls:04d}",
            "name": self.tool,
            "input": {"file_path": self.path},
        }
        return Reply([*thinking, {"type": "text", "text": "I'll read the file."}, call], "tool_use")


@dataclass
class RecordingAnthropic:
    """The ASGI app. `requests` holds every request, on any path, in order; a /v1/messages entry also
    holds the `reply` it was answered with (as a whole message, however it was sent)."""

    script: Script = field(default_factory=lambda: ReadThenAnswer("notes.txt"))
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        self._app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/{path:path}", self._other, methods=methods),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    def calls(self) -> list[str]:
        """`METHOD /path?query` of every request, in order."""
        return [f"{r['method']} {r['path']}" for r in self.requests]

    def messages(self) -> list[dict[str, Any]]:
        """The bodies of the /v1/messages requests."""
        return [r["body"] for r in self.requests if r["path"].split("?")[0] == "/v1/messages"]

    async def _record(self, request: Request) -> tuple[dict[str, Any], Any, Response | None]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: (REDACTED if k in SECRET_HEADERS else v) for k, v in request.headers.items()}
        entry = {"method": request.method, "path": path, "headers": headers, "body": body}
        self.requests.append(entry)
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if key is None and authorization.startswith("Bearer "):
            key = authorization[len("Bearer ") :]
        if key != self.key:
            return entry, body, _error(401, "authentication_error", "invalid x-api-key")
        if request.method == "POST" and not isinstance(body, dict):
            return entry, body, _error(400, "invalid_request_error", "The request body is not valid JSON.")
        return entry, body, None

    async def _messages(self, request: Request) -> Response:
        entry, body, refused = await self._record(request)
        if refused is not None:
            return refused
        reply = self.script(body) if body.get("tools") else Reply([{"type": "text", "text": "OK"}])
        number = len(self.requests)
        message = _message(f"msg_rec{number:04d}", body.get("model", MODEL), reply, _estimate(body))
        entry["reply"] = message
        headers = {"request-id": f"req_rec{number:04d}"}
        if not body.get("stream"):
            return JSONResponse(message, headers=headers)
        return StreamingResponse(
            _sse(stream_events(message)), media_type="text/event-stream", headers=headers
        )

    async def _count_tokens(self, request: Request) -> Response:
        _, body, refused = await self._record(request)
        return refused or JSONResponse({"input_tokens": _estimate(body)})

    async def _models(self, request: Request) -> Response:
        _, _, refused = await self._record(request)
        if refused is not None:
            return refused
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in (MODEL, "claude-haiku-4-5", "claude-opus-4-1")
        ]
        return JSONResponse(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )

    async def _other(self, request: Request) -> Response:
        await self._record(request)
        return _error(404, "not_found_error", f"{request.method} {request.url.path} is not served here")


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _estimate(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body)) // 4)


def _message(message_id: str, model: str, reply: Reply, input_tokens: int) -> dict[str, Any]:
    output_tokens = max(1, sum(len(json.dumps(block)) for block in reply.content) // 4)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    }


def stream_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Messages streaming sequence that delivers `message`."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            deltas: list[dict[str, Any]] = [
                {"type": "text_delta", "text": piece} for piece in _pieces(block["text"])
            ]
        elif kind == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            empty = {**block, "input": {}}
            arguments = json.dumps(block["input"])
            half = len(arguments) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in (arguments[:half], arguments[half:])
            ]
        else:
            raise ValueError(f"no stream encoding for a {kind} block")
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    yield "message_delta", {"type": "message_delta", "delta": stop, "usage": usage}
    yield "message_stop", {"type": "message_stop"}


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [text]


async def _sse(events: Iterable[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


# -- the fixture --------------------------------------------------------------------------------------------

SECRET_WORD = "PELICAN-42"
PROMPT = "Read(file_path={path}) and tell me the secret word."
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def slug(path: Path) -> str:
    """How Claude Code names a project directory after its path (~/.claude/projects/<slug>)."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path))


def sanitize(value: Any, replacements: dict[str, str]) -> Any:
    """`value` (JSON) safe to commit: each `replacements` key (a temp path, its slug...) replaced by its
    placeholder, per-run ids (session and message UUIDs, the 64-hex device id) by fixed ones, the kernel
    version and the loopback port by placeholders. Secrets were redacted when recorded."""
    text = json.dumps(value)
    for real, placeholder in sorted(replacements.items(), key=lambda item: -len(item[0])):
        text = text.replace(json.dumps(real)[1:-1], placeholder)
    uuids: dict[str, str] = {}
    text = UUID.sub(
        lambda m: uuids.setdefault(m.group(0), f"00000000-0000-4000-8000-{len(uuids) + 1:012d}"), text
    )
    text = re.sub(r"\b[0-9a-f]{64}\b", "0" * 64, text)
    text = re.sub(r"OS Version: [^\\]*", "OS Version: <os-version>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    return json.loads(text)


def capture(model: str | None, *, bearer: bool = False) -> dict[str, Any]:
    """Run one Read-then-answer session of the real Claude Code against the recording fake and return
    it sanitized: how it was run, every request (with the reply to each /v1/messages), and the result."""
    from tests.support.server import serve  # uvicorn: imported only where a server runs

    with tempfile.TemporaryDirectory(prefix="claude-code-capture-") as tmp:
        root = Path(tmp).resolve()
        workdir, home = root / "project", root / "home"
        workdir.mkdir()
        notes = workdir / "notes.txt"
        notes.write_text(f"The secret word is {SECRET_WORD}.\n")
        fake = RecordingAnthropic(script=ReadThenAnswer(str(notes)))
        prompt = PROMPT.format(path=notes)
        with serve(fake) as url:
            result = run_claude(url, prompt, workdir, model, home=home, bearer=bearer)
        if result.returncode != 0 or SECRET_WORD not in result.text:
            raise RuntimeError(result.describe())
        executable = claude_executable()
        assert executable is not None
        command = claude_command(executable, prompt, model, ("Read",), None, 4)
        env = claude_env("http://127.0.0.1:0", home, bearer=bearer)
        env = {
            k: (REDACTED if k in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN") else v) for k, v in env.items()
        }
        session = {
            "claude_code_version": installed_version(),
            "about": (
                "One real `claude -p` session against tests/support/claude_code.py's RecordingAnthropic: the "
                "fake answers turn 1 with a Read tool_use (after a signed thinking block, as thinking was "
                "requested) and turn 2 with the file's text. Every request in order, as sent, except: keys "
                "redacted, ids fixed, temp paths and the kernel version replaced by placeholders (so "
                "content-length no longer matches). Regenerate: python -m tests.support.claude_code"
            ),
            "command": ["claude", *command[1:]],
            "env": {k: v for k, v in env.items() if k != "PATH"},
            "requests": fake.requests,
            "result": result.output,
        }
        replacements = {str(workdir): "<WORKDIR>", str(home): "<HOME>", str(root): "<TMP>"}
        replacements[slug(workdir)] = "-WORKDIR-"
        return sanitize(session, replacements)  # type: ignore[no-any-return]


STEERING = ("model", "max_tokens", "stream", "thinking", "output_config", "context_management")


def shape(session: dict[str, Any]) -> dict[str, Any]:
    """What a session's requests look like, without their texts: calls, header names, beta values, body
    keys and the values that steer features, message roles and block types, tool names. Two sessions of
    one Claude Code version have the same shape; a new version that sends something else does not."""
    requests = []
    for request in session["requests"]:
        body = request["body"] if isinstance(request["body"], dict) else {}
        messages = body.get("messages") or []
        requests.append(
            {
                "call": f"{request['method']} {request['path']}",
                "headers": sorted(request["headers"]),
                "anthropic-beta": (request["headers"].get("anthropic-beta") or "").split(","),
                "anthropic-version": request["headers"].get("anthropic-version"),
                "keys": list(body),
                **{key: body[key] for key in STEERING if key in body},
                "system": [sorted(block) for block in body.get("system") or []],
                "messages": [
                    [m["role"], "str" if isinstance(m["content"], str) else [b["type"] for b in m["content"]]]
                    for m in messages
                ],
                "tools": [tool["name"] for tool in body.get("tools") or []],
            }
        )
    return {"claude_code_version": session["claude_code_version"], "requests": requests}


# (model flag, fixture file): Claude Code's default model, and a gateway-style name it does not know.
SESSIONS = ((None, "session.json"), ("openai/gpt-4o-mini", "session-gateway-model.json"))


def main() -> None:
    for model, name in SESSIONS:
        session = capture(model)
        path = FIXTURES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(session, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {len(session['requests'])} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
