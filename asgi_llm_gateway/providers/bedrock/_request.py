"""OpenAI chat request → Converse body. Pure: the client's request is read, never changed (fallback
targets share it)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...errors import GatewayError
from ...translate import (
    max_tokens_of,
    parse_arguments,
    parse_data_url,
    stop_of,
    text_of,
    unsupported,
)
from ...wire import dumps
from ..base import Request
from ..caching import AutoCache, Marks
from ..claude import (
    EFFORTS,
    JSON_TOOL,
    JSON_TOOL_DESCRIPTION,
    TurnShape,
    adaptive_thinking,
    add_turn,
    default_max_tokens,
    finish_turns,
    json_answer,
    output_schema,
    thinking_for,
    thinking_lost,
)
from ..reasoning import Thought
from ._errors import KIND
from ._names import bedrock_name, is_claude, model_family, model_name, native_json, tool_name, tool_use_id

__all__ = ["NativeRequest", "to_native"]

Block = dict[str, Any]

# Tool results are `toolResult` blocks; the lead-in user turn is one word.
_TURNS = TurnShape(
    is_tool_result=lambda block: "toolResult" in block,
    lead_in={"text": "Continue."},
    is_reasoning=lambda block: "reasoningContent" in block,
)
# Sent for a tool that returned nothing: Converse rejects blank text blocks.
_EMPTY_TOOL_RESULT = "(empty)"

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


# The model families that cache prompts, and the sections a cachePoint may end there (Nova caches no tools).
_CACHE_SECTIONS = {"anthropic": ("tools", "system", "messages"), "amazon": ("system", "messages")}


class NativeRequest(NamedTuple):
    """A Converse body, the client's tool names by the Bedrock names that differ from them, and, when
    `response_format` is served by a forced tool, that tool's name."""

    body: dict[str, Any]
    tool_names: Mapping[str, str]
    json_tool: str | None


def to_native(
    request: Request,
    model: str,
    *,
    auto_cache: AutoCache | None = None,
    thoughts: Mapping[int, Sequence[Thought]] | None = None,
) -> NativeRequest:
    """Translate a validated OpenAI chat-completions request into a Converse body; `auto_cache` places cache
    points when the request has none (see `caching`); `thoughts` are the signed reasoning blocks to send
    before assistant messages, by message index (`reasoning.replays`)."""
    _reject_unsupported(request)
    names: dict[str, str] = {}
    marks = Marks()
    system, messages = _conversation(request["messages"], names, marks, thoughts or {})
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

    tools, choice = _tools(request, names, marks)
    text_format, tools, choice, json_tool = _structured_output(
        request, model, tools, choice, thinking_on=thinking_on and is_claude(model)
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
    if "metadata" in request and (metadata := _request_metadata(request["metadata"])):
        body["requestMetadata"] = metadata
    tier = request.get("service_tier")
    if tier in ("priority", "default", "flex"):
        body["serviceTier"] = {"type": tier}
    _place_cache_points(marks, auto_cache, body, model)
    return NativeRequest(body, names, json_tool)


def _place_cache_points(marks: Marks, auto_cache: AutoCache | None, body: dict[str, Any], model: str) -> None:
    """A `cachePoint` block after each block the client (or `auto_cache`) marked, in prompt order, on the
    model families that cache; elsewhere the marks are dropped (Converse would refuse the blocks)."""
    if not marks and auto_cache is None:
        return
    sections = _CACHE_SECTIONS.get(model_family(model) or "", ())
    if not sections:
        return
    tools = (body.get("toolConfig") or {}).get("tools") or [] if "tools" in sections else []
    system, turns = body.get("system") or [], body["messages"]
    last_user = turns[-1]["content"] if turns and turns[-1]["role"] == "user" else []
    marks.auto(auto_cache, tools, system, last_user)
    marks.settle([tools, system, *(turn["content"] for turn in turns)], _put_cache_point)


def _put_cache_point(blocks: list[Block], index: int, ttl: str) -> None:
    point = {"type": "default"} if ttl == "5m" else {"type": "default", "ttl": ttl}
    blocks.insert(index + 1, {"cachePoint": point})


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
    messages: Sequence[Mapping[str, Any]],
    names: dict[str, str],
    marks: Marks,
    thoughts: Mapping[int, Sequence[Thought]],
) -> tuple[list[Block], list[Block]]:
    """(system blocks, alternating messages) from OpenAI messages; `marks` notes the blocks that end a cache
    breakpoint (a system message in mid-conversation joins `system`, and so does its breakpoint);
    `thoughts` open the assistant messages they belong to."""
    system: list[Block] = []
    turns: list[Block] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        # Cache intent on the message (`asks`), or possibly on parts that become one block (`joined`):
        # a few key lookups for the many messages that ask for nothing.
        asks = "cache_control" in message or "prompt_cache_breakpoint" in message
        joined = asks or type(message.get("content")) is list
        param = f"messages[{i}]"
        if role in ("system", "developer"):
            text = text_of(message.get("content"), f"{param}.content")
            if text.strip():
                system.append({"text": text})
                if joined:
                    marks.on_message(system[-1:], message)
        elif role == "user":
            blocks = _user_blocks(message.get("content"), param, marks)
            if asks:
                marks.on_last(blocks, message)
            add_turn(turns, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(message, param, names)
            if joined:
                marks.on_message(blocks, message)
            if thoughts and i in thoughts:
                blocks = [*_reasoning_blocks(thoughts[i]), *blocks]
            add_turn(turns, "assistant", blocks)
        elif role == "tool":
            blocks = [_tool_result(message, param)]
            if joined:
                marks.on_message(blocks, message)
            add_turn(turns, "user", blocks)
        else:
            raise GatewayError(f"messages with role '{role}' are not supported", param=f"{param}.role")
    return system, finish_turns(turns, _TURNS)


def _user_blocks(content: Any, param: str, marks: Marks) -> list[Block]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content and content.strip() else []
    blocks: list[Block] = []
    for j, part in enumerate(content):
        block = _user_part(part, f"{param}.content[{j}]")
        if block is not None:
            blocks.append(marks.on(block, part))
    return blocks


def _user_part(part: Mapping[str, Any], param: str) -> Block | None:
    kind = part.get("type")
    if kind == "text":
        text = part.get("text") or ""
        return {"text": text} if text.strip() else None
    if kind == "image_url":
        return _image(part.get("image_url") or {}, f"{param}.image_url.url")
    if kind == "file":
        return _document(part.get("file") or {}, f"{param}.file")
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return {"audio": {"format": audio.get("format"), "source": {"bytes": audio.get("data")}}}
    raise GatewayError(
        f"content part type '{kind}' is not supported by the {KIND} provider",
        param=f"{param}.type",
        code="invalid_value",
    )


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
                    "name": bedrock_name(str(function.get("name", "")), names),
                    "input": parse_arguments(function.get("arguments"), f"{call_param}.function.arguments"),
                }
            }
        )
    return blocks


