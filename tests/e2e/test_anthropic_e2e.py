"""OpenAI SDK → gateway (uvicorn, loopback) → fake Anthropic Messages API (uvicorn, loopback).

The fake refuses what the real API refuses, so every answer here also proves the gateway sent a request
Anthropic would accept; `fake.last` is the native body it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import AnthropicProvider
from tests.fakes.anthropic import KEY, FakeAnthropic, respond
from tests.support.server import serve
from tests.support.tools import WEATHER

MODEL = "claude/claude-haiku-4-5"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


class Stack:
    def __init__(self, fake: FakeAnthropic, client: openai.OpenAI) -> None:
        self.fake = fake
        self.client = client


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    fake = FakeAnthropic()
    with serve(fake) as upstream:
        gateway = Gateway(
            providers={
                "claude": AnthropicProvider(api_key=KEY, base_url=upstream),
                "wrongkey": AnthropicProvider(api_key="sk-ant-wrong-key-000000", base_url=upstream),
            },
            policy=Policy(max_attempts=1),  # error mapping is tested here, retries elsewhere
        )
        with (
            serve(gateway) as url,
            openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
        ):
            yield Stack(fake, client)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_text(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *user("Hello there")]
    )
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    request = stack.fake.requests[-1]
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert request.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
        "system": [{"type": "text", "text": "Be brief."}],
    }


def test_stream_with_usage(stack: Stack) -> None:
    chunks = list(
        stack.client.chat.completions.create(
            model=MODEL, messages=user("one two CACHED"), stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two CACHED"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100
    assert usage.prompt_tokens == respond(stack.fake.last, "msg")["usage"]["input_tokens"] + 100 + 7
    assert usage.completion_tokens == 3


def test_stream_without_include_usage_has_no_usage_chunk(stack: Stack) -> None:
    chunks = list(stack.client.chat.completions.create(model=MODEL, messages=user("hi"), stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_single_tool_call(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=MODEL, messages=user("get_weather(city=Paris) please"), tools=[WEATHER, TIME]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Calling get_weather."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]


def test_legacy_functions_work_on_claude(stack: Stack) -> None:
    """`functions`/`function_call` (deprecated, still sent by older clients) used to be a 400 here."""
    function = WEATHER["function"]
    messages: list[Any] = user("get_weather(city=Paris) please")
    first = stack.client.chat.completions.create(model=MODEL, messages=messages, functions=[function])
    choice = first.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call is not None
    assert (choice.message.function_call.name, json.loads(choice.message.function_call.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert stack.fake.last["tool_choice"]["disable_parallel_tool_use"] is True
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "function", "name": "get_weather", "content": "sunny"},
    ]
    second = stack.client.chat.completions.create(model=MODEL, messages=messages, functions=[function])
    assert second.choices[0].message.content == "Tool results: sunny"
    stream = stack.client.chat.completions.create(
        model=MODEL, messages=user("get_weather(city=Rome) please"), functions=[function], stream=True
    )
    arguments = "".join(
        c.choices[0].delta.function_call.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.function_call is not None
    )
    assert json.loads(arguments) == {"city": "Rome"}


def test_parallel_tool_calls_round_trip(stack: Stack) -> None:
    messages: list[Any] = user("get_weather(city=Paris) and get_time(zone=CET)")
    first = stack.client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, TIME])
    calls = first.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"{c.function.name} ok"} for c in calls]
    second = stack.client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, TIME])
    assert second.choices[0].message.content == "Tool results: get_weather ok; get_time ok"
    assert second.choices[0].finish_reason == "stop"
    last_turn = stack.fake.last["messages"][-1]
    assert [b["type"] for b in last_turn["content"]] == ["tool_result", "tool_result"]


def test_round_trip_without_tools_in_the_follow_up(stack: Stack) -> None:
    messages: list[Any] = [
        *user("weather?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    completion = stack.client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == "Tool results: sunny"


def test_streamed_parallel_tool_calls(stack: Stack) -> None:
    with stack.client.chat.completions.stream(
        model=MODEL, messages=user("get_weather(city=Oslo) get_time(zone=UTC)"), tools=[WEATHER, TIME]
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    firsts = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or () if d.id]
    assert [(d.index, d.function.name) for d in firsts] == [(0, "get_weather"), (1, "get_time")]
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Oslo"}, {"zone": "UTC"}]
    assert final.choices[0].finish_reason == "tool_calls"


def test_required_tool_without_parallel_calls(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=MODEL,
        messages=user("get_weather and get_time"),
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert stack.fake.last["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [c.function.name for c in completion.choices[0].message.tool_calls or []] == ["get_weather"]


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", [MODEL, "claude/claude-3-5-haiku-latest"], ids=["native", "forced-tool"])
def test_parse_with_pydantic(stack: Stack, model: str) -> None:
    completion = stack.client.chat.completions.parse(
        model=model, messages=user("Paris"), response_format=City
    )
    message = completion.choices[0].message
    assert message.parsed == City(name="Paris", population=42)
    assert message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    native = stack.fake.last
    assert ("output_config" in native) == (model == MODEL)


def test_json_object_returns_json(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=MODEL, messages=user("colours"), response_format={"type": "json_object"}
    )
    message = completion.choices[0].message
    assert json.loads(message.content or "") == {"answer": "colours"}
    assert message.tool_calls is None and completion.choices[0].finish_reason == "stop"


def test_json_object_streamed(stack: Stack) -> None:
    chunks = list(
        stack.client.chat.completions.create(
            model=MODEL, messages=user("colours"), response_format={"type": "json_object"}, stream=True
        )
    )
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == {
        "answer": "colours"
    }
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)


def test_image_data_uri(stack: Stack) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    completion = stack.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "What is this?"
    assert stack.fake.last["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }


def test_unsupported_part_is_400_before_any_upstream_call(stack: Stack) -> None:
    sent = len(stack.fake.requests)
    content: Any = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages[0].content[0].type"
    assert len(stack.fake.requests) == sent


@pytest.mark.parametrize("stream", [False, True])
def test_stop(stack: Stack, stream: bool) -> None:
    messages = user("one two STOP three")
    if stream:
        chunks = list(
            stack.client.chat.completions.create(model=MODEL, messages=messages, stop="STOP", stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        completion = stack.client.chat.completions.create(model=MODEL, messages=messages, stop="STOP")
        text, finish = completion.choices[0].message.content or "", [completion.choices[0].finish_reason]
    assert text == "one two " and finish == ["stop"]
    assert stack.fake.last["stop_sequences"] == ["STOP"]


def test_length(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=MODEL, messages=user("one two three"), max_completion_tokens=2, temperature=1.5
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "one two"
    assert stack.fake.last["temperature"] == 1.0


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_content(stack: Stack, stream: bool) -> None:
    params: Any = {"model": MODEL, "messages": user("why"), "reasoning_effort": "low", "temperature": 0.5}
    if stream:
        chunks = list(stack.client.chat.completions.create(**params, stream=True))
        reasoning = "".join(
            (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks if c.choices
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        message = stack.client.chat.completions.create(**params).choices[0].message
        reasoning, text = (message.model_extra or {})["reasoning_content"], message.content or ""
    assert reasoning == "The user wrote: why" and text == "why"
    assert stack.fake.last["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_adaptive_thinking_on_newer_models(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model="claude/claude-sonnet-4-6", messages=user("why"), reasoning_effort="high"
    )
    assert (completion.choices[0].message.model_extra or {})["reasoning_content"] == "The user wrote: why"
    assert stack.fake.last["thinking"] == {"type": "adaptive"}
    assert stack.fake.last["output_config"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("prompt", "error", "status"),
    [
        ("FAIL 429", openai.RateLimitError, 429),
        ("FAIL 529", openai.InternalServerError, 503),
        ("FAIL 400", openai.BadRequestError, 400),
        ("FAIL 500", openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors(
    stack: Stack, prompt: str, error: type[openai.APIStatusError], status: int, stream: bool
) -> None:
    with pytest.raises(error) as caught:
        result: Any = stack.client.chat.completions.create(model=MODEL, messages=user(prompt), stream=stream)
        if stream:
            list(result)  # a stream's HTTP error surfaces before its first chunk
    assert caught.value.status_code == status
    assert "anthropic" in caught.value.message and "scripted failure" in caught.value.message
    if status in (429, 503):
        assert caught.value.response.headers["retry-after"] == "0"


def test_upstream_validation_error_is_400(stack: Stack) -> None:
    with pytest.raises(
        openai.BadRequestError, match="anthropic: invalid_request_error: scripted failure 400"
    ):
        stack.client.chat.completions.create(model=MODEL, messages=user("FAIL 400"))


def test_tool_choice_naming_an_undeclared_tool_never_reaches_the_upstream(stack: Stack) -> None:
    sent = len(stack.fake.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(
            model=MODEL,
            messages=user("hi"),
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert caught.value.param == "tool_choice.function.name"
    assert len(stack.fake.requests) == sent


def test_unknown_upstream_model_is_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.client.chat.completions.create(model="claude/gpt-4o", messages=user("hi"))
    assert caught.value.code == "model_not_found"


def test_wrong_upstream_key_is_a_gateway_error_not_the_clients(stack: Stack) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        stack.client.chat.completions.create(model="wrongkey/claude-haiku-4-5", messages=user("hi"))
    assert caught.value.status_code == 502 and caught.value.code == "upstream_authentication_error"
    assert "sk-ant-wrong-key-000000" not in caught.value.message


@pytest.mark.parametrize(
    ("prompt", "code"),
    [("FAIL STREAM overloaded_error", "upstream_overloaded"), ("CUT STREAM", "upstream_stream_incomplete")],
)
def test_stream_failing_after_first_chunk(stack: Stack, prompt: str, code: str) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stack.client.chat.completions.create(model=MODEL, messages=user(prompt), stream=True):
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == prompt.split()[0] + " "
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == code


def test_models_are_listed_from_upstream(stack: Stack) -> None:
    ids = [model.id for model in stack.client.models.list()]
    assert "claude/claude-haiku-4-5" in ids and "claude/claude-sonnet-4-6" in ids
