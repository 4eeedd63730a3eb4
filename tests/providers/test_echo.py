"""The echo provider's tool-call arguments: what a scripted client (or Claude Code) can steer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgi_llm_gateway.providers import EchoProvider

READ: Any = {
    "type": "function",
    "function": {
        "name": "Read",
        "parameters": {
            "type": "object",
            "properties": {
                "file_path": {"type": "string"},
                "limit": {"type": "integer"},
                "raw": {"type": "boolean"},
            },
            "required": ["file_path"],
        },
    },
}


def arguments(text: str, tool: Any = READ) -> dict[str, Any]:
    request = {"model": "m", "messages": [{"role": "user", "content": text}], "tools": [tool]}
    completion = asyncio.run(EchoProvider().complete(request, "m"))
    [call] = completion["choices"][0]["message"]["tool_calls"]
    return dict(json.loads(call["function"]["arguments"]))


def test_arguments_given_in_a_call_like_mention_are_used_and_typed() -> None:
    assert arguments("Read(file_path=/tmp/notes.txt, limit=20, raw=true) please") == {
        "file_path": "/tmp/notes.txt",
        "limit": 20,
        "raw": True,
    }


def test_only_required_properties_are_filled_when_nothing_is_given() -> None:
    assert arguments("Read the notes") == {"file_path": "Read the notes"}


def test_without_required_every_property_is_filled() -> None:
    tool = json.loads(json.dumps(READ))
    del tool["function"]["parameters"]["required"]
    assert set(arguments("Read it", tool)) == {"file_path", "limit", "raw"}


def test_echo_tool_call_ids_differ_between_turns() -> None:
    """Regression: the id was a hash of the call's position, name and arguments only, so a conversation that
    called the same tool twice got the same id twice (a Responses chain then held two function_call items
    with one call_id, and a client matched the second output to the first call)."""
    first_turn: list[Any] = [{"role": "user", "content": "Read(file_path=a.txt)"}]
    first = asyncio.run(EchoProvider().complete({"messages": first_turn, "tools": [READ]}, "m"))
    [call] = first["choices"][0]["message"]["tool_calls"]
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "hello"},
        {"role": "user", "content": "Read(file_path=a.txt)"},
    ]
    second = asyncio.run(EchoProvider().complete({"messages": second_turn, "tools": [READ]}, "m"))
    [again] = second["choices"][0]["message"]["tool_calls"]
    assert again["function"] == call["function"]
    assert again["id"] != call["id"]
    # Still deterministic: the same conversation gets the same id.
    repeat = asyncio.run(EchoProvider().complete({"messages": second_turn, "tools": [READ]}, "m"))
    assert repeat["choices"][0]["message"]["tool_calls"][0]["id"] == again["id"]
