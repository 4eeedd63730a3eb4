"""Amazon Bedrock Runtime, Converse and ConverseStream (`{base_url}/model/{id}/converse[-stream]`), behind the
OpenAI chat-completions contract.

`to_converse_request`, `to_completion` and `StreamTranslator` are pure; `event_stream_decoder()` reads the
binary `application/vnd.amazon.eventstream` framing; `BedrockProvider` adds authentication and HTTP. Choices
made where the two APIs differ (wire formats in ../../shared/docs/providers/bedrock.md):

* **Authentication.** A Bedrock API key (`api_key=`, else `AWS_BEARER_TOKEN_BEDROCK`) is sent as a bearer
  token and needs nothing else. Otherwise botocore (the `bedrock` extra, imported only then) finds the
  credentials as the AWS CLI does (explicit keys, environment, shared files and profiles, SSO, web identity,
  container and instance roles) and every request is signed with SigV4 for service `bedrock`. The chain is
  resolved once, in a worker thread; refreshable credentials are frozen per request, in a worker thread when
  a refresh is due, so no file, STS, SSO or IMDS call ever blocks the event loop. Explicit keys or `profile=`
  win over an API key in the environment. The region is `region=`, else `AWS_REGION`, `AWS_DEFAULT_REGION`,
  the profile's `region`, or the one in a `bedrock-runtime.<region>.` `base_url`.
* **Roles.** `system`/`developer` messages, wherever they are, become the top-level `system` blocks.
  Consecutive same-role turns merge; `tool` messages become `toolResult` blocks at the front of one user
  turn; a conversation that starts with the assistant gets a one-word user turn first (Converse wants a user
  turn first). Blank text is dropped (Converse rejects it), and an empty tool output is sent as `(empty)`.
* **Content.** Images must be `data:` URLs (Converse takes bytes or S3, never http URLs: those are a 400);
  `file` parts become `document` blocks, `input_audio` becomes `audio`. Assistant `reasoning_content` is not
  sent back: Bedrock wants it with the signature an OpenAI message cannot carry.
* **Tools.** Names and `toolUseId`s are kept within Converse's patterns (`[a-zA-Z0-9_-]{1,64}`,
  `[a-zA-Z0-9_.:-]{1,64}`) by a deterministic rewrite used for calls and results alike; rewritten names are
  mapped back in answers. `required` is `any`, a named function is `tool`, and `none` withholds the tools
  (Converse has no `none`) unless the history holds tool blocks, which need a `toolConfig`: then the tools
  stay declared without a choice. History with tool blocks but no `tools` re-declares the names it uses.
* **Sampling.** `temperature` is clamped to Converse's maximum 1.0 (a portable client sending 1.5 asks for
  "more random than default", 1.0 is the closest Bedrock allows). `top_k` (an extension some clients send)
  and `reasoning_effort` go to `additionalModelRequestFields` in the shape of the model family: Claude gets
  `thinking` (adaptive with `outputConfig.effort` from Claude 4.6 on, a token budget before, left off while a
  tool loop continues since the signed thinking cannot travel in OpenAI messages), Nova 2 `reasoningConfig`,
  gpt-oss `reasoning_effort`, other OpenAI models `reasoning.effort`; models whose reasoning Converse cannot
  configure ignore it, as OpenAI-compatible servers do.
* **response_format.** `json_schema` uses the native `outputConfig.textFormat` (the schema as a JSON string;
  reduced for Claude to what its structured output accepts). `json_object`, and `json_schema` on Claude
  before 4.5, use a tool named `json_output` forced with `any`, whose input comes back as JSON text in
  `message.content`, never as a tool call.
* **Unsupported:** `n > 1`, `logprobs`/`top_logprobs`, audio output, `web_search_options`, legacy
  `functions` (the gateway rewrites them into tools first: legacy.py), custom tools, `file_id` files answer
  400. Pure hints (penalties, seed, logit_bias, store, prompt caching keys, verbosity, prediction,
  `parallel_tool_calls`) are dropped; `metadata` pairs that fit
  Bedrock's pattern become `requestMetadata`; `service_tier` priority/default/flex pass through.
* **Answers.** `stopReason` maps to `finish_reason` (`malformed_model_output`/`malformed_tool_use` are a 502:
  the answer is unusable, another target may do better). Usage sums cache reads and writes into
  `prompt_tokens`. A stream's finish chunk is held until the `metadata` event (which follows `messageStop`)
  so that a stream cut before either ends in a 502, never in a false success.
* **Errors.** `x-amzn-ErrorType` (else the body's `__type`) names the exception; its `message` is kept,
  prefixed with that name. The shared status mapping applies, except where the exception says more than its
  status: `ModelErrorException`/`ModelStreamErrorException` (424) are 502, `ModelNotReadyException` 503,
  `ServiceQuotaExceededException` 429. In-stream exception frames map the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

import anyio.to_thread
import httpx

from .. import wire
from ..errors import GatewayError, redact, upstream_error
from ..eventstream import EventStreamError, Frame, event_stream_decoder
from ..model_ids import path_segment
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
from .claude import (
    EFFORTS,
    adaptive_thinking,
    claude_version,
    default_max_tokens,
    output_schema,
    thinking_for,
)
from .http import HTTPProvider
from .streams import bad_upstream_data, one_by_one, stream_ended_early, translate_reads

__all__ = [
    "BedrockProvider",
    "NativeRequest",
    "StreamTranslator",
    "bedrock_error",
    "frame_event",
    "model_family",
    "to_completion",
    "to_converse_request",
    "tool_name",
    "tool_use_id",
    "usage_of",
]

Request = Mapping[str, Any]
Block = dict[str, Any]

KIND = "bedrock"
JSON_TOOL = "json_output"
SIGNING_NAME = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"

# The user turn put before a conversation that starts with the assistant.
_LEAD_IN = "Continue."
# Sent for a tool that returned nothing: Converse rejects blank text blocks.
_EMPTY_TOOL_RESULT = "(empty)"

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_METADATA_TEXT = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]{0,256}")
_DOCUMENT_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\s\-()\[\]]+")

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}

# Families with three levels (Nova 2, gpt-oss).
_THREE_LEVELS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}

# The model vendors this module knows an additional field for; ids are `[region.]vendor.model[:version]`.
_VENDORS = frozenset(
    {"anthropic", "amazon", "openai", "meta", "mistral", "cohere", "ai21", "deepseek", "qwen"}
)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})

# The HTTP status of each exception in the service model (used for in-stream exceptions, which have none).
_EXCEPTION_STATUS = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
# Exceptions whose meaning is not what their status says: (client status, error type).
_EXCEPTION_OVERRIDES = {
    "ModelErrorException": (502, "server_error"),
    "ModelStreamErrorException": (502, "server_error"),
    "ModelNotReadyException": (503, "server_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_exceeded"),
}


class NativeRequest(NamedTuple):
    """A Converse body, the client's tool names by the Bedrock names that differ from them, and, when
    `response_format` is served by a forced tool, that tool's name."""

    body: dict[str, Any]
    tool_names: Mapping[str, str]
    json_tool: str | None


