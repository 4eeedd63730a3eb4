"""Gemini through the whole gateway: the official `openai` SDK on one side, the fake Gemini upstream on the
other, real sockets in between."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import GeminiProvider
from tests.fakes.gemini import KEY, FakeGemini, Fault, sign_call
from tests.support.openai_spec import assert_valid
from tests.support.server import serve

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
TOOLS: Any = [WEATHER, TIME]


@dataclass
class Stack:
    fake: FakeGemini
    client: openai.OpenAI


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    fake = FakeGemini()
    with serve(fake.app()) as upstream:
        gateway = Gateway(
            providers={
                "gemini": GeminiProvider(api_key=KEY, base_url=upstream),
                "wrongkey": GeminiProvider(
                    api_key="AIzaSyWRONG-key-for-the-gateway-000000", base_url=upstream
                ),
            },
            policy=Policy(max_attempts=1),  # error mapping is tested here, not retries
        )
        with (
            serve(gateway) as url,
            openai.OpenAI(base_url=url + "/v1", api_key="client", max_retries=0) as client,
        ):
            yield Stack(fake, client)


@pytest.fixture
def fake(stack: Stack) -> FakeGemini:
    stack.fake.requests.clear()
    stack.fake.faults.clear()
    return stack.fake


@pytest.fixture
def client(stack: Stack, fake: FakeGemini) -> openai.OpenAI:
    return stack.client


def test_plain_completion(client: openai.OpenAI, fake: FakeGemini) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gemini/gemini-3-flash",
        messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello there"}],
        temperature=0.3,
        max_completion_tokens=50,
    )
    body = json.loads(raw.text)
    assert_valid("CreateChatCompletionResponse", body)
    completion = raw.parse()
    assert completion.model == "gemini/gemini-3-flash"
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)
    (recorded,) = fake.requests
    assert recorded["path"] == "/v1beta/models/gemini-3-flash:generateContent"
    assert recorded["headers"]["x-goog-api-key"] == KEY
    assert recorded["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50},
    }


def test_stream_with_usage(client: openai.OpenAI, fake: FakeGemini) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gemini/gemini-2.5-flash",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk.model_dump(mode="json", exclude_unset=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert fake.requests[0]["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert fake.requests[0]["query"] == "alt=sse"


def test_single_tool_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gemini/gemini-3-flash",
        messages=[{"role": "user", "content": "Use get_weather for city=Paris unit=c"}],
        tools=TOOLS,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris", "unit": "c"},
    )


def test_forced_tool_choice(client: openai.OpenAI, fake: FakeGemini) -> None:
    completion = client.chat.completions.create(
        model="gemini/gemini-3-flash",
        messages=[{"role": "user", "content": "What now? tz=UTC"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert completion.choices[0].message.tool_calls is not None
    assert [c.function.name for c in completion.choices[0].message.tool_calls] == ["get_time"]
    assert fake.requests[0]["body"]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }


def _answer_tools(calls: list[Any]) -> list[dict[str, Any]]:
    """Tool results, deliberately in the reverse order of the calls."""
    return [
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": json.dumps({"called": call["function"]["name"]}),
        }
        for call in reversed(calls)
    ]


def test_parallel_tool_calls_round_trip(client: openai.OpenAI, fake: FakeGemini) -> None:
    question = {"role": "user", "content": "get_weather and get_time for city=Oslo unit=c"}
    first = client.chat.completions.create(model="gemini/gemini-3-flash", messages=[question], tools=TOOLS)
    message = first.choices[0].message
    assert message.tool_calls is not None
    assert [call.function.name for call in message.tool_calls] == ["get_weather", "get_time"]
    assert len({call.id for call in message.tool_calls}) == 2
    assistant = message.model_dump(mode="json", exclude_none=True)
    second = client.chat.completions.create(
        model="gemini/gemini-3-flash",
        messages=[question, assistant, *_answer_tools(assistant["tool_calls"])],
        tools=TOOLS,
    )
    # The fake (like Gemini 3) refuses a history whose function call lost its thought signature.
    assert second.choices[0].message.content == (
        'Results: get_weather={"called": "get_weather"}; get_time={"called": "get_time"}'
    )
    model_turn = fake.requests[-1]["body"]["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == sign_call("gemini-3-flash", "get_weather")


def test_streamed_tool_calls_round_trip(client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "please get_time and get_weather, city=Rome unit=f"}
    stream = client.chat.completions.create(
        model="gemini/gemini-3-flash", messages=[question], tools=TOOLS, stream=True
    )
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            entry = calls.setdefault(
                delta.index, {"type": "function", "function": {"name": "", "arguments": ""}}
            )
            if delta.id:
                entry["id"] = delta.id
            if delta.function and delta.function.name:
                entry["function"]["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                entry["function"]["arguments"] += delta.function.arguments
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    tool_calls = [calls[0], calls[1]]
    assert [json.loads(c["function"]["arguments"]) for c in tool_calls] == [
        {"city": "Rome", "unit": "f"},
        {"tz": "text"},
    ]
    assistant = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    final = client.chat.completions.create(
        model="gemini/gemini-3-flash",
        messages=[question, assistant, *_answer_tools(tool_calls)],
        tools=TOOLS,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in final if chunk.choices)
    assert text == 'Results: get_weather={"called": "get_weather"}; get_time={"called": "get_time"}'


class City(BaseModel):
    name: str
    population: int


class Trip(BaseModel):
    destination: City
    stops: list[City]
    note: str | None


def test_parse_with_a_pydantic_model(client: openai.OpenAI, fake: FakeGemini) -> None:
    completion = client.chat.completions.parse(
        model="gemini/gemini-3-flash",
        messages=[{"role": "user", "content": "Plan a trip, name=Lisbon population=500000"}],
        response_format=Trip,
    )
    trip = completion.choices[0].message.parsed
    assert trip == Trip(
        destination=City(name="Lisbon", population=500000),
        stops=[City(name="Lisbon", population=500000)],
        note="text",
    )
    config = fake.requests[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["$defs"]["City"]["required"] == ["name", "population"]


def test_image_data_uri(client: openai.OpenAI) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n-pixels").decode()
    completion = client.chat.completions.create(
        model="gemini/gemini-3-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "What is this? [image/png, 15 bytes]"


def test_reasoning_and_candidates(client: openai.OpenAI, fake: FakeGemini) -> None:
    completion = client.chat.completions.create(
        model="gemini/gemini-3-pro",
        messages=[{"role": "user", "content": "why is the sky blue"}],
        reasoning_effort="low",
        n=2,
    )
    assert [c.index for c in completion.choices] == [0, 1]
    message = completion.choices[1].message
    assert message.content == "why is the sky blue"
    assert getattr(message, "reasoning_content", None) == "Thinking about: why is the sky blue"
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 14
    assert completion.usage.completion_tokens == 24  # 2 x (5 answer + 7 thought) tokens
    assert fake.requests[0]["body"]["generationConfig"] == {
        "candidateCount": 2,
        "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "LOW"},
    }


def test_filtered_answers(client: openai.OpenAI) -> None:
    unsafe = client.chat.completions.create(
        model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "UNSAFE_OUTPUT"}]
    )
    assert unsafe.choices[0].finish_reason == "content_filter"
    with pytest.raises(openai.BadRequestError) as blocked:
        client.chat.completions.create(
            model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "BLOCK_PROMPT"}]
        )
    assert blocked.value.code == "content_filter"
    with pytest.raises(openai.BadRequestError) as blocked_stream:
        client.chat.completions.create(
            model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "BLOCK_PROMPT"}], stream=True
        )
    assert blocked_stream.value.code == "content_filter"


@pytest.mark.parametrize(
    ("status", "exception", "code"),
    [
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "upstream_error"),
        (503, openai.InternalServerError, "upstream_overloaded"),
        (400, openai.BadRequestError, "invalid_argument"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_become_the_right_openai_exception(
    client: openai.OpenAI,
    fake: FakeGemini,
    status: int,
    exception: type[openai.APIStatusError],
    code: str,
    stream: bool,
) -> None:
    fake.faults.append(Fault(status=status))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(
            model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert caught.value.code == code
    assert "gemini:" in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


def test_a_real_upstream_validation_error_is_a_400(client: openai.OpenAI) -> None:
    bad_name = {
        "type": "function",
        "function": {"name": "1st_tool", "parameters": {"type": "object", "properties": {}}},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "hi"}], tools=[bad_name]
        )
    assert "Invalid function name" in caught.value.message


def test_unknown_model_and_bad_gateway_key(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="gemini/gemini-0-nope", messages=[{"role": "user", "content": "hi"}]
        )
    assert "is not found for API version v1beta" in missing.value.message
    with pytest.raises(openai.InternalServerError) as key:
        client.chat.completions.create(
            model="wrongkey/gemini-3-flash", messages=[{"role": "user", "content": "hi"}]
        )
    assert key.value.code == "upstream_authentication_error"
    assert "WRONG" not in key.value.message


@pytest.mark.parametrize("fault", [Fault(status=503, after_events=2), Fault(status=None, after_events=2)])
def test_a_stream_that_fails_after_the_first_bytes(
    client: openai.OpenAI, fake: FakeGemini, fault: Fault
) -> None:
    fake.faults.append(fault)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="gemini/gemini-3-flash",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
        ):
            received.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert received[-1] == "two "
    assert "gemini:" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_garbage_from_upstream_is_a_502(client: openai.OpenAI, fake: FakeGemini, stream: bool) -> None:
    fake.faults.append(Fault(raw="<html>Service Temporarily Unavailable</html>\n"))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="gemini/gemini-3-flash", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert caught.value.status_code == 502 and caught.value.code == "upstream_bad_response"


# -- thought signatures go back only to the provider and model that made them ----------------------------


@dataclass
class Fallbacks:
    """Two Gemini fakes (two projects: each signs with its own key) behind routes that fall back from one
    model to another on the same provider, and from one provider to another with the same model."""

    ours: FakeGemini
    theirs: FakeGemini
    client: openai.OpenAI


@pytest.fixture(scope="module")
def fallbacks() -> Iterator[Fallbacks]:
    ours, theirs = FakeGemini(), FakeGemini(signing_key=b"another project's thought signing key")
    with serve(ours.app()) as our_url, serve(theirs.app()) as their_url:
        gateway = Gateway(
            providers={
                "gemini": GeminiProvider(api_key=KEY, base_url=our_url),
                "other": GeminiProvider(api_key=KEY, base_url=their_url),
            },
            routes={
                "pro-then-flash": ["gemini/gemini-3-pro", "gemini/gemini-3-flash"],
                "ours-then-theirs": ["gemini/gemini-3-flash", "other/gemini-3-flash"],
            },
            policy=Policy(max_attempts=1, cooldown_after=1000),  # one try per target, then the next one
        )
        with (
            serve(gateway) as url,
            openai.OpenAI(base_url=url + "/v1", api_key="client", max_retries=0) as client,
        ):
            yield Fallbacks(ours, theirs, client)


def _first_turn(client: openai.OpenAI, route: str, stream: bool) -> dict[str, Any]:
    """The assistant message of a first turn that calls get_weather, as the client would send it back."""
    question = {"role": "user", "content": "get_weather city=Paris unit=c"}
    if not stream:
        message = client.chat.completions.create(model=route, messages=[question], tools=[WEATHER])
        dumped: dict[str, Any] = message.choices[0].message.model_dump(mode="json", exclude_none=True)
        return dumped
    calls: list[dict[str, Any]] = []
    for chunk in client.chat.completions.create(
        model=route, messages=[question], tools=[WEATHER], stream=True
    ):
        for call in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            assert call.id and call.function and call.function.name
            calls.append(
                {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": ""}}
            )
            calls[-1]["function"]["arguments"] += call.function.arguments or ""
    return {"role": "assistant", "tool_calls": calls}


def _signatures(body: dict[str, Any]) -> list[str]:
    return [
        part["thoughtSignature"]
        for c in body["contents"]
        for part in c["parts"]
        if "thoughtSignature" in part
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("route", "made_by", "fell_back_to"),
    [("pro-then-flash", "gemini-3-pro", "gemini-3-flash"), ("ours-then-theirs", "gemini-3-flash", "other")],
    ids=["another_model", "another_provider_scope"],
)
def test_regression_gemini_signature_is_never_replayed_to_another_model_or_provider(
    fallbacks: Fallbacks, route: str, made_by: str, fell_back_to: str, stream: bool
) -> None:
    """A Gemini tool loop whose second turn fell back to another model (or another Gemini provider) used to
    send the first model's thought signature there, which Gemini 3 rejects (a 400 the client cannot fix):
    the signature is dropped, and the turn gets Google's placeholder for a history it did not make."""
    ours, theirs = fallbacks.ours, fallbacks.theirs
    ours.requests.clear()
    theirs.requests.clear()
    first = _first_turn(fallbacks.client, route, stream)
    [call] = first["tool_calls"]
    signed = sign_call(made_by, "get_weather")
    assert _signatures(ours.requests[-1]["body"]) == [] and len(ours.requests) == 1
    history = [
        {"role": "user", "content": "get_weather city=Paris unit=c"},
        first,
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21C"},
    ]
    ours.faults.append(Fault(status=503))  # the first target fails: the route falls back
    second = fallbacks.client.chat.completions.create(model=route, messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == 'Results: get_weather={"output": "Sunny, 21C"}'
    failed = ours.requests[1]
    assert failed["path"].endswith(f"/{made_by}:generateContent") and _signatures(failed["body"]) == [signed]
    fallback = (theirs if fell_back_to == "other" else ours).requests[-1]
    assert fallback["path"].endswith(":generateContent") and "gemini-3-flash" in fallback["path"]
    assert _signatures(fallback["body"]) == ["skip_thought_signature_validator"]
    everything_sent = json.dumps([r["body"] for r in [*ours.requests[2:], *theirs.requests]])
    assert signed not in everything_sent
