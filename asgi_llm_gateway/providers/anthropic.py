"""Anthropic Messages API (`POST {base_url}/v1/messages`) behind the OpenAI chat-completions contract.

The request is translated by `to_messages_request`, the answer by `to_completion`, and a stream by
`StreamTranslator`; all three are pure. `AnthropicProvider` only adds HTTP. Choices made where the two APIs
differ (see ../../shared/docs/providers/anthropic.md for the wire formats):

* **Version.** `anthropic-version: 2023-06-01` (the version every Anthropic doc describes) unless the
  constructor gets another. All `system` and `developer` messages, wherever they are, become the top-level
  `system` blocks, in order, so the translation is valid under every version.
* **Roles.** Consecutive same-role turns are merged; `tool` messages become `tool_result` blocks at the front
  of one user turn; a conversation that starts with an assistant turn gets a placeholder user turn before
  it (`_LEAD_IN`), because the API wants a user turn first. A final assistant message is sent as is (Anthropic
  prefill), since that is what a client sending one asks for. `name` on a user message is kept as a
  `"<name>: "` prefix on its text; on assistant messages it is dropped (the model would learn to echo it).
* **max_tokens** is required upstream. Without `max_completion_tokens`/`max_tokens` the gateway sends the
  model's maximum output, which is what OpenAI means by "no limit": claude-3-7 64000, claude-3-5 8192, other
  claude-3 4096, claude-opus-4-0/4-1 32000, anything else 64000 (`default_max_tokens=` overrides).
* **temperature** is clamped to Anthropic's maximum 1.0: a portable client sending 1.5 asks for "more random
  than default", and 1.0 is the closest the upstream allows. Sampling fields the client did not set are never
  sent, and none are sent while thinking, or to claude-opus-4-7/4-8: both refuse them whatever their value.
  `top_p` passes through; `stop` becomes `stop_sequences`; `safety_identifier` (else `user`) becomes
  `metadata.user_id`.
* **reasoning_effort** turns thinking on: adaptive thinking with `output_config.effort` on Claude 4.6 and
  later (where fixed budgets are deprecated), else extended thinking with a budget (`claude.THINKING_BUDGETS`)
  kept below `max_tokens`, since thinking counts towards it. `none` disables thinking. Thinking is left off
  when the request continues a tool loop: OpenAI messages cannot carry the signed thinking blocks Anthropic
  then wants back. Thinking text comes back as `reasoning_content`.
* **response_format.** `json_schema` uses the native `output_config.format`, with the schema brought into
  the subset the API accepts (as the official SDK's `transform_schema` does). `json_object`, and
  `json_schema` on models without native structured output (claude-3*, claude-opus-4-0, claude-sonnet-4-0),
  use a forced tool named `json_output` whose input comes back as JSON text in `message.content`, never as a
  tool call. A forced tool excludes thinking, so `json_object` with `reasoning_effort` is a 400.
* **Unsupported:** `n > 1`, `logprobs`/`top_logprobs`, audio output, `web_search_options`, legacy
  `functions`/`function_call` (the gateway rewrites those into tools before a provider sees them:
  legacy.py), custom tools, audio input and non-PDF files answer 400. Pure hints
  (penalties, seed, logit_bias, store, metadata, service_tier, prompt caching keys, verbosity, prediction) are
  dropped.
* **Errors.** `{"type": "error", "error": {"type", "message"}}` keeps its message (prefixed with the error
  type) and goes through the shared status mapping; `event: error` mid-stream is mapped the same way, using
  the HTTP status that error type has on a normal response (`overloaded_error` is 529, hence 503).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from .. import wire
from ..errors import GatewayError, upstream_error
from ..sse import ServerSentEvent
from ..translate import (
    json_schema_of,
    max_tokens_of,
    parse_arguments,
    parse_data_url,
    stop_of,
    text_of,
    unsupported,
)
from ..wire import dumps, loads
from .claude import default_max_tokens, output_schema, thinking_for
from .http import HTTPProvider
from .streams import bad_upstream_data, one_by_one, stream_ended_early, translate_reads

__all__ = [
    "AnthropicProvider",
    "NativeRequest",
    "StreamTranslator",
    "error_message",
    "to_completion",
    "to_messages_request",
    "tool_use_id",
    "usage_of",
]

Request = Mapping[str, Any]
Block = dict[str, Any]

KIND = "anthropic"
API_VERSION = "2023-06-01"
JSON_TOOL = "json_output"

# The user turn put before a conversation that starts with the assistant: plainly not an instruction.
_LEAD_IN = "(start of conversation)"

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# Models that refuse `temperature` and `top_p` whatever their value.
_NO_SAMPLING = ("claude-opus-4-7", "claude-opus-4-8")

# Model id prefixes of the models that predate native structured output (`output_config.format`).
_NO_NATIVE_JSON = (
    "claude-3",
    "claude-4-",
    "claude-opus-4-0",
    "claude-opus-4-2025",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# The HTTP status each error `type` has on a normal response; used for `event: error` mid-stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# Stream events that belong to a message, so cannot come before `message_start`.
_MESSAGE_EVENTS = frozenset(
    {"content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
)

_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class NativeRequest(NamedTuple):
    """A Messages API body and, when `response_format` is served by a forced tool, that tool's name."""

    body: dict[str, Any]
    json_tool: str | None


