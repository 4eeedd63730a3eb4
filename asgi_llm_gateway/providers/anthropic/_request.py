"""OpenAI chat request → Messages API body. Pure: the client's request is read, never changed (fallback
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
from ..base import Request
from ..caching import AutoCache, Marks
from ..claude import (
    JSON_TOOL,
    JSON_TOOL_DESCRIPTION,
    TurnShape,
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

__all__ = ["NativeRequest", "to_native", "tool_use_id"]

Block = dict[str, Any]

# Tool results are `tool_result` blocks; the lead-in user turn is plainly not an instruction.
_TURNS = TurnShape(
    is_tool_result=lambda block: block["type"] == "tool_result",
    lead_in={"type": "text", "text": "(start of conversation)"},
    is_reasoning=lambda block: block["type"] in ("thinking", "redacted_thinking"),
)

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

_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class NativeRequest(NamedTuple):
    """A Messages API body and, when `response_format` is served by a forced tool, that tool's name."""

    body: dict[str, Any]
    json_tool: str | None


def _native_json(model: str) -> bool:
    """Whether the model supports `output_config.format`."""
    return not model.startswith(_NO_NATIVE_JSON)


def tool_use_id(openai_id: str) -> str:
    """Anthropic ids must match `^[a-zA-Z0-9_-]+$`; the same mapping is used for calls and results."""
    return _TOOL_ID_UNSAFE.sub("_", openai_id) or "_"


def to_native(
    request: Request,
    model: str,
    *,
    stream: bool = False,
    default_limit: int | None = None,
    auto_cache: AutoCache | None = None,
    thoughts: Mapping[int, Sequence[Thought]] | None = None,
) -> NativeRequest:
    """Translate a validated OpenAI chat request into a Messages API body.

    `default_limit` replaces the per-model `max_tokens` default (`default_max_tokens`) when the request sets
    no limit; `auto_cache` places cache breakpoints when the request has none (see `caching`); `thoughts`
    are the signed reasoning blocks to send before assistant messages, by message index (`reasoning.replays`).
    """
    _reject_unsupported(request)
    marks = Marks()
    system, messages = _conversation(request["messages"], marks, thoughts or {})
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
    tools, tool_choice = _tools(request, marks)
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
    _place_breakpoints(marks, auto_cache, body)
    return NativeRequest(body, json_tool)


def _place_breakpoints(marks: Marks, auto_cache: AutoCache | None, body: dict[str, Any]) -> None:
    """`cache_control` on the blocks the client (or `auto_cache`) marked, in prompt order."""
    if not marks and auto_cache is None:
        return
    tools, system, turns = body.get("tools") or [], body.get("system") or [], body["messages"]
    last_user = turns[-1]["content"] if turns and turns[-1]["role"] == "user" else []
    marks.auto(auto_cache, tools, system, last_user)
    marks.settle([tools, system, *(turn["content"] for turn in turns)], _put_cache_control)


def _put_cache_control(blocks: list[Block], index: int, ttl: str) -> None:
    control = {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}
    blocks[index] = {**blocks[index], "cache_control": control}


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


def _conversation(
    messages: Sequence[Mapping[str, Any]], marks: Marks, thoughts: Mapping[int, Sequence[Thought]]
) -> tuple[list[Block], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant turns) from OpenAI messages; `marks` notes the blocks
    that end a cache breakpoint; `thoughts` open the assistant messages they belong to."""
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        # Cache intent on the message (`asks`), or possibly on parts that become one block (`joined`):
        # a few key lookups for the many messages that ask for nothing.
        asks = "cache_control" in message or "prompt_cache_breakpoint" in message
        joined = asks or type(message.get("content")) is list
        if role in ("system", "developer"):
            text = text_of(message.get("content"), f"messages[{i}].content")
            if text:
                system.append({"type": "text", "text": text})
                if joined:
                    marks.on_message(system[-1:], message)
        elif role == "user":
            blocks = _user_blocks(message, i, marks)
            if asks:
                marks.on_last(blocks, message)
            add_turn(turns, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(message, i)
            if joined:
                marks.on_message(blocks, message)
            if thoughts and i in thoughts:
                blocks = [*_thinking_blocks(thoughts[i]), *blocks]
            add_turn(turns, "assistant", blocks)
        elif role == "tool":
            blocks = [_tool_result(message, i)]
            if joined:
                marks.on_message(blocks, message)
            add_turn(turns, "user", blocks)
        else:
            raise unsupported(KIND, f"messages[{i}].role", f"role '{role}'")
    return system, finish_turns(turns, _TURNS)


def _user_blocks(message: Mapping[str, Any], i: int, marks: Marks) -> list[Block]:
    content = message.get("content")
    blocks: list[Block]
    if content is None or isinstance(content, str):
        blocks = [{"type": "text", "text": content}] if content else []
    else:
        blocks = [
            marks.on(b, part)
            for j, part in enumerate(content)
            if (b := _user_part(part, f"messages[{i}].content[{j}]"))
        ]
    name = message.get("name")
    if name and blocks:
        if blocks[0]["type"] == "text":
            blocks[0]["text"] = f"{name}: {blocks[0]['text']}"  # our own block: its mark stays
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


def _thinking_blocks(thoughts: Sequence[Thought]) -> list[Block]:
    """Signed reasoning as the Messages API takes it back: unchanged."""
    return [
        {"type": "redacted_thinking", "data": t.data}
        if t.data is not None
        else {"type": "thinking", "thinking": t.text or "", "signature": t.signature}
        for t in thoughts
    ]


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


def _tools(request: Request, marks: Marks) -> tuple[list[Block] | None, Block | None]:
    """(tools, tool_choice) in Anthropic's shape; both None when the request has no tools."""
    tools = request.get("tools")
    if not tools:
        return None, None
    native = [marks.on(_tool(tool, f"tools[{i}]"), tool) for i, tool in enumerate(tools)]
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
    if thinking_lost(messages, _TURNS):
        return None, None
    return thinking_for(effort, model, max_tokens, "Anthropic")


def _structured_output(
    request: Request, model: str, tools: list[Block] | None, tool_choice: Block | None, thinking_on: bool
) -> tuple[Block | None, list[Block] | None, Block | None, str | None]:
    """(output_config.format, tools, tool_choice, json tool name) for the request's `response_format`."""
    if request.get("response_format") is None:
        return None, tools, tool_choice, None
    answer = json_answer(
        request,
        model,
        provider=KIND,
        native_json=_native_json,
        tool_demanded=tool_choice is not None and tool_choice["type"] in ("any", "tool"),
        thinking_on=thinking_on,
        tool_names=(tool["name"] for tool in tools or ()),
    )
    if answer is None:
        return None, tools, tool_choice, None
    if answer.native:
        format_ = {"type": "json_schema", "schema": output_schema(answer.schema or {"type": "object"})}
        return format_, tools, tool_choice, None
    json_tool = {"name": JSON_TOOL, "description": JSON_TOOL_DESCRIPTION, "input_schema": answer.schema}
    if not tools or (tool_choice is not None and tool_choice["type"] == "none"):
        forced: Block = {"type": "tool", "name": JSON_TOOL}
    else:
        # The model must either call one of the client's tools or answer through the JSON tool.
        forced = {"type": "any", **{k: v for k, v in (tool_choice or {}).items() if k != "type"}}
    return None, [*(tools or ()), json_tool], forced, JSON_TOOL