# -- model ids -----------------------------------------------------------------------------------------------


def _model_name(model: str) -> str:
    """The model part of an id, without ARN prefix, inference-profile region or version suffix."""
    name = model.rsplit("/", 1)[-1]
    parts = name.split(".")
    for i, part in enumerate(parts[:2]):
        if part in _VENDORS:
            return ".".join(parts[i + 1 :])
    return name


def model_family(model: str) -> str | None:
    """The vendor of a model id (`us.anthropic.claude-…` → `anthropic`), or None for an opaque id."""
    parts = model.rsplit("/", 1)[-1].split(".")
    return next((part for part in parts[:2] if part in _VENDORS), None)


def _is_claude(model: str) -> bool:
    return model_family(model) == "anthropic"


def _native_json(model: str) -> bool:
    """Whether Converse's `outputConfig.textFormat` is served; for Claude only from 4.5 on."""
    if not _is_claude(model):
        return True
    version = claude_version(_model_name(model))
    return version is None or version >= (4, 5)


# -- names and ids -------------------------------------------------------------------------------------------


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def tool_name(name: str) -> str:
    """A tool name Converse accepts; a rewritten name gets a hash suffix so that it stays unique."""
    if _TOOL_NAME.fullmatch(name):
        return name
    return f"{_TOOL_NAME_UNSAFE.sub('_', name)[:55]}_{_digest(name, 8)}"


def tool_use_id(openai_id: str) -> str:
    """A `toolUseId` Converse accepts; the same rewrite is used for calls and their results."""
    if _TOOL_USE_ID.fullmatch(openai_id):
        return openai_id
    return f"{_TOOL_NAME_UNSAFE.sub('_', openai_id)[:40]}_{_digest(openai_id, 16)}"


def _bedrock_name(name: str, names: dict[str, str]) -> str:
    native = tool_name(name)
    if native != name:
        names[native] = name
    return native


# -- request -------------------------------------------------------------------------------------------------


