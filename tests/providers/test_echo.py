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
