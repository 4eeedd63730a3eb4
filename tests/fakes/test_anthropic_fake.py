"""The fake Anthropic upstream, driven by the official `anthropic` SDK.

If the SDK reads the fake's answers and errors as it reads the real API's, tests against the fake mean
something.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pydantic
import pytest

from tests.fakes.anthropic import KEY, FakeAnthropic
from tests.support.server import serve

MODEL = "claude-haiku-4-5"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeAnthropic, str]]:
    app = FakeAnthropic()
    with serve(app) as url:
        yield app, url


def client(url: str, *, key: str = KEY, version: str | None = "2023-06-01") -> anthropic.Anthropic:
    """The SDK as the gateway talks to Anthropic: pinned to 2023-06-01 unless `version` is None."""
    headers = {"anthropic-version": version} if version else None
    return anthropic.Anthropic(api_key=key, base_url=url, max_retries=0, default_headers=headers)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_create_echoes_the_last_user_text(fake: tuple[FakeAnthropic, str]) -> None:
    app, url = fake
    message = client(url).messages.create(
        model=MODEL, max_tokens=100, system="Be brief.", messages=user("Hello there")
    )
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 2
    assert app.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_stream_helper_accumulates_the_same_message(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with client(url).messages.stream(model=MODEL, max_tokens=100, messages=user("one two three")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three"
    assert final.content[0].text == "one two three"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_raw_stream_event_order(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    events = client(url).messages.create(model=MODEL, max_tokens=100, messages=user("a b"), stream=True)
    kinds = [event.type for event in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # ping is consumed by the SDK


def test_stop_sequences_and_max_tokens(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    sdk = client(url)
    stopped = sdk.messages.create(
        model=MODEL, max_tokens=100, messages=user("one two END three"), stop_sequences=["END"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "END"
    assert stopped.content[0].text == "one two "
    cut = sdk.messages.create(model=MODEL, max_tokens=2, messages=user("one two three"))
    assert cut.stop_reason == "max_tokens" and cut.content[0].text == "one two"


def test_parallel_tool_use_and_round_trip(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    sdk = client(url)
    messages: list[Any] = user("get_weather(city=Paris) and get_time(zone=CET)")
    first = sdk.messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[WEATHER, TIME])
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"zone": "CET"}),
    ]
    results = [{"type": "tool_result", "tool_use_id": c.id, "content": f"result {c.name}"} for c in calls]
    messages += [{"role": "assistant", "content": first.content}, {"role": "user", "content": results}]
    second = sdk.messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[WEATHER, TIME])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Tool results: result get_weather; result get_time"


def test_forced_tool_and_disabled_parallel_use(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    message = client(url).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user("get_time and get_weather"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    assert [(b.type, getattr(b, "name", None)) for b in message.content] == [("tool_use", "get_weather")]
    assert message.content[0].input == {"city": "get_time and get_weather"}


def test_streamed_tool_input_is_valid_json(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with client(url).messages.stream(
        model=MODEL, max_tokens=100, messages=user("get_weather(city=Oslo)"), tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    tool = next(block for block in final.content if block.type == "tool_use")
    assert tool.input == {"city": "Oslo"}


def test_thinking_stream(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with client(url).messages.stream(
        model=MODEL,
        max_tokens=2000,
        messages=user("why"),
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "The user wrote: why"
    assert final.content[0].signature
    assert (
        final.usage.output_tokens_details is not None
        and final.usage.output_tokens_details.thinking_tokens == 4
    )


class City(pydantic.BaseModel):
    name: str
    population: int
    tags: list[str]


def test_structured_output_parses(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    parsed = client(url).messages.parse(
        model=MODEL, max_tokens=100, messages=user("Paris"), output_format=City
    )
    assert parsed.parsed_output == City(name="Paris", population=42, tags=["Paris"])


def test_cache_usage(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    message = client(url).messages.create(model=MODEL, max_tokens=100, messages=user("CACHED"))
    assert message.usage.cache_read_input_tokens == 100 and message.usage.cache_creation_input_tokens == 7


def test_models_list(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    assert MODEL in [model.id for model in client(url).models.list()]


def test_mid_conversation_system_role_depends_on_the_version(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    messages: Any = [{"role": "user", "content": "hi"}, {"role": "system", "content": "be terse"}]
    messages.append({"role": "assistant", "content": "ok"})
    messages.append({"role": "user", "content": "again"})
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.role"):
        client(url).messages.create(model=MODEL, max_tokens=10, messages=messages)
    newer = client(url, version=None).messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert newer.content[0].text == "again"


def test_bad_key_is_401(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(url, key="sk-ant-wrong").messages.create(model=MODEL, max_tokens=10, messages=user("hi"))
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": "req_fake_error",
    }


def test_missing_max_tokens_is_400(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required"):
        client(url).post("/v1/messages", cast_to=object, body={"model": MODEL, "messages": user("hi")})


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"extra_body": {"temperature": 1.5}}, "temperature: Input should be less than or equal to 1"),
    ({"extra_body": {"frequency_penalty": 1}}, "frequency_penalty: Extra inputs are not permitted"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 'first message must use the "user" role'),
    ({"messages": user("a") + user("b")}, "roles must alternate"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "must be non-empty"),
    (
        {
            "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}],
            "tools": [WEATHER],
        },
        "unexpected `tool_use_id`",
    ),
    (
        {
            "messages": [
                *user("weather?"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
                },
                *user("never mind"),
            ],
            "tools": [WEATHER],
        },
        "`tool_use` ids were found without `tool_result` blocks",
    ),
    (
        {
            "messages": [
                *user("weather?"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
                },
            ]
        },
        "must define tools",
    ),
    (
        {
            "messages": user("hi"),
            "tools": [WEATHER],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "max_tokens": 2000,
        },
        "tool_choice forces tool use",
    ),
    (
        {
            "output_config": {
                "format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}}
            }
        },
        "'additionalProperties' must be explicitly set to false",
    ),
    ({"max_tokens": 10000, "model": "claude-3-5-haiku-latest"}, "maximum number of output tokens"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_REQUESTS)
def test_rejects_what_the_api_rejects(
    fake: tuple[FakeAnthropic, str], changes: dict[str, Any], message: str
) -> None:
    _, url = fake
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": user("hi"), **changes}
    with pytest.raises(anthropic.BadRequestError, match=message.replace("(", r"\(")) as caught:
        client(url).messages.create(**params)
    assert caught.value.body["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with pytest.raises(anthropic.NotFoundError):
        client(url).messages.create(model="gpt-4o", max_tokens=10, messages=user("hi"))


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError), (500, anthropic.InternalServerError)],
)
def test_scripted_failures(fake: tuple[FakeAnthropic, str], status: int, error: type[Exception]) -> None:
    _, url = fake
    with pytest.raises(error) as caught:
        client(url).messages.create(model=MODEL, max_tokens=10, messages=user(f"FAIL {status}"))
    assert caught.value.status_code == status


def test_error_event_mid_stream_raises_in_the_sdk(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client(url).messages.create(
            model=MODEL, max_tokens=100, messages=user("FAIL STREAM overloaded_error"), stream=True
        ):
            received.append(event.type)
    assert received == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "scripted overloaded_error"},
    }


def test_cut_stream_never_reaches_message_stop(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    events = client(url).messages.create(
        model=MODEL, max_tokens=100, messages=user("CUT STREAM"), stream=True
    )
    assert [event.type for event in events] == ["message_start", "content_block_start", "content_block_delta"]


def test_count_tokens_counts_system_and_tools(fake: tuple[FakeAnthropic, str]) -> None:
    app, url = fake
    sdk = client(url)
    bare = sdk.messages.count_tokens(model=MODEL, messages=user("one two three"))
    full = sdk.messages.count_tokens(
        model=MODEL, messages=user("one two three"), system="Be brief.", tools=[WEATHER]
    )
    assert 0 < bare.input_tokens < full.input_tokens
    assert app.requests[-1].path == "/v1/messages/count_tokens"
    assert "max_tokens" not in app.requests[-1].body


def test_count_tokens_refuses_create_only_fields(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(url).messages.count_tokens(model=MODEL, messages=user("hi"), extra_body={"max_tokens": 5})
    assert "max_tokens: Extra inputs are not permitted" in str(caught.value)


def test_beta_fields_need_their_beta(fake: tuple[FakeAnthropic, str]) -> None:
    app, url = fake
    management: Any = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    message = client(url).beta.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=user("hello"),
        context_management=management,
        betas=["context-management-2025-06-27"],
    )
    assert message.content[0].type == "text"
    assert app.requests[-1].body["context_management"] == management
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(url).messages.create(
            model=MODEL, max_tokens=100, messages=user("hello"), extra_body={"context_management": management}
        )
    assert "context_management: Extra inputs are not permitted" in str(caught.value)


def test_system_turns_need_the_newer_version_or_their_beta(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    turns: Any = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "second"},
    ]
    with pytest.raises(anthropic.BadRequestError):
        client(url).messages.create(model=MODEL, max_tokens=100, messages=turns)
    beta = client(url).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=turns,
        extra_headers={"anthropic-beta": "mid-conversation-system-2026-04-07"},
    )
    newer = client(url, version="2026-10-21").messages.create(model=MODEL, max_tokens=100, messages=turns)
    assert beta.content[0].text == newer.content[0].text == "second"


# -- signed thinking and the prompt cache (issue 19) ---------------------------------------------------------


def thinking_loop(url: str, signature: str | None = None, model: str = MODEL) -> Any:
    """A first turn with thinking on that calls a tool, then the tool loop with its thinking sent back
    (with `signature` instead of the real one, when given)."""
    sdk = client(url)
    options: Any = {
        "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [WEATHER],
    }
    question: Any = user("get_weather(city=Paris)")
    first = sdk.messages.create(model=MODEL, messages=question, **options)
    blocks = [block.model_dump(exclude_none=True) for block in first.content]
    if signature is not None:
        blocks[0]["signature"] = signature
    call = next(block for block in first.content if block.type == "tool_use")
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
    }
    messages: Any = [*question, {"role": "assistant", "content": blocks}, result]
    return sdk.messages.create(model=model, messages=messages, **options)


def test_thinking_sent_back_with_its_signature_is_accepted(fake: tuple[FakeAnthropic, str]) -> None:
    _, url = fake
    answer = thinking_loop(url)
    assert answer.content[-1].text.startswith("Tool results:")


@pytest.mark.parametrize(
    ("signature", "model"),
    [
        ("c2lnbmF0dXJl", MODEL),  # altered, or another service's
        (None, "claude-sonnet-4-6"),  # the real signature, of another model
    ],
    ids=["foreign", "another-model"],
)
def test_a_foreign_signature_is_a_400(
    fake: tuple[FakeAnthropic, str], signature: str | None, model: str
) -> None:
    _, url = fake
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature` in `thinking` block"):
        thinking_loop(url, signature, model)


def test_cache_breakpoints_write_then_read_the_prefix() -> None:
    app = FakeAnthropic()
    system: Any = [
        {"type": "text", "text": "Rules. " * 40, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    with serve(app) as url:
        sdk = client(url)
        one: Any = user("one")
        two: Any = user("two")
        first = sdk.messages.create(model=MODEL, max_tokens=50, system=system, messages=one)
        second = sdk.messages.create(model=MODEL, max_tokens=50, system=system, messages=two)
        short: Any = [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}]
        longer_later: Any = [{"role": "user", "content": [system[0]]}]  # 1h in messages after 5m in system
        with pytest.raises(anthropic.BadRequestError, match="must not come after"):
            sdk.messages.create(model=MODEL, max_tokens=50, system=short, messages=longer_later)
    written = first.usage.cache_creation_input_tokens
    assert written and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written and second.usage.cache_creation_input_tokens == 0
    assert (app.cache.reads, app.cache.writes) == (written, written)
