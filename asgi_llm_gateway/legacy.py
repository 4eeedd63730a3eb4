"""OpenAI's deprecated function calling (`functions`, `function_call`, `role: "function"`), as tools.

Older clients still send it, and only OpenAI itself still accepts it: Anthropic, Gemini and Bedrock have no
such thing, and Mistral drops the fields without a word. So the gateway rewrites such a request into tools at
the edge, once, for every provider; and when the client asked with `functions`, it rewrites the answer back
into the shape that client reads (`message.function_call`, `finish_reason: "function_call"`).

A legacy answer carries at most one function call, so the rewritten request asks for no parallel calls, and
only the first call of an answer is kept. Pure functions, dict in, dict out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import GatewayError

__all__ = ["as_function_call_chunk", "as_function_call_completion", "uses_functions", "with_tools"]


def uses_functions(request: Mapping[str, Any]) -> bool:
    """Whether any part of the request is in the deprecated form."""
    if request.get("functions") is not None or request.get("function_call") is not None:
        return True
    return any(
        message.get("role") == "function" or message.get("function_call") is not None
        for message in request.get("messages") or ()
    )


def with_tools(request: Mapping[str, Any]) -> dict[str, Any]:
    """The same request in tools: `functions` → `tools`, `function_call` → `tool_choice`, assistant
    `function_call`s → `tool_calls` with generated ids, function messages → tool messages answering them."""
    body = dict(request)
    functions = body.pop("functions", None)
    function_call = body.pop("function_call", None)
    names: set[str] = set()
    if functions is not None:
        if body.get("tools"):
            raise _invalid("functions", "send either `tools` or the deprecated `functions`, not both")
        body["tools"] = [{"type": "function", "function": function} for function in functions]
        body["parallel_tool_calls"] = False  # a legacy answer carries one function call
        names = {function.get("name") for function in functions}
    if function_call is not None:
        if isinstance(function_call, str):
            body["tool_choice"] = function_call  # "none" or "auto" (the schema allows nothing else)
        else:
            name = function_call.get("name")
            if name not in names:
                raise _invalid("function_call.name", f"'{name}' is not one of the functions in `functions`")
            body["tool_choice"] = {"type": "function", "function": {"name": name}}
    body["messages"] = _messages(body["messages"])
    return body


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    unanswered: dict[str, list[str]] = {}  # function name -> ids of its calls not answered yet
    for i, message in enumerate(messages):
        role = message.get("role")
        call = message.get("function_call") if role == "assistant" else None
        if call is not None:
            call_id = f"call_fn{i}"
            name = call.get("name")
            unanswered.setdefault(str(name), []).append(call_id)
            rewritten = {key: value for key, value in message.items() if key != "function_call"}
            tool_call = {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": call.get("arguments") or "{}"},
            }
            rewritten["tool_calls"] = [*(message.get("tool_calls") or ()), tool_call]
            out.append(rewritten)
        elif role == "function":
            name = message.get("name")
            pending = unanswered.get(str(name))
            if not pending:
                raise _invalid(
                    f"messages[{i}].name",
                    f"a function message must answer an earlier assistant function_call to '{name}'",
                )
            content = message.get("content")
            out.append({"role": "tool", "tool_call_id": pending.pop(0), "content": content or ""})
        else:
            out.append(message)
    return out


def as_function_call_completion(completion: dict[str, Any]) -> dict[str, Any]:
    """A `chat.completion` answering a `functions` request, in place: its first tool call as
    `message.function_call`."""
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        calls = message.pop("tool_calls", None)
        if calls:
            function = calls[0].get("function") or {}
            message["function_call"] = {
                "name": function.get("name"),
                "arguments": function.get("arguments", ""),
            }
        _finish(choice)
    return completion


def as_function_call_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A `chat.completion.chunk` answering a `functions` request, in place: deltas of the first tool call
    as `delta.function_call` (name first, then pieces of the arguments); other calls are left out."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        calls = delta.pop("tool_calls", None)
        for call in calls or ():
            if call.get("index", 0) == 0:
                function = call.get("function") or {}
                delta["function_call"] = {
                    key: function[key] for key in ("name", "arguments") if function.get(key) is not None
                }
        _finish(choice)
    return chunk


def _finish(choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") == "tool_calls":
        choice["finish_reason"] = "function_call"


def _invalid(param: str, detail: str) -> GatewayError:
    return GatewayError(f"{param}: {detail}", status=400, param=param, code="invalid_value")