def _reasoning_blocks(thoughts: Sequence[Thought]) -> list[Block]:
    """Signed reasoning as Converse takes it back: unchanged."""
    return [
        {"reasoningContent": {"redactedContent": t.data}}
        if t.data is not None
        else {"reasoningContent": {"reasoningText": {"text": t.text or "", "signature": t.signature}}}
        for t in thoughts
    ]


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
    name = model_name(model)
    if family == "anthropic":
        if effort == "none":
            return {"thinking": {"type": "disabled"}}, None
        if thinking_lost(messages, _TURNS):
            return {}, None  # the signed reasoning did not come back: see claude.thinking_lost
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


def _tools(
    request: Request, names: dict[str, str], marks: Marks
) -> tuple[list[Block] | None, Block | str | None]:
    """(the client's tools, Converse `toolChoice`, or "none")."""
    declared = request.get("tools")
    choice = request.get("tool_choice")
    if declared is None and choice is None:
        return None, None
    tools = [marks.on(_tool(t, f"tools[{i}]", names), t) for i, t in enumerate(declared or ())] or None
    if choice is None or choice == "auto":
        return tools, None
    if choice == "none":
        return tools, "none"
    if choice == "required":
        return tools, {"any": {}}
    if choice.get("type") == "function":
        return tools, {"tool": {"name": bedrock_name(str(choice["function"]["name"]), names)}}
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
        "name": bedrock_name(str(function.get("name", "")), names),
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
    if request.get("response_format") is None:
        return None, tools, choice, None
    answer = json_answer(
        request,
        model,
        provider=KIND,
        native_json=native_json,
        tool_demanded=isinstance(choice, dict),
        thinking_on=thinking_on,
        tool_names=(tool["toolSpec"]["name"] for tool in tools or ()),
        thinking_scope=" on Claude",
    )
    if answer is None:
        return None, tools, choice, None
    if answer.native:
        options = request["response_format"].get("json_schema") or {}
        native_schema = output_schema(answer.schema or {}) if is_claude(model) else answer.schema
        definition: Block = {"schema": dumps(native_schema).decode()}
        for key in ("name", "description"):
            if options.get(key):
                definition[key] = options[key]
        return {"type": "json_schema", "structure": {"jsonSchema": definition}}, tools, choice, None
    json_tool: Block = {
        "toolSpec": {
            "name": JSON_TOOL,
            "description": JSON_TOOL_DESCRIPTION,
            "inputSchema": {"json": answer.schema},
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