# -- request -------------------------------------------------------------------------------------------------


def _native_json(model: str) -> bool:
    """Whether the model supports `output_config.format`."""
    return not model.startswith(_NO_NATIVE_JSON)


def tool_use_id(openai_id: str) -> str:
    """Anthropic ids must match `^[a-zA-Z0-9_-]+$`; the same mapping is used for calls and results."""
    return _TOOL_ID_UNSAFE.sub("_", openai_id) or "_"


def to_messages_request(
    request: Request, model: str, *, stream: bool = False, default_limit: int | None = None
) -> NativeRequest:
    """Translate a validated OpenAI chat request into a Messages API body.

    `default_limit` replaces the per-model `max_tokens` default (`default_max_tokens`) when the request sets
    no limit.
    """
    _reject_unsupported(request)
    system, messages = _conversation(request["messages"])
    limit = max_tokens_of(request)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": limit if limit is not None else (default_limit or default_max_tokens(model)),
        "messages": messages,
    }
    if system:
        body["system"] = system
    thinking, effort = _thinking(request, model, body["max_tokens"], messages)
    thinks = thinking is not None and thinking["type"] != "disabled"
    if not thinks and not model.startswith(_NO_SAMPLING):
        if (temperature := request.get("temperature")) is not None:
            body["temperature"] = min(float(temperature), 1.0)
        if (top_p := request.get("top_p")) is not None:
            body["top_p"] = top_p
    if stop := stop_of(request):
        body["stop_sequences"] = stop
    if user := request.get("safety_identifier") or request.get("user"):
        body["metadata"] = {"user_id": user}
    if thinking is not None:
        body["thinking"] = thinking
    tools, tool_choice = _tools(request)
    if tools is None and _has_tool_blocks(messages):
        # The API refuses tool_use/tool_result blocks in a request that defines no tools; declaring them
        # with tool_choice none keeps the history valid without letting the model call them.
        tools, tool_choice = _tools_from_history(messages), {"type": "none"}
    format_, tools, tool_choice, json_tool = _structured_output(request, model, tools, tool_choice, thinks)
    if tools is not None:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if output_config := {k: v for k, v in (("format", format_), ("effort", effort)) if v is not None}:
        body["output_config"] = output_config
    if stream:
        body["stream"] = True
    return NativeRequest(body, json_tool)


def _reject_unsupported(request: Request) -> None:
    if (request.get("n") or 1) > 1:
        raise unsupported(KIND, "n", "Anthropic returns a single choice; n must be 1")
    if request.get("logprobs") or request.get("top_logprobs"):
        raise unsupported(KIND, "logprobs" if request.get("logprobs") else "top_logprobs")
    if request.get("audio") is not None or "audio" in (request.get("modalities") or ()):
        raise unsupported(
            KIND, "audio" if request.get("audio") is not None else "modalities", "no audio output"
        )
    for field in ("web_search_options", "functions", "function_call"):
        if request.get(field) is not None:
            raise unsupported(KIND, field)


