"""A Responses request and its conversation → the canonical chat request, for every upstream that does not
speak Responses. Pure: the client's body and items are read, never changed.

Field by field:

- `model` → the same (routing reads it).
- `instructions` → the first system message.
- the conversation's items (history, then `input`) → `messages` (see `_items.py`).
- `tools` (and those of `additional_tools` items), `tool_choice`, `parallel_tool_calls` → the same,
  flattened, custom tools as one-string functions (see `_tools.py` and `_custom.py`).
- `text.format` json_schema (`name`, `schema`, `strict`, `description`) or json_object →
  `response_format`, unchanged in meaning: the upstream enforces it (natively, or through its provider's
  own translation), and it is never written into the prompt.
- `text.verbosity` → `verbosity`.
- `reasoning.effort` → `reasoning_effort` (`reasoning.summary` is OpenAI's: a chat upstream returns its
  reasoning as it is).
- `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p` → the same.
- `user`, else `safety_identifier` → `user`.
- `stream` → `stream`, with `stream_options.include_usage` (the encoder reports the usage at the end).

Left behind, with the reason: `metadata` (chat's needs `store`; the gateway echoes it on the response),
`store`, `previous_response_id`, `conversation`, `background` (the endpoint's, not the upstream's), `include`
(`reasoning.encrypted_content` and logprobs are OpenAI's), `prompt_cache_key`, `prompt_cache_retention`,
`prompt_cache_options`, `service_tier`, `truncation`, `top_logprobs`, `max_tool_calls` (OpenAI's
built-in tools), `stream_options`, `context_management`, Codex's `client_metadata`, and every unknown
field. A stored `prompt` template can only be expanded by OpenAI: a 400; so is a request that leaves
nothing to send (no instructions, no input, no history: a chat request needs a message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import GatewayError
from ._items import chat_messages
from ._tools import add_tools

__all__ = ["to_chat"]


def to_chat(
    body: Mapping[str, Any], items: Sequence[Mapping[str, Any]], *, strict_tools: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """(the canonical chat request, the types of the built-in tools dropped) for a Responses request the
    schema accepted (`validate_responses_request`) and the conversation's FULL item list: the history the
    request continues, then `input_items(body)` (its `additional_tools` items offer tools too). With
    `strict_tools`, a built-in tool is a 400 instead."""
    if body.get("prompt") is not None:
        raise GatewayError(
            "prompt: stored prompt templates are served by OpenAI upstreams only, and this model is served "
            "by another provider; send instructions and input instead",
            status=400,
            param="prompt",
            code="unsupported_parameter",
        )
    first_input = len(items) - _input_length(body)
    messages = chat_messages(items, body.get("instructions"), first_input)
    if not messages:
        raise GatewayError(
            "input: a value is required: the request has no instructions, no input and no conversation "
            "to continue",
            status=400,
            param="input",
            code="missing_required_parameter",
        )
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    dropped = add_tools(chat, body, items, first_input, strict_tools=strict_tools)
    _add_text(chat, body.get("text"))
    if (effort := (body.get("reasoning") or {}).get("effort")) is not None:
        chat["reasoning_effort"] = effort
    if (max_output := body.get("max_output_tokens")) is not None:
        chat["max_completion_tokens"] = max_output
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if user := body.get("user") or body.get("safety_identifier"):
        chat["user"] = user
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat, dropped


def _input_length(body: Mapping[str, Any]) -> int:
    """How many items this request's `input` makes (`input_items` makes one per element)."""
    given = body.get("input")
    if given is None:
        return 0
    return 1 if isinstance(given, str) else len(given)


def _add_text(chat: dict[str, Any], text: Mapping[str, Any] | None) -> None:
    if not text:
        return
    if (verbosity := text.get("verbosity")) is not None:
        chat["verbosity"] = verbosity
    form = text.get("format")
    if not form:
        return
    kind = form["type"]
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema: dict[str, Any] = {"name": form["name"]}
        if form.get("description"):
            schema["description"] = form["description"]
        schema["schema"] = form["schema"]
        if form.get("strict") is not None:
            schema["strict"] = form["strict"]
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
