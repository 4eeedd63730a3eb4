"""A fake Anthropic Messages API on loopback: native wire format, a deterministic model, the API's strictness.

It validates requests the way the real API does and answers failures with Anthropic's error envelope
(`{"type": "error", "error": {"type", "message"}, "request_id"}`): a wrong key (x-api-key or Bearer) is a
401; a missing `anthropic-version`, unknown top-level fields, a missing `max_tokens`, `temperature` > 1,
`system` messages (under 2023-06-01 without the mid-conversation-system beta), a first turn that is not
`user`, turns that do not alternate, empty text, tool_result blocks that answer no tool_use of the previous
assistant turn (and tool_use blocks left unanswered), tool blocks in a request without tools, forced tools
with thinking, and structured-output schemas the API refuses are all 400s. Two of these are the API's
older, stricter rules (the current docs say consecutive same-role turns are combined and no longer insist
on a user turn first): the fake keeps them so tests prove the gateway sends canonical, alternating turns
that every API version accepts.

The model: it echoes the text of the last user turn (without `<system-reminder>` spans, the context Claude
Code adds to it); with thinking enabled it thinks first; it calls the tools that the prompt names
(`get_weather(city=Paris)` or just `get_weather`, several names → parallel calls; a value may hold one
level of parentheses) or that `tool_choice` forces, with arguments built from the schema; it answers a
turn of tool results with "Tool results: …"; with `output_config.format` it answers JSON generated from
the schema. It applies `stop_sequences` and `max_tokens` (one token per word). Every request is recorded in
`requests`.

`POST /v1/messages/count_tokens` takes only the fields that endpoint has (a `max_tokens` is a 400, as are the
rules above) and answers `{"input_tokens": N}`: the words of the messages, the system prompt and the tool
definitions. Fields that belong to a beta (`context_management`, `mcp_servers`) are accepted only with one of
their `anthropic-beta` values, as the real API does; beta values themselves pass (Anthropic's own).

Scripted behaviour, by the last user text: `FAIL <status>` answers that HTTP error; `FAIL STREAM <type>`
sends `event: error` of that type after the first text delta (an HTTP error when not streaming); `CUT
STREAM` ends the stream before `message_stop`; `REFUSE` stops with `refusal`; a prompt containing `CACHED`
reports prompt-cache reads and writes in the usage.

Thinking is signed: each `thinking` block's `signature` (and each `redacted_thinking` block's `data`, sent
for a prompt containing `REDACT`) is an HMAC of the model and the thinking under the fake's `signing_key`,
and an assistant turn that comes back with a missing, altered or foreign signature (another model's, another
service's: the Bedrock fake signs with its own key) is a 400, as the real API answers it.

Prompt caching: `cache_control` breakpoints (tools, then system, then messages) are checked as the API checks
them (at most 4; `type` ephemeral, `ttl` 5m or 1h, and a 1h breakpoint never after a 5m one), and served by
a real prefix cache (`tests/fakes/prompt_cache.py`): the first request writes each prefix, later ones read it,
and `cache` holds the totals reported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.prompt_cache import Breakpoint, PromptCache, prefix_key

KEY = "sk-ant-upstream-test-0123456789"
#: What this fake signs thinking with; another service (the Bedrock fake) has its own.
SIGNING_KEY = b"fake-anthropic-thinking-signing-key"
REDACTED = "(redacted thinking)"
VERSIONS = ("2023-06-01", "2026-10-21")
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest")

TOP_LEVEL = {
    "model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k", "tools",
    "tool_choice", "thinking", "output_config", "metadata", "service_tier", "stream", "cache_control",
    "container", "diagnostics", "inference_geo", "speed", "user_profile_id", "workspace_id",
}  # fmt: skip
COUNT_TOP_LEVEL = {
    "model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control",
    "speed",
}  # fmt: skip
# The beta that allows `role: "system"` turns under 2023-06-01 (Claude Code sends it with them).
MID_CONVERSATION_SYSTEM = "mid-conversation-system-2026-04-07"
# Fields the API knows only with one of these anthropic-beta values ("Extra inputs are not permitted" else).
BETA_FIELDS = {
    "context_management": {"context-management-2025-06-27", "compact-2026-01-12"},
    "mcp_servers": {"mcp-client-2025-04-04", "mcp-client-2025-11-20"},
}
USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
STATUS_OF = {kind: status for status, kind in ERROR_TYPES.items()}


class Rejected(Exception):
    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}


@dataclass
class Recorded:
    headers: dict[str, str]
    body: Any
    path: str = "/v1/messages"


@dataclass
class FakeAnthropic:
    """The ASGI app. `requests` holds every request to /v1/messages (and its count_tokens), valid or not."""

    key: str = KEY
    requests: list[Recorded] = field(default_factory=list)
    #: The prompt cache behind `cache_control`, with the totals of the reads and writes reported.
    cache: PromptCache = field(default_factory=PromptCache)
    #: Write each stream in one piece (many events to a read) instead of event by event.
    burst: bool = False
    _count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    @property
    def last(self) -> dict[str, Any]:
        """The body of the last request."""
        body: dict[str, Any] = self.requests[-1].body
        return body

    # -- endpoints -------------------------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        try:
            self._check_headers(request)
        except Rejected as exc:
            return error_response(exc.status, exc.message)
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in MODELS
        ]
        return JSONResponse({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})

    async def _messages(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(Recorded(dict(request.headers), body))
        self._count += 1
        try:
            version = self._check_headers(request)
            if not isinstance(body, dict):
                raise Rejected("The request body is not valid JSON.")
            validate(body, version, betas_of(request))
            prompt = last_user_text(body)
            scripted = re.fullmatch(r"FAIL (\d{3})", prompt)
            stream_fault = re.fullmatch(r"FAIL STREAM (\w+)", prompt)
            if scripted:
                status = int(scripted.group(1))
                retry = {"retry-after": "0"} if status in (429, 529) else {}
                raise Rejected(f"scripted failure {status}", status, retry)
            if stream_fault and not body.get("stream"):
                raise Rejected(f"scripted {stream_fault.group(1)}", STATUS_OF.get(stream_fault.group(1), 500))
        except Rejected as exc:
            return error_response(exc.status, exc.message, exc.headers)
        message = respond(body, f"msg_fake{self._count:04d}", self.cache)
        if not body.get("stream"):
            return JSONResponse(message, headers={"request-id": f"req_fake{self._count:04d}"})
        fault = stream_fault.group(1) if stream_fault else ("CUT" if prompt == "CUT STREAM" else None)
        return StreamingResponse(
            (_encode_at_once if self.burst else _encode)(stream_events(message, fault=fault)),
            media_type="text/event-stream",
            headers={"request-id": f"req_fake{self._count:04d}", "cache-control": "no-cache"},
        )

    async def _count_tokens(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(Recorded(dict(request.headers), body, request.url.path))
        try:
            version = self._check_headers(request)
            if not isinstance(body, dict):
                raise Rejected("The request body is not valid JSON.")
            validate_count(body, version, betas_of(request))
        except Rejected as exc:
            return error_response(exc.status, exc.message, exc.headers)
        return JSONResponse({"input_tokens": count_input(body)})

    def _check_headers(self, request: Request) -> str:
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if key is None and authorization.startswith("Bearer "):
            key = authorization[len("Bearer ") :]
        if key is None:
            raise Rejected("x-api-key header is required", 401)
        if key != self.key:
            raise Rejected("invalid x-api-key", 401)
        version = request.headers.get("anthropic-version")
        if version is None:
            raise Rejected("anthropic-version: header is required")
        if version not in VERSIONS:
            raise Rejected(f"anthropic-version: invalid version '{version}'")
        return version


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_fake_error",
    }
    return JSONResponse(body, status_code=status, headers=headers)


# -- validation ---------------------------------------------------------------------------------------------


def betas_of(request: Request) -> frozenset[str]:
    """The request's anthropic-beta values."""
    header = ",".join(request.headers.getlist("anthropic-beta"))
    return frozenset(value.strip() for value in header.split(",") if value.strip())