def _conversation(messages: Sequence[Mapping[str, Any]]) -> tuple[list[Block], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant turns) from OpenAI messages."""
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"), f"messages[{i}].content")
            if text:
                system.append({"type": "text", "text": text})
        elif role == "user":
            _append(turns, "user", _user_blocks(message, i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, i))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, i)])
        else:
            raise unsupported(KIND, f"messages[{i}].role", f"role '{role}'")
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the turn that follows the tool_use blocks.
            content = turn["content"]
            turn["content"] = [b for b in content if b["type"] == "tool_result"] + [
                b for b in content if b["type"] != "tool_result"
            ]
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": _LEAD_IN}]})
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    """Add blocks as a new turn, or to the previous turn if it has the same role."""
    if not blocks:
        return  # empty messages would be rejected; dropping them loses nothing
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _user_blocks(message: Mapping[str, Any], i: int) -> list[Block]:
    content = message.get("content")
    blocks: list[Block]
    if content is None or isinstance(content, str):
        blocks = [{"type": "text", "text": content}] if content else []
    else:
        blocks = [
            b for j, part in enumerate(content) if (b := _user_part(part, f"messages[{i}].content[{j}]"))
        ]
    name = message.get("name")
    if name and blocks:
        if blocks[0]["type"] == "text":
            blocks[0] = {"type": "text", "text": f"{name}: {blocks[0]['text']}"}
        else:
            blocks.insert(0, {"type": "text", "text": f"{name}:"})
    return blocks


def _user_part(part: Mapping[str, Any], param: str) -> Block | None:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part["text"]} if part.get("text") else None
    if kind == "image_url":
        return _image(part["image_url"], f"{param}.image_url.url")
    if kind == "file":
        return _document(part["file"], f"{param}.file")
    raise unsupported(KIND, f"{param}.type", f"content part type '{kind}'")


def _image(image_url: Mapping[str, Any], param: str) -> Block:
    url = image_url["url"]
    data = parse_data_url(url, param)
    if data is not None:
        media_type = "image/jpeg" if data.media_type == "image/jpg" else data.media_type
        if media_type not in _IMAGE_TYPES:
            raise GatewayError(
                f"image type '{data.media_type}' is not supported; use JPEG, PNG, GIF or WebP",
                param=param,
                code="invalid_value",
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data.data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise GatewayError(
        "image_url.url must be an http(s) URL or a base64 data URL", param=param, code="invalid_value"
    )


def _document(file: Mapping[str, Any], param: str) -> Block:
    """A PDF sent inline as `file.file_data` (a data URL, or base64 with a `.pdf` filename)."""
    file_data = file.get("file_data")
    if not file_data:
        raise unsupported(KIND, f"{param}.file_id", "send the file inline as file_data")
    data = parse_data_url(file_data, f"{param}.file_data")
    if data is not None:
        media_type, payload = data.media_type, data.data
    else:
        pdf_name = str(file.get("filename", "")).lower().endswith(".pdf")
        media_type, payload = ("application/pdf" if pdf_name else "application/octet-stream"), file_data
    if media_type != "application/pdf":
        raise unsupported(KIND, f"{param}.file_data", f"only PDF files, not '{media_type}'")
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": payload}}


def _assistant_blocks(message: Mapping[str, Any], i: int) -> list[Block]:
    if message.get("function_call") is not None:
        raise unsupported(KIND, f"messages[{i}].function_call", "use tool_calls")
    text = text_of(message.get("content"), f"messages[{i}].content") or message.get("refusal") or ""
    blocks: list[Block] = [{"type": "text", "text": text}] if text else []
    for k, call in enumerate(message.get("tool_calls") or ()):
        param = f"messages[{i}].tool_calls[{k}]"
        if call.get("type", "function") != "function":
            raise unsupported(KIND, f"{param}.type", "only function tool calls")
        function = call["function"]
        arguments = parse_arguments(function.get("arguments"), f"{param}.function.arguments")
        blocks.append(
            {"type": "tool_use", "id": tool_use_id(call["id"]), "name": function["name"], "input": arguments}
        )
    return blocks


def _tool_result(message: Mapping[str, Any], i: int) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": tool_use_id(message["tool_call_id"])}
    if text := text_of(message.get("content"), f"messages[{i}].content"):
        block["content"] = text
    return block


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any(block["type"] in ("tool_use", "tool_result") for turn in messages for block in turn["content"])


def _tools_from_history(messages: list[dict[str, Any]]) -> list[Block]:
    names = dict.fromkeys(
        block["name"] for turn in messages for block in turn["content"] if block["type"] == "tool_use"
    )
    return [{"name": name, "input_schema": {"type": "object"}} for name in names]


def _tools(request: Request) -> tuple[list[Block] | None, Block | None]:
    """(tools, tool_choice) in Anthropic's shape; both None when the request has no tools."""
    tools = request.get("tools")
    if not tools:
        return None, None
    native = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = request.get("tool_choice")
    parallel = request.get("parallel_tool_calls")
    result: Block | None
    if choice is None:
        result = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        return native, {"type": "none"}  # the tools stay: the history may hold calls to them
    elif choice == "required":
        result = {"type": "any"}
    elif choice.get("type") == "function":
        result = {"type": "tool", "name": choice["function"]["name"]}
    elif choice.get("type") == "allowed_tools":
        allowed = choice["allowed_tools"]
        names = {t["function"]["name"] for t in allowed.get("tools", ()) if t.get("type") == "function"}
        native = [tool for tool in native if tool["name"] in names]
        result = {"type": "any" if allowed.get("mode") == "required" else "auto"}
    else:
        raise unsupported(KIND, "tool_choice.type", f"tool choice '{choice.get('type')}'")
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return native, result