def to_converse_request(request: Request, model: str) -> NativeRequest:
    """Translate a validated OpenAI chat-completions request into a Converse body."""
    _reject_unsupported(request)
    names: dict[str, str] = {}
    system, messages = _conversation(request["messages"], names)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system

    inference = _inference_config(request)
    additional, effort = _reasoning(request, model, messages, inference)
    thinking_on = "thinking" in additional and additional["thinking"].get("type") != "disabled"
    if (top_k := request.get("top_k")) is not None:
        additional.update(_top_k(model, top_k))
    if inference:
        body["inferenceConfig"] = inference

    tools, choice = _tools(request, names)
    text_format, tools, choice, json_tool = _structured_output(
        request, model, tools, choice, thinking_on=thinking_on and _is_claude(model)
    )
    tool_config = _tool_config(tools, choice, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config

    output_config: dict[str, Any] = {}
    if text_format is not None:
        output_config["textFormat"] = text_format
    if effort is not None:
        output_config["effort"] = effort
    if output_config:
        body["outputConfig"] = output_config
    if additional:
        body["additionalModelRequestFields"] = additional
    if metadata := _request_metadata(request.get("metadata")):
        body["requestMetadata"] = metadata
    tier = request.get("service_tier")
    if tier in ("priority", "default", "flex"):
        body["serviceTier"] = {"type": tier}
    return NativeRequest(body, names, json_tool)


def _reject_unsupported(request: Request) -> None:
    if (request.get("n") or 1) > 1:
        raise unsupported(KIND, "n", "Converse returns one choice")
    if request.get("logprobs"):
        raise unsupported(KIND, "logprobs")
    if request.get("top_logprobs") is not None:
        raise unsupported(KIND, "top_logprobs")
    if "audio" in (request.get("modalities") or ()) or request.get("audio") is not None:
        raise unsupported(KIND, "audio", "Converse answers with text")
    if request.get("web_search_options") is not None:
        raise unsupported(KIND, "web_search_options")
    if request.get("functions") is not None or request.get("function_call") is not None:
        raise unsupported(KIND, "functions", "use tools instead")


def _conversation(
    messages: Sequence[Mapping[str, Any]], names: dict[str, str]
) -> tuple[list[Block], list[Block]]:
    """(system blocks, alternating messages) from OpenAI messages."""
    system: list[Block] = []
    turns: list[Block] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        param = f"messages[{i}]"
        if role in ("system", "developer"):
            text = text_of(message.get("content"), f"{param}.content")
            if text.strip():
                system.append({"text": text})
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), param))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, param, names))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, param)])
        else:
            raise GatewayError(f"messages with role '{role}' are not supported", param=f"{param}.role")
    for turn in turns:
        if turn["role"] == "user":  # tool results go first in their turn
            turn["content"].sort(key=lambda block: "toolResult" not in block)
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"text": _LEAD_IN}]})
    return system, turns


def _append(turns: list[Block], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _user_blocks(content: Any, param: str) -> list[Block]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content and content.strip() else []
    blocks: list[Block] = []
    for j, part in enumerate(content):
        part_param = f"{param}.content[{j}]"
        kind = part.get("type")
        if kind == "text":
            if (text := part.get("text") or "").strip():
                blocks.append({"text": text})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url") or {}, f"{part_param}.image_url.url"))
        elif kind == "file":
            blocks.append(_document(part.get("file") or {}, f"{part_param}.file"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            blocks.append({"audio": {"format": audio.get("format"), "source": {"bytes": audio.get("data")}}})
        else:
            raise GatewayError(
                f"content part type '{kind}' is not supported by the {KIND} provider",
                param=f"{part_param}.type",
                code="invalid_value",
            )
    return blocks


def _image(image_url: Mapping[str, Any], param: str) -> Block:
    data = parse_data_url(str(image_url.get("url", "")), param)
    if data is None:
        raise GatewayError(
            f"{KIND} takes images only as base64 data: URLs; it cannot fetch http(s) URLs",
            param=param,
            code="unsupported_value",
        )
    image_format = _IMAGE_FORMATS.get(data.media_type)
    if image_format is None:
        raise GatewayError(
            f"image type '{data.media_type}' is not supported; use png, jpeg, gif or webp",
            param=param,
            code="unsupported_value",
        )
    return {"image": {"format": image_format, "source": {"bytes": data.data}}}


def _document(file: Mapping[str, Any], param: str) -> Block:
    if file.get("file_data") is None:
        raise unsupported(KIND, f"{param}.file_id", "send the file inline as file_data")
    data = parse_data_url(str(file["file_data"]), f"{param}.file_data")
    if data is None:
        raise GatewayError("file_data must be a base64 data: URL", param=f"{param}.file_data")
    document_format = _DOCUMENT_FORMATS.get(data.media_type)
    if document_format is None:
        raise GatewayError(
            f"file type '{data.media_type}' is not supported by {KIND}",
            param=f"{param}.file_data",
            code="unsupported_value",
        )
    # Document names allow letters, digits, single spaces, hyphens, parentheses and square brackets.
    name = " ".join(_DOCUMENT_NAME_UNSAFE.sub(" ", str(file.get("filename") or "")).split())[:200]
    return {
        "document": {"format": document_format, "name": name or "document", "source": {"bytes": data.data}}
    }


def _assistant_blocks(message: Mapping[str, Any], param: str, names: dict[str, str]) -> list[Block]:
    blocks: list[Block] = []
    text = text_of(message.get("content"), f"{param}.content")
    if text.strip():
        blocks.append({"text": text})
    for k, call in enumerate(message.get("tool_calls") or ()):
        call_param = f"{param}.tool_calls[{k}]"
        if call.get("type", "function") != "function":
            raise unsupported(KIND, f"{call_param}.type", "only function tool calls")
        function = call.get("function") or {}
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": tool_use_id(str(call.get("id", ""))),
                    "name": _bedrock_name(str(function.get("name", "")), names),
                    "input": parse_arguments(function.get("arguments"), f"{call_param}.function.arguments"),
                }
            }
        )
    return blocks