def _check_fields(body: dict[str, Any], allowed: set[str], betas: frozenset[str]) -> None:
    for key in body:
        if key not in allowed and not (key in BETA_FIELDS and BETA_FIELDS[key] & betas):
            raise Rejected(f"{key}: Extra inputs are not permitted")


def sign_thinking(model: str, thinking: str, signing_key: bytes = SIGNING_KEY) -> str:
    """The signature of one thinking block (a redacted block's `data` signs `REDACTED`)."""
    digest = hmac.new(signing_key, f"{model}\0{thinking}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _validate_signatures(body: dict[str, Any], signing_key: bytes) -> None:
    """Every thinking block an assistant turn brings back must carry the signature this service gave it."""
    for i, message in enumerate(body["messages"]):
        if message.get("role") != "assistant":
            continue
        for j, block in enumerate(blocks_of(message)):
            kind, where = block.get("type"), f"messages.{i}.content.{j}"
            if kind == "thinking":
                expected = sign_thinking(body["model"], str(block.get("thinking")), signing_key)
                if not hmac.compare_digest(str(block.get("signature")), expected):
                    raise Rejected(f"{where}: Invalid `signature` in `thinking` block")
            elif kind == "redacted_thinking":
                expected = sign_thinking(body["model"], REDACTED, signing_key)
                if not hmac.compare_digest(str(block.get("data")), expected):
                    raise Rejected(f"{where}: Invalid `data` in `redacted_thinking` block")


def validate(
    body: dict[str, Any], version: str, betas: frozenset[str] = frozenset(), signing_key: bytes = SIGNING_KEY
) -> None:
    """Raise `Rejected` for what the real API refuses (thinking signed with another key included)."""
    _check_fields(body, TOP_LEVEL, betas)
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            raise Rejected(f"{key}: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model.startswith("claude-"):
        raise Rejected(f"model: {model}", 404)
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise Rejected("max_tokens: Input should be a valid integer greater than or equal to 0")
    limit = output_limit(model)
    if max_tokens > limit:
        raise Rejected(f"max_tokens: {max_tokens} > {limit}, the maximum number of output tokens for {model}")
    if model.startswith(("claude-opus-4-7", "claude-opus-4-8")) and "temperature" in body:
        raise Rejected("temperature is deprecated for this model.")
    for key, low, high in (("temperature", 0, 1), ("top_p", 0, 1)):
        value = body.get(key)
        if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
            raise Rejected(f"{key}: Input should be less than or equal to {high}")
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise Rejected("stop_sequences: Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise Rejected("metadata: Extra inputs are not permitted")
    _validate_system(body.get("system"))
    tool_names = _validate_tools(body)
    thinking = _validate_thinking(body)
    _validate_messages(body["messages"], system_turns(version, betas), tool_names, thinking)
    _validate_output_config(body.get("output_config"), model)
    _validate_cache_control(body)
    _validate_signatures(body, signing_key)


def validate_count(body: dict[str, Any], version: str, betas: frozenset[str] = frozenset()) -> None:
    """Raise `Rejected` for a count_tokens body the real API refuses: the create rules but for output."""
    _check_fields(body, COUNT_TOP_LEVEL, betas)
    for key in ("model", "messages"):
        if key not in body:
            raise Rejected(f"{key}: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model.startswith("claude-"):
        raise Rejected(f"model: {model}", 404)
    _validate_system(body.get("system"))
    tool_names = _validate_tools(body)
    thinking = _validate_thinking(body)
    _validate_messages(body["messages"], system_turns(version, betas), tool_names, thinking)
    _validate_output_config(body.get("output_config"), model)


def count_input(body: dict[str, Any]) -> int:
    """The fake tokenizer's input count: words of the messages, the system prompt and the tools."""
    parts = [m.get("content") for m in body["messages"]] + [body.get(key) for key in ("system", "tools")]
    return sum(words(json.dumps(part)) for part in parts if part)


def output_limit(model: str) -> int:
    if model.startswith("claude-3-5-"):
        return 8192
    if model.startswith("claude-3-") and not model.startswith("claude-3-7-"):
        return 4096
    if model.startswith(("claude-opus-4-0", "claude-opus-4-1")):
        return 32000
    return 64000


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Rejected("system: Input should be a valid string or list")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise Rejected(f"system.{i}.type: Input should be 'text'")
        if not block.get("text"):
            raise Rejected("system: text content blocks must be non-empty")


def _validate_tools(body: dict[str, Any]) -> set[str]:
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise Rejected("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            name = tool.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                raise Rejected(
                    f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if name in names:
                raise Rejected("tools: Tool names must be unique.")
            names.add(name)
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Rejected(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            extra = set(tool) - {"name", "description", "input_schema", "strict", "cache_control", "type"}
            if extra:
                raise Rejected(f"tools.{i}.custom.{sorted(extra)[0]}: Extra inputs are not permitted")
    choice = body.get("tool_choice")
    if choice is not None:
        if tools is None:
            raise Rejected("tool_choice: tool_choice may only be specified while providing tools")
        kind = choice.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            raise Rejected("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if kind == "tool" else set())
        if kind == "none":
            allowed = {"type"}
        extra = set(choice) - allowed
        if extra:
            raise Rejected(f"tool_choice.{kind}.{sorted(extra)[0]}: Extra inputs are not permitted")
        if kind == "tool" and choice.get("name") not in names:
            raise Rejected(f"tool_choice.name: Tool '{choice.get('name')}' not found in 'tools'")
    return names


def _validate_thinking(body: dict[str, Any]) -> bool:
    """Whether thinking is enabled."""
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = thinking.get("type")
    if kind == "disabled":
        return False
    if kind not in ("enabled", "adaptive"):
        raise Rejected("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Rejected("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if "max_tokens" in body and budget >= body["max_tokens"]:
            raise Rejected("`max_tokens` must be greater than `thinking.budget_tokens`")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise Rejected("Thinking may not be enabled when tool_choice forces tool use.")
    if body.get("temperature") not in (None, 1, 1.0):
        raise Rejected("`temperature` may only be set to 1 when thinking is enabled.")
    if body.get("top_k") is not None:
        raise Rejected("`top_k` may not be set when thinking is enabled.")
    return True


Turn = tuple[int, str, list[dict[str, Any]]]  # (index in messages, role, blocks)
NON_EMPTY = "all messages must have non-empty content except for the optional final assistant message"


def system_turns(version: str, betas: frozenset[str]) -> bool:
    """Whether `role: "system"` turns may sit in `messages`: from 2026-10-21 on, or with their beta."""
    return version != "2023-06-01" or MID_CONVERSATION_SYSTEM in betas


def _validate_messages(messages: Any, system_ok: bool, tool_names: set[str], thinking: bool) -> None:
    if not isinstance(messages, list) or not messages:
        raise Rejected("messages: at least one message is required")
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        extra = set(message) - {"role", "content"}
        if extra:
            raise Rejected(f"messages.{i}.{sorted(extra)[0]}: Extra inputs are not permitted")
        if role == "system" and system_ok:
            continue  # mid-conversation system messages: from 2026-10-21 on, or with their beta
        if role not in ("user", "assistant"):
            raise Rejected(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise Rejected(f"messages.{i}.content: Input should be a valid string or list")
        if not content and not (i == len(messages) - 1 and role == "assistant"):
            raise Rejected(f"messages.{i}: {NON_EMPTY}")
        blocks = blocks_of(message)
        for j, block in enumerate(blocks):
            _validate_block(block, role, f"messages.{i}.content.{j}")
        if turns and turns[-1][1] == role:
            raise Rejected(
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" '
                "roles in a row"
            )
        if not turns and role != "user":
            raise Rejected('messages: first message must use the "user" role')
        turns.append((i, role, blocks))
    uses_tools = any(b["type"] in ("tool_use", "tool_result") for _, _, blocks in turns for b in blocks)
    if uses_tools and not tool_names:
        raise Rejected("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    for n, turn in enumerate(turns):
        if turn[1] == "user":
            _validate_results(turn, turns[n - 1] if n else None)
        elif n + 1 < len(turns):
            _validate_answered(turn, turns[n + 1])
    if thinking and len(turns) >= 2 and any(b["type"] == "tool_result" for b in turns[-1][2]):
        i, _, blocks = turns[-2]
        if blocks[0]["type"] not in ("thinking", "redacted_thinking"):
            raise Rejected(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{blocks[0]['type']}`. When `thinking` is enabled, a final `assistant` message must start "
                "with a thinking block."
            )


def _validate_results(turn: Turn, previous: Turn | None) -> None:
    """Each tool_result answers a tool_use of the assistant turn just before, and comes first."""
    i, _, blocks = turn
    calls = {b["id"] for b in previous[2] if b["type"] == "tool_use"} if previous else set()
    seen_other = False
    for j, block in enumerate(blocks):
        if block["type"] != "tool_result":
            seen_other = True
        elif seen_other:
            raise Rejected(f"messages.{i}.content.{j}: tool_result blocks must come first in a user turn")
        elif block["tool_use_id"] not in calls:
            raise Rejected(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )


def _validate_answered(turn: Turn, following: Turn) -> None:
    """Each tool_use is answered by a tool_result in the next turn."""
    answered = {b["tool_use_id"] for b in following[2] if b["type"] == "tool_result"}
    missing = [b["id"] for b in turn[2] if b["type"] == "tool_use" and b["id"] not in answered]
    if missing:
        raise Rejected(
            f"messages.{turn[0]}: `tool_use` ids were found without `tool_result` blocks immediately after: "
            f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
            "the next message."
        )


def _validate_block(block: Any, role: str, where: str) -> None:
    if not isinstance(block, dict):
        raise Rejected(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in (USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS):
        raise Rejected(f"{where}.type: '{kind}' blocks are not allowed in '{role}' messages")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise Rejected("messages: text content blocks must be non-empty")
    elif kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_TYPES:
                raise Rejected(
                    f"{where}.image.source.base64.media_type: Input should be one of {sorted(IMAGE_TYPES)}"
                )
            if not source.get("data") or str(source["data"]).startswith("data:"):
                raise Rejected(f"{where}.image.source.base64.data: invalid base64 data")
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                raise Rejected(f"{where}.image.source.url.url: invalid URL")
        else:
            raise Rejected(f"{where}.image.source: Input tag '{source.get('type')}' does not match")
    elif kind == "document":
        source = block.get("source") or {}
        if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
            raise Rejected(f"{where}.document.source: only base64 PDF documents in this fake")
    elif kind == "tool_use":
        if not TOOL_ID.match(str(block.get("id", ""))):
            raise Rejected(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        if not isinstance(block.get("input"), dict):
            raise Rejected(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not TOOL_ID.match(str(block.get("tool_use_id", ""))):
            raise Rejected(f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        content = block.get("content", "")
        if not isinstance(content, (str, list)):
            raise Rejected(f"{where}.tool_result.content: Input should be a valid string or list")
    elif kind == "thinking" and not block.get("signature"):
        raise Rejected(f"{where}.thinking.signature: Field required")


def _validate_output_config(config: Any, model: str) -> None:
    if config is None:
        return
    extra = set(config) - {"format", "effort"}
    if extra:
        raise Rejected(f"output_config.{sorted(extra)[0]}: Extra inputs are not permitted")
    if config.get("effort") not in (None, "low", "medium", "high", "xhigh", "max"):
        raise Rejected("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    format_ = config.get("format")
    if format_ is None:
        return
    if model.startswith(("claude-3", "claude-opus-4-0", "claude-sonnet-4-0")):
        raise Rejected(f"output_config.format: structured outputs are not supported by {model}")
    if format_.get("type") != "json_schema" or not isinstance(format_.get("schema"), dict):
        raise Rejected("output_config.format.type: Input should be 'json_schema'")
    for path, node in _schema_nodes(format_["schema"], "schema"):
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            raise Rejected(
                f"output_config.format.{path}: For 'object' type, 'additionalProperties' must be explicitly "
                "set to false"
            )
        for keyword in ("minimum", "maximum", "minLength", "maxLength", "pattern", "multipleOf"):
            if keyword in node:
                raise Rejected(f"output_config.format.{path}: '{keyword}' is not supported")


def _schema_nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for key, sub in (node.get("properties") or {}).items():
        yield from _schema_nodes(sub, f"{path}.properties.{key}")
    for key, sub in (node.get("$defs") or {}).items():
        yield from _schema_nodes(sub, f"{path}.$defs.{key}")
    if "items" in node:
        yield from _schema_nodes(node["items"], f"{path}.items")
    for key in ("anyOf", "allOf"):
        for k, sub in enumerate(node.get(key) or ()):
            yield from _schema_nodes(sub, f"{path}.{key}.{k}")


# -- the model ----------------------------------------------------------------------------------------------


def prompt_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every block of the prompt in cache order: tools, system, then each message's content."""
    system = body.get("system")
    system_blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system or ())
    message_blocks = [b for m in body.get("messages") or () if isinstance(m, dict) for b in blocks_of(m)]
    return [*(body.get("tools") or ()), *system_blocks, *message_blocks]


MAX_BREAKPOINTS = 4
TTL_ORDER = {"1h": 0, "5m": 1}


def _validate_cache_control(body: dict[str, Any]) -> None:
    blocks = prompt_blocks(body)
    controls = [b["cache_control"] for b in blocks if isinstance(b, dict) and "cache_control" in b]
    if len(controls) > MAX_BREAKPOINTS:
        found = len(controls)
        limit = f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        raise Rejected(limit)
    previous = "1h"
    for control in controls:
        if not isinstance(control, dict) or control.get("type") != "ephemeral":
            raise Rejected("cache_control.type: Input should be 'ephemeral'")
        ttl = control.get("ttl", "5m")
        if ttl not in TTL_ORDER:
            raise Rejected("cache_control.ttl: Input should be '5m' or '1h'")
        if TTL_ORDER[ttl] < TTL_ORDER[previous]:
            raise Rejected(
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. "
                "Note that blocks are processed in the following order: `tools`, `system`, `messages`."
            )
        previous = ttl


def cache_breakpoints(body: dict[str, Any]) -> tuple[list[Breakpoint], int]:
    """(the request's breakpoints, the words of the whole prompt, tools included)."""
    prefix: list[Any] = []
    tokens = 0
    points: list[Breakpoint] = []
    for block in prompt_blocks(body):
        bare = {k: v for k, v in block.items() if k != "cache_control"}
        prefix.append(bare)
        tokens += words(json.dumps(bare))
        if "cache_control" in block:
            points.append(Breakpoint(prefix_key(body["model"], prefix), tokens))
    return points, tokens


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or ())


# Context a client adds to the user's turn (Claude Code's convention): the model answers the user, not these.
REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.DOTALL)


def last_user_text(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages") or () if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return ""
    texts = (b["text"] for b in blocks_of(users[-1]) if b.get("type") == "text" and b.get("text"))
    return " ".join(text for text in (REMINDER.sub("", text).strip() for text in texts) if text)


def words(text: str) -> int:
    return len(text.split())


def respond(
    body: dict[str, Any],
    message_id: str,
    cache: PromptCache | None = None,
    signing_key: bytes = SIGNING_KEY,
) -> dict[str, Any]:
    """The deterministic model: the answer the API would give, as a complete `message`. With a `cache`, the
    request's `cache_control` breakpoints read and write it; thinking is signed with `signing_key`."""
    prompt = last_user_text(body)
    last = blocks_of(body["messages"][-1])
    results = [b for b in last if b["type"] == "tool_result"]
    content: list[dict[str, Any]] = []
    thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if thinking:
        thought = f"The user wrote: {prompt}"
        signature = sign_thinking(body["model"], thought, signing_key)
        content.append({"type": "thinking", "thinking": thought, "signature": signature})
        if "REDACT" in prompt:
            data = sign_thinking(body["model"], REDACTED, signing_key)
            content.append({"type": "redacted_thinking", "data": data})
    calls = _plan_calls(body, prompt, answered=bool(results))
    stop_reason, stop_sequence = "end_turn", None
    if calls:
        if (body.get("tool_choice") or {"type": "auto"})["type"] == "auto":
            content.append({"type": "text", "text": f"Calling {', '.join(c['name'] for c in calls)}."})
        for k, (call) in enumerate(calls):
            content.append({"type": "tool_use", "id": f"toolu_{message_id[4:]}_{k}", **call})
        stop_reason = "tool_use"
    else:
        format_ = (body.get("output_config") or {}).get("format")
        if format_:
            text = json.dumps(instance(format_["schema"], format_["schema"], prompt))
        elif results:
            text = "Tool results: " + "; ".join(_result_text(r) for r in results)
        else:
            text = prompt or "Hello."
        if prompt == "REFUSE":
            text, stop_reason = "I can't", "refusal"
        for sequence in body.get("stop_sequences") or ():
            if sequence in text:
                text, stop_reason, stop_sequence = text[: text.index(sequence)], "stop_sequence", sequence
        if words(text) > body["max_tokens"]:
            text, stop_reason = " ".join(text.split()[: body["max_tokens"]]), "max_tokens"
        if text:
            content.append({"type": "text", "text": text})
    cached = "CACHED" in prompt
    input_tokens = sum(words(json.dumps(m.get("content"))) for m in body["messages"]) + words(
        json.dumps(body.get("system") or "")
    )
    output_tokens = sum(
        words(b.get("text") or b.get("thinking") or json.dumps(b.get("input"))) for b in content
    )
    read, written = (100, 7) if cached else (0, 0)
    points, prompt_tokens = cache_breakpoints(body) if cache is not None else ([], 0)
    if points and cache is not None:
        read, written = cache.use(points)
        input_tokens = prompt_tokens - read - written
    elif cache is not None:
        cache.report(read, written)
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output_tokens,
    }
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": words(content[0]["thinking"])}
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": {"type": "refusal", "category": None, "explanation": "scripted"}
        if prompt == "REFUSE"
        else None,
        "usage": usage,
    }


def _result_text(result: dict[str, Any]) -> str:
    content = result.get("content", "")
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if b.get("type") == "text")


# A mention's arguments: anything but parentheses, or one level of them (a value may be a call, as in
# `exec(input=text(r))`, the code-mode tool's JavaScript).
_ARGS = r"((?:[^()]|\([^()]*\))*)"


def _plan_calls(body: dict[str, Any], prompt: str, *, answered: bool) -> list[dict[str, Any]]:
    """The tool calls to make: those the prompt names, or the one tool_choice forces."""
    tools = {t["name"]: t for t in body.get("tools") or ()}
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice["type"] == "none":
        return []
    mentions: list[tuple[int, str, dict[str, str]]] = []
    for name in tools:
        for match in re.finditer(rf"\b{re.escape(name)}\b(?:\({_ARGS}\))?", prompt):
            args = dict(re.findall(r"(\w+)\s*=\s*([^,]+?)\s*(?:,|$)", match.group(1) or ""))
            mentions.append((match.start(), name, args))
    mentions.sort()
    if choice["type"] == "tool":
        mentions = [m for m in mentions if m[1] == choice["name"]] or [(0, choice["name"], {})]
    elif choice["type"] == "any" and not mentions:
        mentions = [(0, next(iter(tools)), {})]
    elif answered:
        return []  # a turn of tool results gets an answer, not more calls
    if choice.get("disable_parallel_tool_use"):
        mentions = mentions[:1]
    return [
        {"name": name, "input": _arguments(tools[name]["input_schema"], args, prompt)}
        for _, name, args in mentions
    ]


def _arguments(schema: dict[str, Any], given: dict[str, str], prompt: str) -> dict[str, Any]:
    properties = schema.get("properties")
    if properties is None:
        return instance(schema, schema, prompt)
    result: dict[str, Any] = {}
    for key, sub in properties.items():
        if key in given:
            result[key] = _coerce(given[key], sub)
        elif key in (schema.get("required") or ()):
            result[key] = instance(sub, schema, prompt)
    return result


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return value.lower() == "true"
    return value


def instance(schema: Any, root: dict[str, Any], text: str) -> Any:
    """A value valid for `schema`; strings are `text`."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return instance(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root, text)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            variants = [v for v in schema[key] if v.get("type") != "null"] or schema[key]
            return instance(variants[0], root, text)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if properties is None:
            return {"answer": text}
        return {key: instance(sub, root, text) for key, sub in properties.items()}
    if kind == "array":
        return [instance(schema.get("items") or {"type": "string"}, root, text)]
    return {"string": text, "integer": 42, "number": 1.5, "boolean": True, "null": None}.get(
        kind or "string", text
    )


# -- streaming ----------------------------------------------------------------------------------------------


def stream_events(
    message: dict[str, Any], *, fault: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events the API sends for `message`, in order. `fault` cuts the stream or ends it with an error."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None}
    yield "message_start", {"type": "message_start", "message": {**start, "usage": start_usage}}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            yield _block_start(index, {"type": "text", "text": ""})
            for n, piece in enumerate(_pieces(block["text"])):
                yield _delta(index, {"type": "text_delta", "text": piece})
                if n == 0 and fault == "CUT":
                    return
                if n == 0 and fault:
                    yield "error", {"type": "error", "error": {"type": fault, "message": f"scripted {fault}"}}
                    return
        elif kind == "thinking":
            yield _block_start(index, {"type": "thinking", "thinking": "", "signature": ""})
            for piece in _pieces(block["thinking"]):
                yield _delta(index, {"type": "thinking_delta", "thinking": piece})
            yield _delta(index, {"type": "signature_delta", "signature": block["signature"]})
        elif kind == "redacted_thinking":
            yield _block_start(index, block)  # opaque: it comes whole, with no deltas
        elif kind == "tool_use":
            yield _block_start(
                index, {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            )
            arguments = json.dumps(block["input"])
            cut = max(1, len(arguments) // 2)
            for piece in ("", arguments[:cut], arguments[cut:]):
                yield _delta(index, {"type": "input_json_delta", "partial_json": piece})
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    if fault == "CUT":
        return
    delta_usage = {k: v for k, v in usage.items() if k in ("output_tokens", "output_tokens_details")}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    if message.get("stop_details"):
        delta["stop_details"] = message["stop_details"]
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage}
    yield "message_stop", {"type": "message_stop"}


def _block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _pieces(text: str) -> list[str]:
    """Text split after every word, as a model streams it."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def _event(name: str, data: dict[str, Any]) -> bytes:
    """One event as the API writes it: compact JSON, non-ASCII escaped."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _encode(events: Iterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    for name, data in events:
        yield _event(name, data)


async def _encode_at_once(events: Iterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    """The whole stream in one write, as a fast answer reaches a proxy: many events to a read."""
    yield b"".join(_event(name, data) for name, data in events)