def _tool(tool: Mapping[str, Any], param: str) -> Block:
    if tool.get("type") != "function":
        raise unsupported(KIND, f"{param}.type", f"tool type '{tool.get('type')}'")
    function = tool["function"]
    parameters = function.get("parameters")
    if not parameters:
        schema: dict[str, Any] = {"type": "object", "properties": {}}
    else:
        schema = parameters if "type" in parameters else {"type": "object", **parameters}
    native: Block = {"name": function["name"]}
    if function.get("description"):
        native["description"] = function["description"]
    native["input_schema"] = schema
    if function.get("strict"):
        native["strict"] = True
    return native


def _thinking(
    request: Request, model: str, max_tokens: int, messages: list[dict[str, Any]]
) -> tuple[Block | None, str | None]:
    """(thinking, output_config.effort) for `reasoning_effort`."""
    effort = request.get("reasoning_effort")
    if effort is None:
        return None, None
    if effort == "none":
        return thinking_for(effort, model, max_tokens, "Anthropic")
    last = messages[-1]["content"] if messages else []
    if any(block["type"] == "tool_result" for block in last):
        return None, None  # a tool loop continues; see the module docstring
    return thinking_for(effort, model, max_tokens, "Anthropic")


def _structured_output(
    request: Request, model: str, tools: list[Block] | None, tool_choice: Block | None, thinking_on: bool
) -> tuple[Block | None, list[Block] | None, Block | None, str | None]:
    """(output_config.format, tools, tool_choice, json tool name) for the request's `response_format`."""
    spec = json_schema_of(request)
    if spec is None:
        return None, tools, tool_choice, None
    kind, schema = spec
    if kind == "json_schema" and _native_json(model):
        format_ = {"type": "json_schema", "schema": output_schema(schema or {"type": "object"})}
        return format_, tools, tool_choice, None
    if tool_choice is not None and tool_choice["type"] in ("any", "tool"):
        return None, tools, tool_choice, None  # the client demands a tool call: there is no text answer
    if thinking_on:
        raise unsupported(KIND, "response_format", f"{kind} cannot be combined with reasoning_effort")
    input_schema = schema or {"type": "object"}
    if input_schema.get("type") != "object":
        raise unsupported(KIND, "response_format.json_schema.schema", "the schema must describe an object")
    if any(tool["name"] == JSON_TOOL for tool in tools or ()):
        raise unsupported(KIND, "tools", f"a tool named '{JSON_TOOL}' together with response_format")
    json_tool = {"name": JSON_TOOL, "description": "Give the answer as JSON.", "input_schema": input_schema}
    if not tools or (tool_choice is not None and tool_choice["type"] == "none"):
        forced: Block = {"type": "tool", "name": JSON_TOOL}
    else:
        # The model must either call one of the client's tools or answer through the JSON tool.
        forced = {"type": "any", **{k: v for k, v in (tool_choice or {}).items() if k != "type"}}
    return None, [*(tools or ()), json_tool], forced, JSON_TOOL


