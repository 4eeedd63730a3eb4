"""The official `openai` SDK's Responses API → gateway `/v1/responses` (uvicorn, loopback) → every kind of
upstream: OpenAI natively (its fake speaks the Responses wire format), and translated through the canonical
chat form to echo, Anthropic, Gemini and Bedrock fakes that speak their own native APIs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from asgi_llm_gateway import UsageRecord
from tests.fakes import openai as fake_openai
from tests.support.upstreams import gateway_over_every_upstream

KEY = "sk-gw-agent-0001"
OTHER_KEY = "sk-gw-someone-else"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

MODELS = {
    "echo": "echo/echo-1",
    "openai": "openai/gpt-4.1",
    "anthropic": "claude/claude-sonnet-4-5",
    "gemini": "gemini/gemini-3-flash",
    "bedrock": "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
}


@dataclass
class Stack:
    url: str
    fakes: dict[str, Any]
    usage: list[UsageRecord]

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with gateway_over_every_upstream(
        {KEY: "agent", OTHER_KEY: "someone-else"}, {"relay": ["openai/gpt-4.1", "claude/claude-sonnet-4-5"]}
    ) as served:
        yield Stack(served.url, served.fakes, served.usage)


@pytest.fixture(params=list(MODELS))
def model(request: pytest.FixtureRequest) -> str:
    return MODELS[request.param]


def test_create(stack: Stack, model: str) -> None:
    response = stack.client().responses.create(model=model, instructions="Be brief.", input="Hello there")
    assert response.object == "response" and response.status == "completed"
    assert response.model == model
    assert "Hello there" in response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0


def test_stream(stack: Stack, model: str) -> None:
    with stack.client().responses.stream(model=model, input="Hello streaming world") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(set(numbers))  # strictly increasing
    assert events[0].response.id == events[-1].response.id == final.id
    assert "Hello streaming world" in final.output_text and final.usage is not None


# Every fake's model takes the arguments a prompt spells out as name(key=value).
TOOL_MODELS = list(MODELS)


@pytest.mark.parametrize("name", TOOL_MODELS)
def test_tool_round_trip_with_previous_response_id(stack: Stack, name: str) -> None:
    model = MODELS[name]
    client = stack.client()
    first = client.responses.create(
        model=model, tools=[WEATHER], input="Weather in Paris? get_weather(city=Paris)"
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments)["city"] == "Paris"
    second = client.responses.create(
        model=model,
        tools=[WEATHER],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"}],
    )
    assert second.status == "completed" and "18 degrees" in second.output_text


@pytest.mark.parametrize("name", TOOL_MODELS)
def test_streamed_tool_call(stack: Stack, name: str) -> None:
    model = MODELS[name]
    with stack.client().responses.stream(
        model=model, tools=[WEATHER], input="Weather in Oslo? get_weather(city=Oslo)"
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments)["city"] == "Oslo"
    done = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert done and json.loads(done[0].arguments) == json.loads(call.arguments)


def test_chain_continues_on_another_provider(stack: Stack) -> None:
    client = stack.client()
    first = client.responses.create(model=MODELS["openai"], input="My name is Ada.")
    second = client.responses.create(
        model=MODELS["anthropic"], previous_response_id=first.id, input="And again"
    )
    third = client.responses.create(model=MODELS["gemini"], previous_response_id=second.id, input="Once more")
    items = client.responses.input_items.list(third.id, order="asc")
    assert [item.type for item in items.data] == ["message"]  # only this request's input
    seen = stack.fakes["gemini"].requests[-1]["body"]["contents"]
    assert "My name is Ada." in json.dumps(seen)  # the whole history reached the third provider


def test_retrieve_input_items_delete(stack: Stack) -> None:
    client = stack.client()
    response = client.responses.create(model=MODELS["echo"], input=[{"role": "user", "content": "keep me"}])
    assert client.responses.retrieve(response.id).id == response.id
    items = client.responses.input_items.list(response.id)
    assert items.data[0].type == "message"
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_a_response_is_readable_only_by_its_principal(stack: Stack) -> None:
    response = stack.client().responses.create(model=MODELS["echo"], input="private")
    other = stack.client(OTHER_KEY)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model=MODELS["echo"], previous_response_id=response.id, input="let me in")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_store_false_keeps_nothing(stack: Stack) -> None:
    client = stack.client()
    response = client.responses.create(model=MODELS["echo"], input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


@pytest.mark.parametrize("name", ["echo", "openai", "anthropic"])
def test_a_streamed_response_with_store_false_completes_and_keeps_nothing(stack: Stack, name: str) -> None:
    """Without a store, the stream's sends carry no store hook; it still completes, and stores nothing."""
    client = stack.client()
    events = list(client.responses.create(model=MODELS[name], input="forget me", store=False, stream=True))
    assert events[-1].type == "response.completed"
    assert "forget me" in events[-1].response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(events[-1].response.id)
    kept = list(client.responses.create(model=MODELS[name], input="keep me", stream=True))
    assert client.responses.retrieve(kept[-1].response.id).output_text == kept[-1].response.output_text


