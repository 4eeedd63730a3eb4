"""A canonical `chat.completion` → a Responses `response`; the pieces the stream encoder shares.

Decisions where the APIs differ:

- `status`: `completed`, or `incomplete` with `incomplete_details.reason` `max_output_tokens` (finish
  `length`) or `content_filter`; then the last item (the one cut short) is `incomplete` too, as OpenAI
  marks it, the others `completed`.
- `output`, in this order: a `reasoning` item when the answer has `reasoning_content`, its text as one
  `summary_text` (never `encrypted_content`: there is no OpenAI reasoning to encrypt, and a client must not
  mistake it for some); a `message` item with one `output_text` part (`annotations: []`, `logprobs: []`)
  and one `refusal` part when there is text or a refusal; one `function_call` item per tool call
  (`call_id` the upstream's call id, or a made-up `call_…` when it gave none; a call to a namespaced
  function carries `namespace` and the member's own name again, see `_tools.py`), or, for a call of a
  custom tool's function, a `custom_tool_call` item (`ctc_…`) whose `input` is read from the arguments
  (`_custom.input_of`).
- Item ids are derived from the response id and the item's position (`msg_<id>_1`): unique as response ids
  are, and the same however often a response is rendered (the stream and `to_response` agree).
- `usage`: `input_tokens` is chat's `prompt_tokens` (cached tokens included, as in both APIs),
  `input_tokens_details` its `cached_tokens` and `cache_write_tokens`, `output_tokens_details` its
  `reasoning_tokens`; null when the upstream reported none (as OpenAI sends it while a response is in
  progress, and as Open Responses allows; OpenAI's document has no null for it).
- The request's parameters are echoed as OpenAI echoes them (`instructions`, `tools` as sent, built-in ones
  included, a function's `description`, `parameters` and `strict` null when not sent, then the tools of the
  conversation's `additional_tools` items: all the tools the model could call, and where the stream encoder
  learns which calls are custom or namespaced; `tool_choice` `auto`,
  `parallel_tool_calls` true, `temperature` and `top_p` 1, `top_logprobs` 0, `service_tier` `default`,
  `text` plain when not sent), with every field Open Responses requires (`completed_at` null: a pure
  function knows no clock; `presence_penalty`, `frequency_penalty` 0), so that a response is valid under
  both documents; `model` is the model the gateway answered with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import GatewayError
from ...translate import answer_text
from ...wire import dumps
from ._custom import input_of
from ._items import input_items
from ._tools import ToolName, offered_tools, tool_names

__all__ = [
    "call_item",
    "failure_error",
    "item_id",
    "message_item",
    "output_items",
    "output_text",
    "reasoning_item",
    "refusal_part",
    "skeleton",
    "status_of",
    "to_response",
    "usage_of",
]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_PASSED_CODES = frozenset({"context_length_exceeded", "insufficient_quota", "rate_limit_exceeded"})


def to_response(
    completion: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    body: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `response` object for a `chat.completion` (only its first choice counts: a Responses request
    asks for one); `body` is the request, echoed; `items` the conversation's whole item list, as `to_chat`
    took it (this request's input when not given), for the tools of its `additional_tools` items."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    status, details = status_of(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []
    if reasoning := message.get("reasoning_content"):
        output.append(reasoning_item(item_id("rs", response_id, 0), reasoning))
    text = answer_text(message.get("content"))
    refusal = message.get("refusal")
    if text or refusal:
        content = ([output_text(text)] if text else []) + ([refusal_part(refusal)] if refusal else [])
        output.append(message_item(item_id("msg", response_id, len(output)), "completed", content))
    response = skeleton(body, response_id=response_id, created_at=created_at, model=model, items=items)
    names = tool_names(response["tools"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = dumps(arguments).decode() if arguments is not None else ""
        index = len(output)
        call_id = call.get("id") or item_id("call", response_id, index)
        item = call_item(response_id, index, call_id, function.get("name") or "", names)
        if item["type"] == "custom_tool_call":
            item.update(status="completed", input=input_of(arguments))
        else:
            item.update(status="completed", arguments=arguments)
        output.append(item)
    if status == "incomplete" and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"  # the item the limit cut short
    response.update(status=status, incomplete_details=details, output=output)
    response["usage"] = usage_of(completion.get("usage"))
    return response


def skeleton(
    body: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    items: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The response before any output (`status: in_progress`, `output: []`, `usage: null`): what a stream's
    `response.created` carries (pass it to `ResponsesStreamEncoder`), and what `to_response` fills in;
    `items` as for `to_response`."""
    tools = offered_tools(body, input_items(body) if items is None else items)
    reasoning = body.get("reasoning") or {}
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": None,
        "status": "in_progress",
        "background": bool(body.get("background")),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store") is not False,
        "temperature": _or(body.get("temperature"), 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_echoed_tool(tool) for tool in tools],
        "top_logprobs": _or(body.get("top_logprobs"), 0),
        "top_p": _or(body.get("top_p"), 1.0),
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
        "metadata": dict(body.get("metadata") or {}),
    }
    if body.get("user") is not None:  # a string when present: the spec has no null for it
        response["user"] = body["user"]
    return response