# -- response ------------------------------------------------------------------------------------------------


def usage_of(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage: Anthropic counts cache reads and writes apart from `input_tokens`, OpenAI within."""
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    details = usage.get("output_tokens_details") or {}
    return wire.usage(
        (usage.get("input_tokens") or 0) + read + write,
        usage.get("output_tokens") or 0,
        cached_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=details.get("thinking_tokens"),
    )


def _finish_reason(stop_reason: str | None, tool_calls: bool) -> str:
    if tool_calls:
        return "tool_calls"
    reason = _FINISH_REASONS.get(stop_reason or "end_turn", "stop")
    return "stop" if reason == "tool_calls" else reason  # tool_use answered through the JSON tool


def to_completion(
    message: Mapping[str, Any], *, json_tool: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """Translate a Messages API `message` into a `chat.completion`."""
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise bad_upstream_data(KIND, "the response has no content list")
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use" and block.get("name") == json_tool:
            texts.append(dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            tool_calls.append(
                wire.tool_call(block["id"], block["name"], dumps(block.get("input") or {}).decode())
            )
        # redacted_thinking and server-tool blocks have no OpenAI form
    content = "".join(texts) if texts else (None if tool_calls else "")
    result = wire.message(content, tool_calls=tool_calls, reasoning_content="".join(reasoning) or None)
    finish_reason = _finish_reason(message.get("stop_reason"), bool(tool_calls))
    return wire.completion(
        str(message.get("model", "")),
        [wire.choice(result, finish_reason)],
        usage_of(message.get("usage") or {}),
        id=str(message.get("id") or wire.completion_id()),
        created=created,
    )


def error_message(status: int, body: Any, text: str) -> str:
    """The message of an Anthropic error body `{"type": "error", "error": {"type", "message"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = error.get("type")
        return f"{kind}: {error['message']}" if kind else str(error["message"])
    return text[:500] or f"HTTP {status}"


class _Block:
    """What the translator remembers about an open content block."""

    __slots__ = ("has_input", "input", "kind", "tool_index")

    def __init__(self, kind: str, tool_index: int | None = None, input: Any = None) -> None:
        self.kind = kind  # "text", "thinking", "tool", "json" (the response_format tool) or "other"
        self.tool_index = tool_index
        self.input = input
        self.has_input = False


class StreamTranslator:
    """Turns Anthropic stream events into `chat.completion.chunk` dicts, one event at a time.

    Tool calls are numbered by their order among tool calls, never by Anthropic's content-block index. The
    finish and usage chunks are sent on `message_stop`; a stream without it is an error (`end`).
    """

    def __init__(
        self,
        model: str,
        *,
        json_tool: str | None = None,
        created: int | None = None,
        secrets: Sequence[str | None] = (),
    ) -> None:
        self._builder = wire.ChunkBuilder(model, created=created)
        self._json_tool = json_tool
        self._secrets = secrets
        self._blocks: dict[int, _Block] = {}
        self._tool_calls = 0
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._started = False
        self.done = False

    def feed(self, item: ServerSentEvent) -> list[dict[str, Any]]:
        """Chunks for one SSE event (`event` is its name, `data` its JSON text)."""
        event, data = item.event, item.data
        if self.done or event == "ping":
            return []
        try:
            payload = loads(data)
        except ValueError:
            raise bad_upstream_data(KIND, f"event '{event}' is not JSON") from None
        if not isinstance(payload, dict):
            raise bad_upstream_data(KIND, f"event '{event}' is not an object")
        kind = payload.get("type", event)
        if event == "error" or kind == "error":
            raise self._error(payload)
        if kind == "message_start":
            return self._start(payload.get("message") or {})
        if not self._started:
            if kind in _MESSAGE_EVENTS:
                raise bad_upstream_data(KIND, f"'{kind}' before message_start")
            return []
        if kind == "content_block_start":
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(payload.get("index", 0))
        if kind == "message_delta":
            self._stop_reason = (payload.get("delta") or {}).get("stop_reason") or self._stop_reason
            self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
            return []
        if kind == "message_stop":
            self.done = True
            finish = _finish_reason(self._stop_reason, self._tool_calls > 0)
            return [self._builder.finish(finish), self._builder.usage(usage_of(self._usage))]
        return []  # event types added later are skipped, as Anthropic asks clients to do

    def end(self) -> list[dict[str, Any]]:
        """Call when the upstream closed the stream: a stream that never said `message_stop` failed."""
        if not self.done:
            raise stream_ended_early(KIND)
        return []

    def _error(self, payload: Mapping[str, Any]) -> GatewayError:
        error = payload.get("error")
        status = _ERROR_STATUS.get(str(error.get("type")) if isinstance(error, dict) else "", 500)
        return upstream_error(KIND, status, error_message(status, payload, ""), secrets=self._secrets)

    def _start(self, message: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if message.get("id"):
            self._builder.id = str(message["id"])
        if message.get("model"):
            self._builder.model = str(message["model"])
        self._usage = dict(message.get("usage") or {})
        return [self._builder.role()]

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == self._json_tool:
            self._blocks[index] = _Block("json", input=block.get("input"))
            return []
        if kind == "tool_use":
            tool_index = self._tool_calls
            self._tool_calls += 1
            self._blocks[index] = _Block("tool", tool_index, block.get("input"))
            delta = wire.tool_call_delta(tool_index, id=str(block.get("id")), name=str(block.get("name")))
            return [self._builder.chunk({"tool_calls": [delta]})]
        if kind == "text":
            self._blocks[index] = _Block("text")
            return [self._builder.chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking")
            thinking = block.get("thinking")
            return [self._builder.chunk({"reasoning_content": thinking})] if thinking else []
        self._blocks[index] = _Block("other")
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        block = self._blocks.get(index)
        if block is None:
            raise bad_upstream_data(KIND, f"delta for content block {index} before its start")
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._builder.chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._builder.chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            block.has_input = True
            return [self._arguments(block, delta["partial_json"])]
        return []  # signature_delta, citations_delta and empty fragments carry nothing for the client

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        block = self._blocks.pop(index, None)
        if block is None or block.kind not in ("tool", "json") or block.has_input:
            return []
        # No argument fragments: the input is the one in content_block_start, usually {}.
        return [self._arguments(block, dumps(block.input or {}).decode())]

    def _arguments(self, block: _Block, fragment: str) -> dict[str, Any]:
        if block.kind == "json":
            return self._builder.chunk({"content": fragment})
        assert block.tool_index is not None
        return self._builder.chunk(
            {"tool_calls": [wire.tool_call_delta(block.tool_index, arguments=fragment)]}
        )


# -- transport -----------------------------------------------------------------------------------------------


class AnthropicProvider(HTTPProvider):
    """Claude through Anthropic's native Messages API."""

    kind = KIND
    api_key_env = "ANTHROPIC_API_KEY"
    default_base_url = "https://api.anthropic.com"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        version: str = API_VERSION,
        default_max_tokens: int | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.version = version
        self.default_max_tokens = default_max_tokens

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        # The code is left to the shared mapping, so clients see the same codes whatever the provider.
        return error_message(status, body, text), None

    async def list_models(self) -> list[str]:
        if self.models is not None:
            return list(self.models)
        listing = await self.get_json(f"{self.base_url}/v1/models?limit=1000")
        data = listing.get("data") if isinstance(listing, dict) else None
        return [
            item["id"] for item in data or () if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = to_messages_request(request, model, default_limit=self.default_max_tokens)
        message = await self.post_json(self.url, native.body)
        return to_completion(message, json_tool=native.json_tool)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        native = to_messages_request(request, model, stream=True, default_limit=self.default_max_tokens)
        translator = StreamTranslator(model, json_tool=native.json_tool, secrets=tuple(self.secrets()))
        return translate_reads(self.post_sse(self.url, native.body), translator)