@pytest.mark.parametrize("name", ["echo", "anthropic", "gemini", "openai"])
def test_text_format_json_schema_is_enforced_natively(stack: Stack, name: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response = stack.client().responses.create(
        model=MODELS[name],
        input="Paris",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
    )
    assert set(json.loads(response.output_text)) == {"city"}


def test_builtin_tools_are_dropped_and_named_for_translated_upstreams(stack: Stack) -> None:
    raw = stack.client().responses.with_raw_response.create(
        model=MODELS["anthropic"], input="hi", tools=[{"type": "web_search"}, WEATHER]
    )
    assert raw.headers["x-llm-gateway-dropped-tools"] == "web_search"
    assert raw.parse().status == "completed"


def test_invalid_bodies_get_openais_envelope(stack: Stack) -> None:
    response = httpx.post(
        stack.url + "/v1/responses",
        json={"model": "echo/echo-1", "input": 5},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


def test_unknown_previous_response_is_a_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.client().responses.create(model=MODELS["echo"], previous_response_id="resp_nope", input="hi")
    # OpenAI's own message and code for this case (the clients that branch on it look for the code).
    assert caught.value.body == {  # type: ignore[comparison-overlap]
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_native_answer_keeps_the_clients_store_and_previous_response_id(stack: Stack, streamed: bool) -> None:
    """Regression: on a native OpenAI upstream the client got back what the gateway had sent upstream,
    `store: false` and `previous_response_id: null`, instead of its own values (translated upstreams were
    right)."""
    client = stack.client()
    first = client.responses.create(model=MODELS["openai"], input="Hello")
    assert first.store is True and first.previous_response_id is None
    if streamed:
        with client.responses.stream(
            model=MODELS["openai"], input="Again", previous_response_id=first.id
        ) as stream:
            events = list(stream)
            second = stream.get_final_response()
        assert events[0].response.previous_response_id == first.id  # type: ignore[union-attr]
    else:
        second = client.responses.create(model=MODELS["openai"], input="Again", previous_response_id=first.id)
    assert second.store is True and second.previous_response_id == first.id
    assert client.responses.retrieve(second.id).previous_response_id == first.id
    unstored = client.responses.create(model=MODELS["openai"], input="Hi", store=False)
    assert unstored.store is False


def test_a_continuation_answers_custom_calls_of_tools_offered_in_the_history(stack: Stack) -> None:
    """Regression: a custom tool offered only in an earlier turn's `additional_tools` item reached the
    upstream (the history is sent whole) but its call came back as a plain `function_call`: the answer was
    built from the request's own tools, not the conversation's."""
    client = stack.client()
    tools = {"type": "additional_tools", "tools": [{"type": "custom", "name": "run", "description": "Run."}]}
    first = client.responses.create(
        model=MODELS["echo"],
        input=[tools, {"role": "user", "content": "Hello"}],  # type: ignore[list-item]
    )
    assert first.output_text == "Hello"
    second = client.responses.create(
        model=MODELS["echo"], previous_response_id=first.id, input="run(input=ls)"
    )
    [call] = second.output
    assert call.type == "custom_tool_call" and call.name == "run" and call.input == "ls"
    with client.responses.stream(
        model=MODELS["echo"], previous_response_id=first.id, input="run(input=pwd)"
    ) as stream:
        streamed = stream.get_final_response()
    [call] = streamed.output
    assert call.type == "custom_tool_call" and call.input == "pwd"


def test_a_cut_upstream_stream_ends_in_response_failed(stack: Stack) -> None:
    stack.fakes["openai"].faults.append(fake_openai.Fault(None, cut_after=2))
    body = {"model": MODELS["openai"], "input": "one two three four", "stream": True}
    with httpx.stream(
        "POST", stack.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"}
    ) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["type"] in ("response.failed", "error")
    assert all(json.loads(line[6:])["type"] != "response.completed" for line in lines)


def test_metering_names_the_endpoint(stack: Stack) -> None:
    stack.client().responses.create(model=MODELS["anthropic"], input="meter me")
    deadline = time.monotonic() + 3
    while not any(r.endpoint == "responses" and r.target == MODELS["anthropic"] for r in stack.usage):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    record = next(r for r in stack.usage if r.endpoint == "responses" and r.target == MODELS["anthropic"])
    assert record.status == 200 and record.principal == "agent" and record.usage is not None


def test_dropped_tool_types_never_put_client_text_into_a_header_unchecked(stack: Stack) -> None:
    hostile = {"type": "web\r\nset-cookie: x=1", "name": "ignored"}
    response = httpx.post(
        stack.url + "/v1/responses",
        json={"model": MODELS["anthropic"], "input": "hi", "tools": [{"type": "web_search"}, hostile]},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert response.headers["x-llm-gateway-dropped-tools"] == "web_search, unnamed"


@pytest.mark.parametrize("name", ["echo", "openai", "anthropic"])
def test_an_item_reference_is_resolved_from_the_conversation(stack: Stack, name: str) -> None:
    """Regression: an `item_reference` was a 400 ("must be resolved before translation") on translated
    upstreams and went as it was to native ones, which hold no state (the gateway sends `store: false`)."""
    client = stack.client()
    first = client.responses.create(model=MODELS[name], input="Remember the word tangerine")
    [message] = first.output
    second = client.responses.create(
        model=MODELS[name],
        previous_response_id=first.id,
        input=[
            {"type": "item_reference", "id": message.id},  # type: ignore[list-item]
            {"role": "user", "content": "What did you say?"},
        ],
    )
    assert second.status == "completed"
    listed = client.responses.input_items.list(second.id, order="asc").data
    assert listed[0].type == "message" and "tangerine" in json.dumps(listed[0].model_dump())
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(
            model=MODELS[name],
            previous_response_id=first.id,
            input=[{"type": "item_reference", "id": "msg_nowhere"}],  # type: ignore[list-item]
        )
    assert caught.value.body["param"] == "input[0].id"  # type: ignore[index]


@pytest.mark.parametrize("name", ["echo", "openai"])
def test_a_streamed_response_is_stored_before_its_last_event(name: str) -> None:
    """Regression: a streamed response was stored after its last event had been sent, so a client that
    continued the chain the moment it read `response.completed` (on another replica, or with a slow store)
    got a 404 for `previous_response_id`."""
    import anyio

    from asgi_llm_gateway import Gateway
    from asgi_llm_gateway.providers import OpenAIProvider
    from asgi_llm_gateway.state.memory import MemoryResponseStore
    from tests.fakes.openai import KEY as UPSTREAM_KEY
    from tests.fakes.openai import FakeOpenAI
    from tests.support.server import serve

    class SlowStore(MemoryResponseStore):
        async def put(self, stored: Any) -> None:
            await anyio.sleep(0.3)
            await super().put(stored)

    upstream = FakeOpenAI()
    with serve(upstream.app()) as upstream_url:
        gateway = Gateway(
            providers={"openai": OpenAIProvider(api_key=UPSTREAM_KEY, base_url=upstream_url + "/v1")}
            if name == "openai"
            else None,
            response_store=SlowStore(),
        )
        model = MODELS[name]
        with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as client:
            with client.responses.stream(model=model, input="Remember tangerine") as stream:
                first = stream.get_final_response()
            second = client.responses.create(model=model, previous_response_id=first.id, input="Again")
    assert second.previous_response_id == first.id