def output_items(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items a response adds to its conversation (its `output`), as copies."""
    return copy.deepcopy(list(response.get("output") or ()))


def status_of(finish_reason: str | None) -> tuple[str, dict[str, str] | None]:
    """(`status`, `incomplete_details`) for a chat `finish_reason`."""
    reason = _INCOMPLETE.get(finish_reason or "")
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def usage_of(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Responses usage for chat usage; None for none."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    written = (usage.get("prompt_tokens_details") or {}).get("cache_write_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def failure_error(error: GatewayError) -> dict[str, str]:
    """`response.error` for a failure: the codes Responses clients act on pass (Codex stops on
    `context_length_exceeded` and `insufficient_quota`, and waits out a `rate_limit_exceeded` whose message
    says "try again in N s"); any other failure is a `server_error`, the message saying what happened."""
    message = error.message
    if error.code in _PASSED_CODES:
        code = error.code
    elif error.status == 429:
        code = "rate_limit_exceeded"
    else:
        code = "server_error"
    retry_after = error.headers.get("retry-after", "")
    if code == "rate_limit_exceeded" and retry_after.isdigit() and "try again in" not in message.lower():
        message = f"{message} Please try again in {retry_after}s."
    return {"code": code, "message": message}


def item_id(kind: str, response_id: str, index: int) -> str:
    """The id of the output item at `index` (see the module docstring)."""
    return f"{kind}_{response_id.partition('_')[2] or response_id}_{index}"


def reasoning_item(id: str, text: str) -> dict[str, Any]:
    return {"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def call_item(
    response_id: str, index: int, call_id: str, name: str, names: Mapping[str, ToolName]
) -> dict[str, Any]:
    """The item for a call of the chat function `name`, in progress and empty: a `custom_tool_call` (no
    `input` yet) when the function stands for a custom tool, else a `function_call` (no `arguments` yet);
    a flat name from a namespace split again."""
    tool = names.get(name)
    custom = tool is not None and tool.custom
    item: dict[str, Any] = {
        "id": item_id("ctc" if custom else "fc", response_id, index),
        "type": "custom_tool_call" if custom else "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": name,
    }
    if tool is not None:
        if tool.namespace is not None:
            item["namespace"] = tool.namespace
        item["name"] = tool.name
    item["input" if custom else "arguments"] = ""
    return item


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": id, "type": "message", "status": status, "role": "assistant", "content": content}


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _echoed_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as the response echoes it: as sent, a function's `description`, `parameters` and `strict`
    always there (null when not sent), as OpenAI echoes them and both documents require; so inside a
    namespace."""
    kind = tool.get("type")
    if kind == "function":
        echoed = {"description": tool.get("description"), "parameters": tool.get("parameters")}
        return {**tool, **echoed, "strict": tool.get("strict")}
    if kind == "namespace":
        return {**tool, "tools": [_echoed_tool(member) for member in tool.get("tools") or ()]}
    return dict(tool)
