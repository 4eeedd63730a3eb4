"""The gateway as a user meets it first: the default echo provider, the official OpenAI SDK, a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from pydantic import BaseModel

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.auth import Principal, api_keys
from asgi_llm_gateway.providers import EchoProvider
from tests.support.openai_spec import assert_valid
from tests.support.server import serve

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    usage_records: list[object] = []

    async def on_usage(record: object) -> None:
        usage_records.append(record)

    gateway = Gateway(routes={"smart": ["echo/echo-1"]}, on_usage=on_usage)
    with serve(gateway) as url:
        yield url + "/v1"


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="no-key-needed", max_retries=0) as client:
        yield client


def test_plain_completion_has_openais_exact_shape(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="echo/echo-1", messages=[{"role": "user", "content": "Hello there"}]
    )
    body = json.loads(raw.text)
    assert_valid("CreateChatCompletionResponse", body)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "echo/echo-1"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-llm-gateway-provider"] == "echo"


def test_route_alias_answers_with_the_target_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="smart", messages=[{"role": "user", "content": "hi"}])
    assert completion.model == "echo/echo-1"
    assert completion.choices[0].message.content == "hi"


def test_stream_chunks_are_valid_and_end_with_done(base_url: str) -> None:
    body = {
        "model": "echo/echo-1",
        "messages": [{"role": "user", "content": "one two three"}],
        "stream": True,
    }
    with httpx.stream("POST", base_url + "/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [block.removeprefix("data: ") for block in raw.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        assert "usage" not in chunk  # not asked for
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "one two three"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1


def test_stream_include_usage_adds_a_final_chunk_with_empty_choices(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="echo/echo-1",
            messages=[{"role": "user", "content": "count me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 2
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What does get_weather say for Paris?"}]
    first = client.chat.completions.create(
        model="echo/echo-1", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "city": "What does get_weather say for Paris?",
        "unit": "c",
    }
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"},
    ]
    second = client.chat.completions.create(model="echo/echo-1", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool results: 18 degrees"
    assert second.choices[0].finish_reason == "stop"


def test_streamed_parallel_tool_calls_have_stable_indexes(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="echo/echo-1",
        messages=[{"role": "user", "content": "call get_weather and get_time"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                assert entry["id"] == "", "id must be sent once"
                entry["id"] = delta.id
                entry["name"] = delta.function.name  # type: ignore[union-attr]
            entry["arguments"] += delta.function.arguments or ""  # type: ignore[union-attr]
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["arguments"]) == {"tz": "call get_weather and get_time"}


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="echo/echo-1", messages=[{"role": "user", "content": "Ada"}], response_format=Person
    )
    assert completion.choices[0].message.parsed == Person(name="Ada", age=0, tags=["Ada"])


def test_json_object_mode_returns_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="echo/echo-1",
        messages=[{"role": "user", "content": "reply in JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"echo": "reply in JSON"}


def test_image_content_part(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="echo/echo-1",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "What is this? [image]"


def test_stop_max_tokens_and_n(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="echo/echo-1", messages=[{"role": "user", "content": "a b c STOP d"}], stop=["STOP"], n=2
    )
    assert [c.message.content for c in completion.choices] == ["a b c ", "a b c "]
    assert [c.index for c in completion.choices] == [0, 1]
    capped = client.chat.completions.create(
        model="echo/echo-1", messages=[{"role": "user", "content": "a b c d"}], max_completion_tokens=2
    )
    assert capped.choices[0].message.content == "a b"
    assert capped.choices[0].finish_reason == "length"


@pytest.mark.anyio
async def test_async_client_stream_and_not(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="echo/echo-1", messages=[{"role": "user", "content": "async hello"}]
        )
        assert completion.choices[0].message.content == "async hello"
        stream = await client.chat.completions.create(
            model="echo/echo-1", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert text == "async stream"


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["smart", "echo/echo-1"]
    assert client.models.retrieve("echo/echo-1").owned_by == "echo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope/model")


# -- bad input -------------------------------------------------------------------------------------------


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    for model in ("gpt-4o", "unknown/gpt-4o", "echo/"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        assert caught.value.code == "model_not_found"
        assert caught.value.param == "model"


def test_schema_violation_is_400_with_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="echo/echo-1",
            messages=[{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}],  # type: ignore[list-item]
        )
    assert caught.value.param == "messages[1].role"
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "\xff\xfe"}', "UTF-8"),
        (b"", "body"),
    ],
)
def test_bodies_that_are_not_json_objects(base_url: str, content: bytes, needle: str) -> None:
    response = httpx.post(base_url + "/chat/completions", content=content)
    assert response.status_code == 400
    assert_valid("ErrorResponse", response.json())
    assert needle in response.json()["error"]["message"]


def test_body_over_the_cap_is_413_and_not_buffered() -> None:
    gateway = Gateway(max_body_size=1000)
    with serve(gateway) as url:
        body = json.dumps({"model": "echo/echo-1", "messages": [{"role": "user", "content": "x" * 2000}]})
        response = httpx.post(url + "/v1/chat/completions", content=body)
        assert response.status_code == 413
        with openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(
                    model="echo/echo-1", messages=[{"role": "user", "content": "x" * 2000}]
                )
            assert caught.value.status_code == 413


def test_unknown_path_and_method(base_url: str) -> None:
    response = httpx.get(base_url + "/audio/speech")
    assert response.status_code == 404
    assert_valid("ErrorResponse", response.json())
    response = httpx.get(base_url + "/chat/completions")
    assert response.status_code == 405


def test_auth_hook_401_403_and_nothing_leaks() -> None:
    gateway = Gateway(
        providers={"echo": EchoProvider()},
        auth=api_keys(
            {
                "sk-gw-alice-secret": "alice",
                "sk-gw-bob-secret": Principal("bob", allowed_models=("echo/small-*",)),
            }
        ),
    )
    with serve(gateway) as url:
        with openai.OpenAI(base_url=url + "/v1", api_key="sk-gw-wrong-secret", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                client.chat.completions.create(
                    model="echo/echo-1", messages=[{"role": "user", "content": "x"}]
                )
            assert "sk-gw" not in json.dumps(caught.value.body)
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        with openai.OpenAI(base_url=url + "/v1", api_key="sk-gw-bob-secret", max_retries=0) as client:
            with pytest.raises(openai.PermissionDeniedError):
                client.chat.completions.create(
                    model="echo/echo-1", messages=[{"role": "user", "content": "x"}]
                )
            ok = client.chat.completions.create(
                model="echo/small-1", messages=[{"role": "user", "content": "x"}]
            )
            assert ok.choices[0].message.content == "x"
        with openai.OpenAI(base_url=url + "/v1", api_key="sk-gw-alice-secret", max_retries=0) as client:
            assert (
                client.chat.completions.create(
                    model="echo/echo-1", messages=[{"role": "user", "content": "hi"}]
                )
                .choices[0]
                .message.content
                == "hi"
            )
        assert (
            httpx.post(url + "/v1/chat/completions", content=b"{").status_code == 401
        )  # auth before parsing


def test_usage_hook_receives_a_record_per_call() -> None:
    records = []

    async def on_usage(record):  # type: ignore[no-untyped-def]
        records.append(record)

    with serve(Gateway(on_usage=on_usage)) as url, openai.OpenAI(base_url=url + "/v1", api_key="x") as client:
        client.chat.completions.create(model="echo/echo-1", messages=[{"role": "user", "content": "a b"}])
        list(
            client.chat.completions.create(
                model="echo/echo-1", messages=[{"role": "user", "content": "a b c"}], stream=True
            )
        )
    assert [(r.target, r.stream, r.status, r.usage["completion_tokens"]) for r in records] == [
        ("echo/echo-1", False, 200, 2),
        ("echo/echo-1", True, 200, 3),
    ]


def test_a_failing_auth_hook_is_a_500_in_openais_shape_not_a_traceback() -> None:
    async def broken_auth(request: object) -> object:
        raise RuntimeError("database is down")

    with serve(Gateway(auth=broken_auth)) as url:
        response = httpx.post(url + "/v1/chat/completions", json={"model": "echo/echo-1", "messages": []})
    assert response.status_code == 500
    assert_valid("ErrorResponse", response.json())
    assert "database" not in response.text


def test_models_list_only_shows_what_the_principal_may_call() -> None:
    gateway = Gateway(
        auth=api_keys({"sk-gw-carol": Principal("carol", allowed_models=("smart",))}),
        routes={"smart": "echo/echo-1"},
    )
    with (
        serve(gateway) as url,
        openai.OpenAI(base_url=url + "/v1", api_key="sk-gw-carol", max_retries=0) as client,
    ):
        assert [model.id for model in client.models.list()] == ["smart"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("echo/echo-1")


def test_models_list_survives_a_provider_that_cannot_list() -> None:
    class Broken(EchoProvider):
        async def list_models(self) -> list[str]:
            raise RuntimeError("listing exploded")

    with serve(Gateway(providers={"echo": EchoProvider(), "broken": Broken()})) as url:
        response = httpx.get(url + "/v1/models")
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == ["echo/echo-1"]
