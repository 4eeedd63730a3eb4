"""Deprecated function calling rewritten into tools, and answers rewritten back (legacy.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.legacy import (
    as_function_call_chunk,
    as_function_call_completion,
    uses_functions,
    with_tools,
)

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    },
    {"role": "function", "name": "get_weather", "content": "sunny"},
    {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
    },
    {"role": "function", "name": "get_weather", "content": "rain"},
]


def test_functions_and_function_call_become_tools_and_tool_choice() -> None:
    request = {
        "model": "m",
        "messages": HISTORY[:1],
        "functions": [WEATHER],
        "function_call": {"name": "get_weather"},
    }
    original = copy.deepcopy(request)
    body = with_tools(request)
    assert request == original  # pure: the client's request is untouched
    assert body == {
        "model": "m",
        "messages": HISTORY[:1],
        "tools": [{"type": "function", "function": WEATHER}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }


@pytest.mark.parametrize("choice", ["none", "auto"])
def test_function_call_strings(choice: str) -> None:
    body = with_tools(
        {"model": "m", "messages": HISTORY[:1], "functions": [WEATHER], "function_call": choice}
    )
    assert body["tool_choice"] == choice


def test_history_becomes_tool_calls_answered_in_order() -> None:
    body = with_tools({"model": "m", "messages": HISTORY})
    assert "tools" not in body and "parallel_tool_calls" not in body  # only the history was old-style
    assert body["messages"] == [
        HISTORY[0],
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_fn1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_fn1", "content": "sunny"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_fn3",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_fn3", "content": "rain"},
    ]


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        ({"messages": [HISTORY[0], HISTORY[2]]}, "messages[1].name"),  # answers a call that was never made
        (
            {"messages": HISTORY[:1], "functions": [WEATHER], "function_call": {"name": "nope"}},
            "function_call.name",
        ),
        ({"messages": HISTORY[:1], "function_call": {"name": "get_weather"}}, "function_call.name"),
        (
            {
                "messages": HISTORY[:1],
                "functions": [WEATHER],
                "tools": [{"type": "function", "function": WEATHER}],
            },
            "functions",
        ),
    ],
)
def test_inconsistent_legacy_requests_are_400_with_param(request_: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        with_tools({"model": "m", **request_})
    assert (caught.value.status, caught.value.param) == (400, param)


def test_uses_functions() -> None:
    assert uses_functions({"messages": HISTORY})
    assert uses_functions({"messages": HISTORY[:1], "functions": [WEATHER]})
    assert uses_functions({"messages": HISTORY[:1], "function_call": "auto"})
    assert not uses_functions({"messages": HISTORY[:1], "functions": None, "tools": [{"type": "function"}]})


def test_completion_answers_with_the_first_call_as_function_call() -> None:
    completion: dict[str, Any] = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        },
                        {"id": "b", "type": "function", "function": {"name": "other", "arguments": "{}"}},
                    ],
                },
            },
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}},
        ]
    }
    as_function_call_completion(completion)
    assert completion["choices"] == [
        {
            "index": 0,
            "finish_reason": "function_call",
            "message": {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": "{}"},
            },
        },
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}},
    ]


def test_chunks_carry_the_first_call_as_function_call_deltas() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    start = chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}}
            ]
        }
    )
    piece = chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]})
    second = chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]})
    end = chunk({}, "tool_calls")
    assert as_function_call_chunk(start)["choices"][0]["delta"] == {
        "function_call": {"name": "f", "arguments": ""}
    }
    assert as_function_call_chunk(piece)["choices"][0]["delta"] == {"function_call": {"arguments": '{"x":'}}
    assert as_function_call_chunk(second)["choices"][0]["delta"] == {}
    assert as_function_call_chunk(end)["choices"][0]["finish_reason"] == "function_call"