def _tool_result(message: Mapping[str, Any], param: str) -> Block:
    text = text_of(message.get("content"), f"{param}.content")
    return {
        "toolResult": {
            "toolUseId": tool_use_id(str(message.get("tool_call_id", ""))),
            "content": [{"text": text if text.strip() else _EMPTY_TOOL_RESULT}],
        }
    }


def _inference_config(request: Request) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if (max_tokens := max_tokens_of(request)) is not None:
        config["maxTokens"] = max_tokens
    if (temperature := request.get("temperature")) is not None:
        config["temperature"] = min(float(temperature), 1.0)
    if (top_p := request.get("top_p")) is not None:
        config["topP"] = top_p
    if stop := [s for s in stop_of(request) or () if s]:
        config["stopSequences"] = stop
    return config


def _tool_loop_continues(messages: Sequence[Block]) -> bool:
    return bool(messages) and any("toolResult" in block for block in messages[-1]["content"])


def _reasoning(
    request: Request, model: str, messages: Sequence[Block], inference: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """(additionalModelRequestFields, outputConfig.effort) for `reasoning_effort`, per model family.

    A Claude thinking budget must stay below `maxTokens`, so this sets `inference["maxTokens"]` to the
    model's maximum output when the client gave no limit (Converse's own default may be lower)."""
    effort = request.get("reasoning_effort")
    if effort is None:
        return {}, None
    family = model_family(model)
    name = _model_name(model)
    if family == "anthropic":
        if effort == "none":
            return {"thinking": {"type": "disabled"}}, None
        if _tool_loop_continues(messages):
            return {}, None  # see the module docstring
        if not adaptive_thinking(name) and "maxTokens" not in inference:
            inference["maxTokens"] = default_max_tokens(name)
        thinking, level = thinking_for(effort, name, inference.get("maxTokens", 0), "Claude")
        return {"thinking": thinking}, level
    if family == "openai" and not name.startswith("gpt-oss"):
        return {"reasoning": {"effort": EFFORTS.get(effort, effort)}}, None  # GPT-5 and later take `none` too
    if effort == "none":
        return {}, None  # Nova 2 and gpt-oss reason only when asked to
    if family == "amazon" and name.startswith("nova-2"):
        return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": _THREE_LEVELS[effort]}}, None
    if family == "openai":
        return {"reasoning_effort": _THREE_LEVELS[effort]}, None
    return {}, None


def _top_k(model: str, top_k: Any) -> dict[str, Any]:
    family = model_family(model)
    if family == "anthropic":
        return {"top_k": top_k}
    if family == "amazon":
        return {"inferenceConfig": {"topK": top_k}}
    raise unsupported(KIND, "top_k", "Converse has no top_k for this model family")


def _tools(request: Request, names: dict[str, str]) -> tuple[list[Block] | None, Block | str | None]:
    """(the client's tools, Converse `toolChoice`, or "none")."""
    declared = request.get("tools")
    tools = [_tool(tool, f"tools[{i}]", names) for i, tool in enumerate(declared or ())] or None
    choice = request.get("tool_choice")
    if choice is None or choice == "auto":
        return tools, None
    if choice == "none":
        return tools, "none"
    if choice == "required":
        return tools, {"any": {}}
    if choice.get("type") == "function":
        return tools, {"tool": {"name": _bedrock_name(str(choice["function"]["name"]), names)}}
    if choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        keep = {tool_name(str((t.get("function") or {}).get("name", ""))) for t in allowed.get("tools") or ()}
        tools = [tool for tool in tools or () if tool["toolSpec"]["name"] in keep] or None
        return tools, {"any": {}} if allowed.get("mode") == "required" else None
    raise unsupported(KIND, "tool_choice", f"type '{choice.get('type')}'")


def _tool(tool: Mapping[str, Any], param: str, names: dict[str, str]) -> Block:
    if tool.get("type") != "function":
        raise unsupported(KIND, f"{param}.type", "only function tools")
    function = tool.get("function") or {}
    schema = dict(function.get("parameters") or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    spec: Block = {
        "name": _bedrock_name(str(function.get("name", "")), names),
        "inputSchema": {"json": schema},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict"):
        spec["strict"] = True
    return {"toolSpec": spec}


def _structured_output(
    request: Request, model: str, tools: list[Block] | None, choice: Block | str | None, *, thinking_on: bool
) -> tuple[Block | None, list[Block] | None, Block | str | None, str | None]:
    """(outputConfig.textFormat, tools, tool choice, json tool name) for the request's `response_format`."""
    spec = json_schema_of(request)
    if spec is None:
        return None, tools, choice, None
    kind, schema = spec
    if kind == "json_schema" and _native_json(model):
        options = request["response_format"].get("json_schema") or {}
        native_schema = output_schema(schema or {}) if _is_claude(model) else schema
        definition: Block = {"schema": dumps(native_schema).decode()}
        for key in ("name", "description"):
            if options.get(key):
                definition[key] = options[key]
        return {"type": "json_schema", "structure": {"jsonSchema": definition}}, tools, choice, None
    if isinstance(choice, dict):
        return None, tools, choice, None  # the client demands a tool call: there is no text answer
    if thinking_on:
        raise unsupported(
            KIND, "response_format", f"{kind} cannot be combined with reasoning_effort on Claude"
        )
    input_schema = schema or {"type": "object"}
    if input_schema.get("type") != "object":
        raise unsupported(KIND, "response_format.json_schema.schema", "the schema must describe an object")
    if any(tool["toolSpec"]["name"] == JSON_TOOL for tool in tools or ()):
        raise unsupported(KIND, "tools", f"a tool named '{JSON_TOOL}' together with response_format")
    json_tool: Block = {
        "toolSpec": {
            "name": JSON_TOOL,
            "description": "Give the answer as JSON.",
            "inputSchema": {"json": input_schema},
        }
    }
    # With the client's tools, the model must either call one of them or answer through the JSON tool.
    kept = [] if choice == "none" else list(tools or ())
    return None, [*kept, json_tool], {"any": {}}, JSON_TOOL


def _tool_config(
    tools: list[Block] | None, choice: Block | str | None, messages: Sequence[Block]
) -> Block | None:
    history = _history_tools(messages)
    if choice == "none":
        if not history:
            return None
        return {"tools": tools or history}  # Converse needs a toolConfig for tool blocks; it has no `none`
    tools = tools or history
    if not tools:
        return None
    return {"tools": tools, "toolChoice": choice} if isinstance(choice, dict) else {"tools": tools}


def _history_tools(messages: Sequence[Block]) -> list[Block]:
    """Declarations for the tools the history uses: Converse rejects tool blocks without a toolConfig."""
    names: dict[str, None] = {}
    has_blocks = False
    for message in messages:
        for block in message["content"]:
            if "toolUse" in block:
                names[block["toolUse"]["name"]] = None
            has_blocks = has_blocks or "toolResult" in block
    if has_blocks and not names:
        names["tool"] = None
    return [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in names]


def _request_metadata(metadata: Any) -> dict[str, str]:
    """The pairs of OpenAI `metadata` that fit Bedrock's `requestMetadata` (logging only; others dropped)."""
    if not isinstance(metadata, Mapping):
        return {}
    pairs = {
        str(key): str(value)
        for key, value in metadata.items()
        if key
        and isinstance(value, str)
        and _METADATA_TEXT.fullmatch(str(key))
        and _METADATA_TEXT.fullmatch(value)
    }
    return dict(list(pairs.items())[:16])


# -- response ------------------------------------------------------------------------------------------------


def usage_of(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage: Bedrock counts cache reads and writes apart from `inputTokens`, OpenAI within."""
    read = usage.get("cacheReadInputTokens") or 0
    write = usage.get("cacheWriteInputTokens") or 0
    return wire.usage(
        (usage.get("inputTokens") or 0) + read + write,
        usage.get("outputTokens") or 0,
        cached_tokens=read,
        cache_write_tokens=write,
    )


def _finish_reason(stop_reason: Any, tool_calls: bool) -> str:
    if stop_reason in _MALFORMED:
        raise GatewayError(
            f"{KIND}: the model produced malformed output (stopReason {stop_reason})",
            status=502,
            code="upstream_bad_response",
        )
    if tool_calls:
        return "tool_calls"
    reason = _FINISH_REASONS.get(str(stop_reason), "stop")
    return "stop" if reason == "tool_calls" else reason  # tool_use answered through the JSON tool


def to_completion(
    response: Mapping[str, Any],
    model: str,
    *,
    tool_names: Mapping[str, str] | None = None,
    json_tool: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """Translate a Converse response into a `chat.completion`."""
    output = response.get("output") if isinstance(response, Mapping) else None
    message = output.get("message") if isinstance(output, Mapping) else None
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise bad_upstream_data(KIND, "the response has no output message")
    names = tool_names or {}
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if "text" in block:
            texts.append(str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = dumps(use.get("input") or {}).decode()
            if use.get("name") == json_tool:
                texts.append(arguments)
            else:
                name = str(use["name"])
                tool_calls.append(wire.tool_call(str(use["toolUseId"]), names.get(name, name), arguments))
        elif "reasoningContent" in block:
            reasoning.append(str((block["reasoningContent"].get("reasoningText") or {}).get("text", "")))
        # images, citations and server-side tool results have no OpenAI form
    content = "".join(texts) if texts else (None if tool_calls else "")
    result = wire.message(content, tool_calls=tool_calls, reasoning_content="".join(reasoning) or None)
    finish_reason = _finish_reason(response.get("stopReason"), bool(tool_calls))
    return wire.completion(
        model, [wire.choice(result, finish_reason)], usage_of(response.get("usage") or {}), created=created
    )


# -- errors --------------------------------------------------------------------------------------------------


def bedrock_error(
    error_type: str | None,
    status: int,
    message: str,
    *,
    retry_after: str | None = None,
    secrets: Iterable[str | None] = (),
) -> GatewayError:
    """The client's error for a Bedrock exception (`error_type`, e.g. `ThrottlingException`)."""
    text = f"{error_type}: {message}" if error_type else message
    error = upstream_error(KIND, status, text, retry_after=retry_after, secrets=secrets)
    override = _EXCEPTION_OVERRIDES.get(error_type or "")
    if override is None:
        return error
    client_status, error_type_name = override
    headers = {"retry-after": retry_after} if retry_after and client_status in (429, 503) else None
    return GatewayError(error.message, status=client_status, type=error_type_name, headers=headers)


def error_type_of(header: str | None, body: Any) -> str | None:
    """`ValidationException` from `x-amzn-ErrorType: ValidationException:http://…` or a body `__type`."""
    raw = header or (body.get("__type") or body.get("code") if isinstance(body, Mapping) else None)
    if not raw:
        return None
    return str(raw).split(":", 1)[0].rsplit("#", 1)[-1] or None


def error_message_of(body: Any, text: str, status: int) -> str:
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("Message")
        if message:
            return str(message)
    return text[:500] or f"HTTP {status}"


def frame_event(frame: Frame, secrets: Iterable[str | None] = ()) -> tuple[str, dict[str, Any]]:
    """(event type, payload) of an event frame; exception and error frames raise their `GatewayError`."""
    headers = frame.headers
    message_type = headers.get(":message-type")
    if message_type == "error":
        code = headers.get(":error-code") or "error"
        message = headers.get(":error-message") or frame.payload.decode("utf-8", "replace")
        raise GatewayError(
            redact(f"{KIND}: {code}: {message}", secrets), status=502, code="upstream_stream_error"
        )
    try:
        payload = loads(frame.payload) if frame.payload else {}
    except ValueError:
        raise bad_upstream_data(KIND, "an event payload is not JSON") from None
    if not isinstance(payload, dict):
        raise bad_upstream_data(KIND, "an event payload is not an object")
    if message_type == "exception":
        name = str(headers.get(":exception-type") or "")
        error_type = name[:1].upper() + name[1:]
        message = str(payload.get("message") or payload.get("Message") or "error")
        if payload.get("originalMessage"):
            message += f" (model said: {payload['originalMessage']})"
        status = _EXCEPTION_STATUS.get(error_type, 500)
        raise bedrock_error(error_type or None, status, message, secrets=secrets)
    if message_type != "event" or not headers.get(":event-type"):
        raise bad_upstream_data(KIND, f"unexpected event-stream message type {message_type!r}")
    return str(headers[":event-type"]), payload


class _Block:
    """What the translator remembers about an open content block."""

    __slots__ = ("has_input", "kind", "tool_index")

    def __init__(self, kind: str, tool_index: int | None = None) -> None:
        self.kind = kind  # "tool", "json" (the response_format tool)
        self.tool_index = tool_index
        self.has_input = False


class StreamTranslator:
    """ConverseStream events → `chat.completion.chunk`s.

    Tool calls are numbered in order of appearance, whatever their `contentBlockIndex`. The finish chunk is
    held back until `metadata` (which comes after `messageStop`), and is sent together with the usage chunk.
    """

    def __init__(
        self,
        model: str,
        *,
        tool_names: Mapping[str, str] | None = None,
        json_tool: str | None = None,
        id: str | None = None,
        created: int | None = None,
    ) -> None:
        self.chunks = wire.ChunkBuilder(model, id=id, created=created)
        self.tool_names = tool_names or {}
        self.json_tool = json_tool
        self.done = False
        self._started = False
        self._blocks: dict[int, _Block] = {}
        self._tool_calls = 0
        self._stop_reason: str | None = None

    def feed(self, item: tuple[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The chunks for one (event type, payload)."""
        event, payload = item
        if self.done:
            return []
        out: list[dict[str, Any]] = []
        if not self._started and event in ("messageStart", "contentBlockStart", "contentBlockDelta"):
            self._started = True
            out.append(self.chunks.role())
        try:
            if event == "contentBlockStart":
                out.extend(self._block_start(int(payload["contentBlockIndex"]), payload.get("start") or {}))
            elif event == "contentBlockDelta":
                out.extend(self._block_delta(int(payload["contentBlockIndex"]), payload.get("delta") or {}))
            elif event == "contentBlockStop":
                out.extend(self._block_stop(int(payload["contentBlockIndex"])))
            elif event == "messageStop":
                self._stop_reason = str(payload.get("stopReason") or "end_turn")
            elif event == "metadata":
                out.extend(self._finish(payload.get("usage") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_upstream_data(KIND, f"unexpected {event} event ({type(exc).__name__})") from None
        return out  # messageStart (handled above) and unknown events add nothing

    def end(self) -> list[dict[str, Any]]:
        """Called when the body ends: a stream without `messageStop` and `metadata` did not complete."""
        if not self.done:
            raise stream_ended_early(KIND)
        return []

    def _block_start(self, index: int, start: Mapping[str, Any]) -> list[dict[str, Any]]:
        use = start.get("toolUse")
        if use is None:
            return []
        name = str(use["name"])
        if name == self.json_tool:
            self._blocks[index] = _Block("json")
            return []
        self._blocks[index] = _Block("tool", self._tool_calls)
        self._tool_calls += 1
        fragment = wire.tool_call_delta(
            self._tool_calls - 1, id=str(use["toolUseId"]), name=self.tool_names.get(name, name)
        )
        return [self.chunks.chunk({"tool_calls": [fragment]})]

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        if "text" in delta:
            return [self.chunks.chunk({"content": str(delta["text"])})] if delta["text"] else []
        if "toolUse" in delta:
            block = self._blocks.get(index)
            if block is None:
                raise bad_upstream_data(KIND, "tool input for a block that was never started")
            fragment = str(delta["toolUse"]["input"])
            if not fragment:
                return []
            block.has_input = True
            return [self._arguments(block, fragment)]
        if "reasoningContent" in delta:
            text = delta["reasoningContent"].get("text")
            return [self.chunks.chunk({"reasoning_content": str(text)})] if text else []
        return []  # citations, signatures and redacted reasoning have no OpenAI form

    def _block_stop(self, index: int) -> list[dict[str, Any]]:
        block = self._blocks.pop(index, None)
        if block is None or block.has_input:
            return []
        return [self._arguments(block, "{}")]  # a tool called without input still gets valid arguments

    def _arguments(self, block: _Block, fragment: str) -> dict[str, Any]:
        if block.kind == "json":
            return self.chunks.chunk({"content": fragment})
        assert block.tool_index is not None
        return self.chunks.chunk({"tool_calls": [wire.tool_call_delta(block.tool_index, arguments=fragment)]})

    def _finish(self, usage: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._stop_reason is None:
            raise bad_upstream_data(KIND, "metadata arrived before messageStop")
        self.done = True
        finish_reason = _finish_reason(self._stop_reason, self._tool_calls > 0)
        return [self.chunks.finish(finish_reason), self.chunks.usage(usage_of(usage))]


class FrameTranslator:
    """Event-stream frames → chunks: each frame read as its event (`frame_event`), then translated. At the
    end, a body that stopped inside a frame is reported as such before the translator's own check."""

    def __init__(self, events: StreamTranslator, decoder: Any, secrets: Iterable[str | None]) -> None:
        self.events = events
        self.decoder = decoder
        self.secrets = tuple(secrets)

    @property
    def done(self) -> bool:
        return self.events.done

    def feed(self, item: Frame) -> list[dict[str, Any]]:
        return self.events.feed(frame_event(item, self.secrets))

    def end(self) -> list[dict[str, Any]]:
        self.decoder.close()  # the body ended inside a frame
        return self.events.end()  # the stream never said it was complete


# -- provider ------------------------------------------------------------------------------------------------


def _region_from_url(base_url: str | None) -> str | None:
    """The region in a `https://bedrock-runtime[-fips].<region>.amazonaws.com` style endpoint."""
    if not base_url:
        return None
    match = re.match(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.", urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


def _botocore_missing() -> ImportError:
    return ImportError(
        "BedrockProvider needs botocore to sign requests with AWS credentials: "
        "pip install 'asgi-llm-gateway[bedrock]' (or pass a Bedrock API key as api_key=)"
    )


class BedrockProvider(HTTPProvider):
    """Any model Amazon Bedrock serves through Converse, with SigV4 (botocore) or a Bedrock API key."""

    kind = KIND
    api_key_env = "AWS_BEARER_TOKEN_BEDROCK"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile: str | None = None,
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        if (aws_access_key_id is None) != (aws_secret_access_key is None):
            raise ValueError("pass aws_access_key_id and aws_secret_access_key together")
        if api_key is None and (aws_access_key_id is not None or profile is not None):
            self.api_key = None  # explicit AWS credentials win over AWS_BEARER_TOKEN_BEDROCK
        self.profile = profile
        self._access_key = aws_access_key_id
        self._secret_key = aws_secret_access_key
        self._session_token = aws_session_token
        self._session: Any = None
        self._credentials: Any = None
        self._frozen: Any = None  # the last credentials a request was signed with
        self._lock = threading.Lock()
        if not self.api_key and importlib.util.find_spec("botocore") is None:
            raise _botocore_missing()
        self.region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self._profile_region()
            or _region_from_url(base_url)
        )
        if not base_url and self.region:
            self.base_url = f"https://bedrock-runtime.{self.region}.amazonaws.com"

    def _profile_region(self) -> str | None:
        """The region of the AWS profile (reads the config file once, at construction)."""
        if importlib.util.find_spec("botocore") is None:
            return None
        region = self._botocore_session().get_config_variable("region")
        return str(region) if region else None

    def _botocore_session(self) -> Any:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.Session(profile=self.profile)
        return self._session

    def __repr__(self) -> str:  # never shows a credential
        return f"{type(self).__name__}(base_url={self.base_url!r}, region={self.region!r})"

    def secrets(self) -> Iterable[str | None]:
        frozen = self._frozen
        return (
            self.api_key,
            self._secret_key,
            self._session_token,
            frozen.secret_key if frozen is not None else None,
            frozen.token if frozen is not None else None,
        )

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        """Bedrock names the exception in `x-amzn-ErrorType`, a header `error_details` cannot see, and some
        exceptions need another status than theirs: so the whole mapping is replaced."""
        text = content.decode("utf-8", errors="replace")
        try:
            body = loads(content) if content else None
        except ValueError:
            body = None
        return bedrock_error(
            error_type_of(response.headers.get("x-amzn-errortype"), body),
            response.status_code,
            error_message_of(body, text, response.status_code),
            retry_after=response.headers.get("retry-after"),
            secrets=self.secrets(),
        )

    async def list_models(self) -> list[str]:
        return list(self.models or ())

    def url(self, model: str, operation: str) -> str:
        if not self.base_url:
            raise GatewayError(
                f"{KIND}: no AWS region configured (pass region= or base_url=, or set AWS_REGION)",
                status=500,
                type="server_error",
                code="provider_not_configured",
            )
        return f"{self.base_url}/model/{path_segment(model)}/{operation}"

    # -- signing ----------------------------------------------------------------------------------------

    async def sign(self, request: httpx.Request) -> None:
        """SigV4 over the final body, unless a Bedrock API key (bearer) is in use."""
        if self.api_key:
            return
        if not self.region:
            raise GatewayError(
                f"{KIND}: no AWS region configured for SigV4 (pass region= or set AWS_REGION)",
                status=500,
                type="server_error",
                code="provider_not_configured",
            )
        frozen = await self._frozen_credentials()
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        aws_request = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"host": request.headers["host"], "content-type": request.headers["content-type"]},
        )
        SigV4Auth(frozen, SIGNING_NAME, self.region).add_auth(aws_request)
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]

    async def _frozen_credentials(self) -> Any:
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if credentials is not None and not (refresh_needed is not None and refresh_needed()):
            frozen = credentials.get_frozen_credentials()
        else:  # first use, or a refresh is due: files, STS, SSO or IMDS may be read
            frozen = await anyio.to_thread.run_sync(self._load_frozen_credentials)
        self._frozen = frozen
        return frozen

    def _load_frozen_credentials(self) -> Any:
        """Resolve the credential chain once, then freeze (refreshing if due). Runs in a worker thread."""
        try:
            with self._lock:
                if self._credentials is None:
                    self._credentials = self._resolve_credentials()
            return self._credentials.get_frozen_credentials()
        except GatewayError:
            raise
        except Exception as exc:  # botocore's errors: no credentials, SSO token expired, STS refused...
            raise GatewayError(
                redact(
                    f"{KIND}: AWS credentials could not be loaded ({type(exc).__name__}: {exc})",
                    self.secrets(),
                ),
                status=502,
                type="server_error",
                code="upstream_authentication_error",
            ) from None

    def _resolve_credentials(self) -> Any:
        if importlib.util.find_spec("botocore") is None:
            raise _botocore_missing()
        if self._access_key is not None:
            from botocore.credentials import Credentials

            return Credentials(self._access_key, self._secret_key, self._session_token)
        credentials = self._botocore_session().get_credentials()
        if credentials is None:
            raise GatewayError(
                f"{KIND}: no AWS credentials found (environment, shared files, SSO or instance role)",
                status=502,
                type="server_error",
                code="upstream_authentication_error",
            )
        return credentials

    # -- calls ------------------------------------------------------------------------------------------

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = to_converse_request(request, model)
        response = await self.post_json(self.url(model, "converse"), native.body)
        if not isinstance(response, Mapping):
            raise bad_upstream_data(KIND, "the response is not an object")
        return to_completion(response, model, tool_names=native.tool_names, json_tool=native.json_tool)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    async def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        native = to_converse_request(request, model)
        translator = StreamTranslator(model, tool_names=native.tool_names, json_tool=native.json_tool)
        decoder = event_stream_decoder()
        headers = {"accept": EVENT_STREAM}
        async with self.open_stream(self.url(model, "converse-stream"), native.body, headers) as response:
            if EVENT_STREAM not in response.headers.get("content-type", ""):
                raise self.error_from_response(response, await response.aread())
            secrets = tuple(self.secrets())  # after signing: includes the credentials just used
            body = cast(AsyncGenerator[bytes, None], self.iter_bytes(response))
            async with aclosing(body):
                try:
                    reads = (decoder.feed(data) async for data in body)
                    frames = FrameTranslator(translator, decoder, secrets)
                    async for batch in translate_reads(reads, frames):
                        yield batch
                except EventStreamError as exc:
                    raise bad_upstream_data(KIND, str(exc)) from None
