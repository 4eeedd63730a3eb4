"""OpenAI Responses requests passed through natively (the Responses door with an OpenAI or Azure upstream):
the pure pieces (`openai/_responses.py`: sealing, the body, the checked stream), the contract's defaults,
and the providers against the fake OpenAI on loopback, which refuses what the real API refuses (unknown
fields, encrypted content it did not make), so every success also proves the request was one OpenAI takes."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers import openai as family
from asgi_llm_gateway.providers.base import EventRun, Provider
from asgi_llm_gateway.providers.openai import (
    AzureOpenAIProvider,
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    ResponsesStreamTranslator,
    XAIProvider,
    seal_reasoning,
    sealed_for,
    unseal_reasoning,
)
from asgi_llm_gateway.providers.openai._responses import native_responses_body, seal, unseal
from asgi_llm_gateway.sse import ServerSentEvent
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import serve

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    """A Responses request as the door hands it on: the whole conversation as input, store false."""
    return {
        "model": "client-alias",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}],
        "store": False,
        **extra,
    }


# -- sealing (golden) ----------------------------------------------------------------------------------------

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-secret=="},
        {"id": "msg_1", "type": "message", "role": "assistant", "content": []},
        {"id": "cmp_1", "type": "compaction", "encrypted_content": "gAAAAB-compacted"},
    ],
}


def test_seal_golden_response() -> None:
    before = copy.deepcopy(RESPONSE)
    sealed = seal_reasoning(RESPONSE, "openai")
    assert sealed == {
        **before,
        "output": [
            {**before["output"][0], "encrypted_content": "gw1.6.openai.gAAAAB-secret=="},
            before["output"][1],
            {**before["output"][2], "encrypted_content": "gw1.6.openai.gAAAAB-compacted"},
        ],
    }
    assert before == RESPONSE, "sealing is pure"
    assert sealed["output"][1] is RESPONSE["output"][1], "what has nothing to seal is not copied"


def test_seal_golden_events() -> None:
    item = RESPONSE["output"][0]
    added = {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": item}
    completed = {"type": "response.completed", "sequence_number": 9, "response": RESPONSE}
    delta = {"type": "response.output_text.delta", "sequence_number": 3, "delta": "hi", "item_id": "msg_1"}
    assert seal_reasoning(added, "azure-eu")["item"]["encrypted_content"] == "gw1.8.azure-eu.gAAAAB-secret=="
    sealed = seal_reasoning(completed, "x")["response"]["output"]
    assert [i.get("encrypted_content") for i in sealed] == [
        "gw1.1.x.gAAAAB-secret==",
        None,
        "gw1.1.x.gAAAAB-compacted",
    ]
    assert seal_reasoning(delta, "x") is delta
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "r", "output": []}}
    assert seal_reasoning(created, "x") is created


def test_unseal_golden_keeps_only_what_was_sealed_for_this_provider() -> None:
    mine = seal("gAAAAB-mine", "openai")
    items = [
        {"type": "message", "role": "user", "content": "hi"},
        {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": mine},
        {
            "id": "rs_2",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": seal("gAAAAB-eu", "openai-eu"),
        },
        {"id": "rs_3", "type": "reasoning", "summary": [], "encrypted_content": seal("gAAAAB-x", "openai.x")},
        {"id": "rs_4", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-raw"},
        {"id": "rs_5", "type": "reasoning", "summary": [{"type": "summary_text", "text": "from claude"}]},
        {
            "id": "rs_6",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": "gw1.6.openai",
        },  # no dot after
        {"id": "cmp_1", "type": "compaction", "encrypted_content": seal("gAAAAB-cmp", "openai")},
        {"type": "compaction", "encrypted_content": seal("gAAAAB-cmp", "azure")},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
    ]
    before = copy.deepcopy(items)
    assert unseal_reasoning(items, "openai") == [
        items[0],
        {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-mine"},
        {"id": "cmp_1", "type": "compaction", "encrypted_content": "gAAAAB-cmp"},
        items[9],
        items[10],
    ]
    assert items == before, "unsealing is pure"
    assert [i.get("id") for i in unseal_reasoning(items, "openai-eu") if i.get("type") == "reasoning"] == [
        "rs_2"
    ]
    assert [i.get("id") for i in unseal_reasoning(items, "openai.x") if i.get("type") == "reasoning"] == [
        "rs_3"
    ]
    assert [i.get("type") for i in unseal_reasoning(items, "anthropic")] == [
        "message",
        "function_call",
        "function_call_output",
    ]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (seal("abc", "openai"), "openai"),
        (seal("a.b.c", "open.ai"), "open.ai"),
        (seal("", "x"), "x"),
        ("gw1.6.openai", None),
        ("gw1.06.openai.abc", None),
        ("gw1.x.openai.abc", None),
        ("gw1.99.openai.abc", None),
        ("gAAAAB-raw", None),
        (None, None),
    ],
)
def test_sealed_for_names_the_provider_or_none(value: Any, name: str | None) -> None:
    assert sealed_for(value) == name
    if name is not None:
        assert unseal(value, name) is not None
        assert unseal(value, name + "x") is None


def test_the_sealed_value_survives_a_json_round_trip_and_stays_plain_ascii() -> None:
    value = seal("gAAAAB/+==", "openai-3f2a9c1b0d4e")
    assert value.isascii() and " " not in value and json.loads(json.dumps(value)) == value
    assert unseal(value, "openai-3f2a9c1b0d4e") == "gAAAAB/+=="


def test_native_body_replaces_the_model_sets_stream_and_unseals_without_touching_the_client_body() -> None:
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": seal("enc", "p")}
    client = body(stream=False, stream_options={"include_obfuscation": False})
    client["input"].append(reasoning)
    before = copy.deepcopy(client)
    streamed = native_responses_body(client, "gpt-4.1", stream=True, provider_name="p")
    assert streamed["model"] == "gpt-4.1" and streamed["stream"] is True
    assert streamed["input"][1]["encrypted_content"] == "enc"
    plain = native_responses_body(client, "gpt-4.1", stream=False, provider_name="q")
    assert "stream" not in plain and "stream_options" not in plain and len(plain["input"]) == 1
    text = native_responses_body({"model": "a", "input": "hi"}, "b", stream=False, provider_name="p")
    assert text == {"model": "b", "input": "hi"}
    assert client == before


# -- the stream checker --------------------------------------------------------------------------------------


def sse(data: Any, name: str | None = None) -> ServerSentEvent:
    kind = data.get("type", "message") if isinstance(data, dict) else "message"
    return ServerSentEvent(data=data if isinstance(data, str) else json.dumps(data), event=name or kind)


def lifecycle(*middle: dict[str, Any], final: str = "response.completed") -> list[dict[str, Any]]:
    events = [
        {"type": "response.created", "response": {"id": "resp_1", "output": []}},
        {"type": "response.in_progress", "response": {"id": "resp_1", "output": []}},
        *middle,
        {"type": final, "response": {**RESPONSE, "id": "resp_1"}},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def test_translator_hands_events_on_in_order_sealed_and_stops_at_completed() -> None:
    events = lifecycle(
        {"type": "response.output_item.done", "output_index": 0, "item": RESPONSE["output"][0]}
    )
    translator = ResponsesStreamTranslator("openai", "scope")
    out = [event for data in events for event in translator.feed(sse(data))]
    assert [e["type"] for e in out] == [e["type"] for e in events]
    assert out[2]["item"]["encrypted_content"] == "gw1.5.scope.gAAAAB-secret=="
    assert out[3]["response"]["output"][0]["encrypted_content"] == "gw1.5.scope.gAAAAB-secret=="
    assert translator.done and translator.end() == []
    assert translator.feed(sse({"type": "response.output_text.delta", "sequence_number": 99})) == []


def test_translator_takes_incomplete_as_the_end_and_passes_unknown_types() -> None:
    events = lifecycle({"type": "response.future_thing", "x": 1}, final="response.incomplete")
    translator = ResponsesStreamTranslator("openai", "scope")
    out = [event for data in events for event in translator.feed(sse(data))]
    assert out[2] == events[2] and translator.done


def test_translator_ignores_blank_data_and_done_markers() -> None:
    translator = ResponsesStreamTranslator("openai", "scope")
    assert translator.feed(ServerSentEvent(data="")) == []
    assert translator.feed(ServerSentEvent(data="[DONE]")) == []
    with pytest.raises(GatewayError) as caught:
        translator.end()
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")


def _numbered(*events: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


CREATED = {"type": "response.created", "response": {"id": "resp_1", "output": []}}


@pytest.mark.parametrize(
    ("events", "status", "code"),
    [
        (
            _numbered(
                CREATED, {"type": "error", "code": "rate_limit_exceeded", "message": "slow", "param": None}
            ),
            429,
            "rate_limit_exceeded",
        ),
        (  # the nested shape some servers send
            _numbered(
                CREATED, {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
            ),
            400,
            None,
        ),
        (
            _numbered(
                CREATED,
                {
                    "type": "response.failed",
                    "response": {"id": "resp_1", "error": {"code": "server_error", "message": "boom"}},
                },
            ),
            502,
            "server_error",
        ),
        (
            _numbered(
                CREATED,
                {
                    "type": "response.failed",
                    "response": {"id": "resp_1", "error": {"code": "invalid_prompt", "message": "flagged"}},
                },
            ),
            400,
            "invalid_prompt",
        ),
        ([{"type": "response.output_text.delta", "sequence_number": 0}], 502, "upstream_bad_response"),
        (["not json at all"], 502, "upstream_bad_response"),
        ([[1, 2]], 502, "upstream_bad_response"),
        ([{"sequence_number": 0}], 502, "upstream_bad_response"),
        ([{"type": "response.created", "response": {"id": "r"}}], 502, "upstream_bad_response"),
        (
            [CREATED | {"sequence_number": 3}, {"type": "response.in_progress", "sequence_number": 3}],
            502,
            "upstream_bad_response",
        ),
        (
            _numbered(CREATED, {"type": "response.completed", "response": {"id": "resp_2", "output": []}}),
            502,
            "upstream_bad_response",
        ),
    ],
)
def test_translator_failures(events: list[Any], status: int, code: str | None) -> None:
    translator = ResponsesStreamTranslator("openai", "scope")
    with pytest.raises(GatewayError) as caught:
        for data in events:
            translator.feed(sse(data))
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code


def test_translator_end_without_completed_is_incomplete() -> None:
    translator = ResponsesStreamTranslator("openai", "scope")
    for data in lifecycle()[:2]:
        translator.feed(sse(data))
    with pytest.raises(GatewayError) as caught:
        translator.end()
    assert (caught.value.status, caught.value.code) == (502, "upstream_stream_incomplete")


# -- the contract --------------------------------------------------------------------------------------------


class Plain(Provider):
    kind = "plain"

    async def complete(self, request: Any, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, request: Any, model: str) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError


@pytest.mark.anyio
@pytest.mark.parametrize(
    "provider",
    [
        Plain(),
        MistralProvider(api_key="k"),
        GroqProvider(api_key="k"),
        DeepSeekProvider(api_key="k"),
        XAIProvider(api_key="k"),
        OpenAICompatibleProvider(base_url="http://127.0.0.1:9/v1"),
    ],
)
async def test_only_openai_and_azure_speak_responses(provider: Provider) -> None:
    assert provider.speaks_responses("gpt-4.1") is False
    with pytest.raises(GatewayError) as caught:
        await provider.responses(body(), "m")
    assert (caught.value.status, caught.value.code) == (500, "responses_not_native")
    with pytest.raises(GatewayError):
        provider.responses_batches(body(), "m")


def test_the_quirks_row_says_who_speaks_responses() -> None:
    assert family.OPENAI.responses is True
    for row in (family.COMPATIBLE, family.MISTRAL, family.GROQ, family.DEEPSEEK, family.XAI):
        assert row.responses is False
    assert OpenAIProvider(api_key="k").speaks_responses("o3") is True
    assert (
        AzureOpenAIProvider(api_key="k", base_url="https://r.openai.azure.com").speaks_responses("d") is True
    )


def test_the_reasoning_scope_tells_endpoints_and_accounts_apart() -> None:
    one = OpenAIProvider(api_key="sk-one")
    assert one.reasoning_scope == OpenAIProvider(api_key="sk-one").reasoning_scope
    assert one.reasoning_scope.startswith("openai-") and "sk-one" not in one.reasoning_scope
    assert one.reasoning_scope != OpenAIProvider(api_key="sk-two").reasoning_scope
    assert one.reasoning_scope != OpenAIProvider(api_key="sk-one", base_url="http://x/v1").reasoning_scope
    one.reasoning_scope = "team"
    assert one.reasoning_scope == "team"


@pytest.mark.parametrize(
    ("base_url", "api_version", "url"),
    [
        ("https://r.openai.azure.com", None, "https://r.openai.azure.com/openai/v1/responses"),
        ("https://r.openai.azure.com/openai/v1", None, "https://r.openai.azure.com/openai/v1/responses"),
        (
            "https://r.openai.azure.com",
            "2025-04-01-preview",
            "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview",
        ),
    ],
)
def test_azure_responses_urls(base_url: str, api_version: str | None, url: str) -> None:
    provider = AzureOpenAIProvider(api_key="k", base_url=base_url, api_version=api_version)
    assert provider.responses_url("my-deployment") == url


# -- through the fake OpenAI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    upstream[0].requests.clear()
    upstream[0].faults.clear()
    return upstream[0]


@pytest.fixture
async def provider(upstream: tuple[FakeOpenAI, str]) -> AsyncIterator[OpenAIProvider]:
    openai = OpenAIProvider(api_key=KEY, base_url=upstream[1] + "/v1")
    yield openai
    await openai.aclose()


async def events_of(stream: AsyncIterator[list[Any]]) -> list[dict[str, Any]]:
    """The events, a run of text deltas relayed as bytes (`EventRun`) read as the client reads them."""
    return [event async for batch in stream for item in batch for event in _expanded(item)]


def _expanded(item: Any) -> list[dict[str, Any]]:
    if not isinstance(item, EventRun):
        return [item]
    events = [event.split("\ndata: ", 1) for event in item.data.decode().split("\n\n") if event]
    assert all(name == "event: response.output_text.delta" for name, _ in events)
    parsed = [json.loads(data) for _, data in events]
    assert (parsed[0]["sequence_number"], parsed[-1]["sequence_number"]) == (item.first, item.last)
    return parsed


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


@pytest.mark.anyio
async def test_create_goes_to_responses_with_the_upstream_model(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    client = body("one two three", instructions="Be brief.", temperature=0.2)
    before = copy.deepcopy(client)
    response = await provider.responses(client, "gpt-4.1")
    assert response["object"] == "response" and response["status"] == "completed"
    assert text_of(response) == "one two three" and response["model"] == "gpt-4.1"
    assert response["usage"]["output_tokens"] == 3
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/responses" and sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["body"] == {**before, "model": "gpt-4.1"}
    assert client == before


@pytest.mark.anyio
async def test_stream_events_arrive_intact_in_order_with_increasing_sequence_numbers(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    events = await events_of(provider.responses_batches(body("a b c"), "gpt-4.1"))
    assert fake.requests[-1]["body"]["stream"] is True
    kinds = [event["type"] for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    numbers = [event["sequence_number"] for event in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "a b c"
    assert events[0]["response"]["id"] == events[-1]["response"]["id"]
    assert text_of(events[-1]["response"]) == "a b c"


@pytest.mark.anyio
async def test_a_tool_call_is_a_function_call_item_with_argument_events(provider: OpenAIProvider) -> None:
    request = body("What is get_weather(city=Paris) like?", tools=[WEATHER])
    response = await provider.responses(request, "gpt-4.1")
    [call] = response["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"} and call["call_id"].startswith("call_")
    events = await events_of(provider.responses_batches(request, "gpt-4.1"))
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert deltas and "".join(deltas) == done["arguments"] == call["arguments"]
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["type"] == "function_call" and done["item_id"] == added["item"]["id"]
    # the tool's result, back as the whole conversation
    turn = body("What is get_weather(city=Paris) like?", tools=[WEATHER])
    turn["input"] += [
        {k: call[k] for k in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
    ]
    answer = await provider.responses(turn, "gpt-4.1")
    assert text_of(answer) == "Tool results: sunny"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault(status=None, fail_after=4), 502, "server_error"),
        (Fault(status=None, fail_after=4, fail_code="rate_limit_exceeded"), 429, "rate_limit_exceeded"),
        (Fault(status=None, fail_after=4, fail_with="error", fail_code="rate_limit_exceeded"), 429, None),
        (
            Fault(status=None, fail_after=4, fail_with="error", fail_code="invalid_prompt"),
            400,
            "invalid_prompt",
        ),
    ],
)
async def test_an_error_mid_stream_is_a_gateway_error_after_the_events_before_it(
    fake: FakeOpenAI, provider: OpenAIProvider, fault: Fault, status: int, code: str | None
) -> None:
    fake.faults.append(fault)
    received: list[dict[str, Any]] = []
    with pytest.raises(GatewayError) as caught:
        async for batch in provider.responses_batches(body("one two three four five"), "gpt-4.1"):
            received.extend(batch)
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code
    assert [e["sequence_number"] for e in received] == [0, 1, 2, 3]


@pytest.mark.anyio
async def test_a_cut_stream_is_a_gateway_error(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.faults.append(Fault(status=None, cut_after=3))
    with pytest.raises(GatewayError) as caught:
        await events_of(provider.responses_batches(body("one two three four"), "gpt-4.1"))
    assert caught.value.status == 502
    assert caught.value.code in ("upstream_stream_incomplete", "upstream_stream_error")


@pytest.mark.anyio
async def test_a_garbage_stream_is_a_gateway_error(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.faults.append(
        Fault(
            status=200,
            raw="event: response.created\ndata: {nope\n\n",
            headers={"content-type": "text/event-stream"},
        )
    )
    with pytest.raises(GatewayError) as caught:
        await events_of(provider.responses_batches(body(), "gpt-4.1"))
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")


@pytest.mark.anyio
async def test_an_upstream_400_keeps_its_param(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    with pytest.raises(GatewayError) as caught:
        await provider.responses(body(bogus=1), "gpt-4.1")
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "unknown_parameter", "bogus")
    with pytest.raises(GatewayError) as caught:
        await events_of(provider.responses_batches(body(previous_response_id="resp_nope"), "gpt-4.1"))
    error = caught.value
    assert (error.status, error.code, error.param) == (
        400,
        "previous_response_not_found",
        "previous_response_id",
    )


@pytest.mark.anyio
async def test_an_upstream_failure_status_maps_like_chat(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.faults.append(Fault(503, {"error": {"message": "overloaded", "type": "server_error"}}))
    with pytest.raises(GatewayError) as caught:
        await provider.responses(body(), "gpt-4.1")
    assert caught.value.status == 503 and caught.value.retryable


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("suffix", "api_version", "path", "query"),
    [
        ("", None, "/openai/v1/responses", ""),
        ("/openai/v1", None, "/openai/v1/responses", ""),
        ("", "2025-04-01-preview", "/openai/responses", "api-version=2025-04-01-preview"),
    ],
)
async def test_azure_paths(suffix: str, api_version: str | None, path: str, query: str) -> None:
    fake = FakeOpenAI(flavour="azure")
    with serve(fake.app()) as url:
        azure = AzureOpenAIProvider(api_key=KEY, base_url=url + suffix, api_version=api_version)
        try:
            response = await azure.responses(body("hi azure"), "my-deployment")
            events = await events_of(azure.responses_batches(body("hi azure"), "my-deployment"))
        finally:
            await azure.aclose()
    assert text_of(response) == "hi azure" and events[-1]["type"] == "response.completed"
    for sent in fake.requests:
        assert (sent["path"], sent["query"]) == (path, query)
        assert sent["headers"]["api-key"] == KEY and sent["body"]["model"] == "my-deployment"


@pytest.mark.anyio
async def test_encrypted_reasoning_is_sealed_out_and_unsealed_only_for_the_provider_that_made_it(
    fake: FakeOpenAI, provider: OpenAIProvider, upstream: tuple[FakeOpenAI, str]
) -> None:
    include = ["reasoning.encrypted_content"]
    first = await provider.responses(
        body("Think about get_weather", tools=[WEATHER], include=include, reasoning={"effort": "low"}),
        "o4-mini",
    )
    reasoning, call = first["output"]
    assert reasoning["type"] == "reasoning" and call["type"] == "function_call"
    sealed = reasoning["encrypted_content"]
    assert sealed_for(sealed) == provider.reasoning_scope
    original = unseal(sealed, provider.reasoning_scope)
    assert original is not None and fake.verify_encrypted(original)

    # the next turn, as a stateless client sends it: everything so far, reasoning included
    turn = body("Think about get_weather", tools=[WEATHER], include=include)
    turn["input"] += [
        reasoning,
        {k: call[k] for k in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
    ]
    events = await events_of(provider.responses_batches(turn, "o4-mini"))
    assert events[-1]["type"] == "response.completed"
    sent = fake.requests[-1]["body"]["input"]
    assert sent[1] == {**reasoning, "encrypted_content": original}, "the upstream gets its own content back"
    done = [
        e["item"]
        for e in events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "reasoning"
    ]
    assert done and sealed_for(done[0]["encrypted_content"]) == provider.reasoning_scope
    final = events[-1]["response"]["output"][0]
    assert sealed_for(final["encrypted_content"]) == provider.reasoning_scope

    # another account (same fake URL, another key scope): the item is dropped, not sent to fail there
    other = OpenAIProvider(api_key=KEY, base_url=upstream[1] + "/v1")
    other.reasoning_scope = "other-account"
    try:
        answer = await other.responses(turn, "o4-mini")
    finally:
        await other.aclose()
    assert answer["status"] == "completed"
    assert [i.get("type") for i in fake.requests[-1]["body"]["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]

    # content the gateway never sealed (a client's own, or raw upstream content) is dropped as well
    raw = copy.deepcopy(turn)
    raw["input"][1]["encrypted_content"] = original
    await provider.responses(raw, "o4-mini")
    assert "reasoning" not in [i.get("type") for i in fake.requests[-1]["body"]["input"]]
