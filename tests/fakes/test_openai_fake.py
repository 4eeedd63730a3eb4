"""The fake OpenAI's Responses API, driven by the official `openai` SDK.

If the SDK reads the fake's answers, streams and errors as it reads the real API's, and the fake refuses
what OpenAI refuses, tests of the gateway against the fake mean something. Every event and response is
also validated against the SDK's own models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.server import serve

MODEL = "gpt-4.1"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    app = FakeOpenAI()
    with serve(app.app()) as url:
        yield app, url


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    served[0].faults.clear()
    return served[0]


@pytest.fixture
def client(served: tuple[FakeOpenAI, str]) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=served[1] + "/v1", max_retries=0)


def valid(response: Any) -> Response:
    """The raw JSON the SDK received, checked against the SDK's strict model."""
    return Response.model_validate(response.model_dump(mode="json", exclude_unset=True))


def raw_events(client: openai.OpenAI, **params: Any) -> list[dict[str, Any]]:
    events = [
        event.model_dump(mode="json", exclude_unset=True)
        for event in client.responses.create(**params, stream=True)
    ]
    for event in events:
        EVENT.validate_python(event)
    return events


def rejected(client: openai.OpenAI, **params: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(**params)
    return caught.value


def error_of(caught: openai.APIStatusError) -> tuple[int, str | None, str | None]:
    body = caught.body if isinstance(caught.body, dict) else {}
    return caught.status_code, body.get("code"), body.get("param")


# -- answers -------------------------------------------------------------------------------------------------


def test_create_echoes_the_last_user_text(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Hello there", instructions="Be brief.")
    valid(response)
    assert response.output_text == "Hello there" and response.status == "completed"
    assert (
        response.id.startswith("resp_") and response.model == MODEL and response.instructions == "Be brief."
    )
    [message] = response.output
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert response.usage is not None and response.usage.output_tokens == 2
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_stream_helper_accumulates_the_same_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="one two three") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three" == final.output_text
    assert final.status == "completed"


def test_raw_stream_lifecycle_sequence_numbers_and_ids(client: openai.OpenAI) -> None:
    events = raw_events(client, model=MODEL, input="a b")
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    item_id = events[2]["item"]["id"]
    assert all(event["item_id"] == item_id for event in events[3:8])
    assert events[8]["item"]["id"] == item_id == events[-1]["response"]["output"][0]["id"]
    assert events[0]["response"]["id"] == events[-1]["response"]["id"]
    assert (
        events[0]["response"]["status"] == "in_progress" and events[-1]["response"]["status"] == "completed"
    )


def test_tools_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input="Use get_weather(city=Paris)", tools=[WEATHER], store=False
    )
    valid(first)
    [call] = first.output
    assert (
        call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"city": "Paris"}'
    )
    events = raw_events(
        client, model=MODEL, input="Use get_weather(city=Paris)", tools=[WEATHER], store=False
    )
    arguments = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(arguments) == call.arguments
    second = client.responses.create(
        model=MODEL,
        tools=[WEATHER],
        store=False,
        input=[
            {"role": "user", "content": "Use get_weather(city=Paris)"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
        ],
    )
    assert second.output_text == "Tool results: sunny, 21C"


def test_previous_response_id_continues_a_stored_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="Use get_weather(city=Oslo)", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call"
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "snow"}],
    )
    assert second.output_text == "Tool results: snow" and second.previous_response_id == first.id


def test_text_format_json_schema_and_parse(client: openai.OpenAI) -> None:
    class City(pydantic.BaseModel):
        name: str
        population: int

    parsed = client.responses.parse(model=MODEL, input="Oslo", text_format=City)
    assert parsed.output_parsed == City(name="Oslo", population=0)
    assert parsed.text.format is not None and parsed.text.format.type == "json_schema"
    json_object = client.responses.create(
        model=MODEL, input="hi json", text={"format": {"type": "json_object"}}
    )
    assert json_object.output_text == '{"echo": "hi json"}'


def test_max_output_tokens_ends_incomplete(client: openai.OpenAI) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    response = client.responses.create(model=MODEL, input=words, max_output_tokens=16)
    valid(response)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert (
        response.incomplete_details.reason == "max_output_tokens" and len(response.output_text.split()) == 16
    )
    events = raw_events(client, model=MODEL, input=words, max_output_tokens=16)
    assert events[-1]["type"] == "response.incomplete"


# -- reasoning -----------------------------------------------------------------------------------------------


def test_reasoning_models_answer_with_a_verifiable_encrypted_reasoning_item(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    response = client.responses.create(
        model="o4-mini",
        input="Think",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    valid(response)
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and message.type == "message"
    assert (
        reasoning.summary
        and reasoning.encrypted_content
        and fake.verify_encrypted(reasoning.encrypted_content)
    )
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens > 0
    events = raw_events(
        client, model="gpt-5", input="Think", include=["reasoning.encrypted_content"], store=False
    )
    added = next(e for e in events if e["type"] == "response.output_item.added")
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert "encrypted_content" not in added["item"] and fake.verify_encrypted(
        done["item"]["encrypted_content"]
    )
    without = client.responses.create(model="o3", input="Think", store=False)
    assert without.output[0].type == "reasoning" and without.output[0].encrypted_content is None

    replay = [
        {"role": "user", "content": "Think"},
        reasoning.model_dump(exclude_none=True),
        {"role": "user", "content": "again"},
    ]
    again = client.responses.create(model="o4-mini", input=replay, store=False)
    assert again.output_text == "again"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value[:-1] + ("0" if value[-1] != "0" else "1"),
        lambda value: "gAAAABnot-ours.0000",
        lambda value: "gw1.6.openai." + value,  # the gateway's seal must never reach the upstream
        lambda value: FakeOpenAI().encrypt("rs_other"),  # another account's content
    ],
)
def test_reasoning_content_it_did_not_make_is_refused(client: openai.OpenAI, tamper: Any) -> None:
    response = client.responses.create(
        model="o4-mini", input="Think", include=["reasoning.encrypted_content"], store=False
    )
    reasoning = response.output[0].model_dump(exclude_none=True)
    reasoning["encrypted_content"] = tamper(reasoning["encrypted_content"])
    caught = rejected(
        client, model="o4-mini", input=[reasoning, {"role": "user", "content": "x"}], store=False
    )
    assert error_of(caught) == (400, "invalid_encrypted_content", None)


def test_reasoning_items_without_content_are_not_found_when_nothing_is_stored(client: openai.OpenAI) -> None:
    item = {
        "type": "reasoning",
        "id": "rs_gateway_summary",
        "summary": [{"type": "summary_text", "text": "x"}],
    }
    caught = rejected(client, model="o4-mini", input=[item, {"role": "user", "content": "x"}], store=False)
    assert caught.status_code == 404 and "not persisted" in caught.message
    caught = rejected(client, model=MODEL, input=[{"type": "item_reference", "id": "msg_nope"}])
    assert caught.status_code == 404


def test_reasoning_effort_needs_a_reasoning_model(client: openai.OpenAI) -> None:
    caught = rejected(client, model=MODEL, input="x", reasoning={"effort": "high"})
    assert error_of(caught) == (400, "unsupported_parameter", "reasoning.effort")


# -- what OpenAI refuses -------------------------------------------------------------------------------------


def test_an_unknown_top_level_parameter_is_refused(client: openai.OpenAI) -> None:
    caught = rejected(client, model=MODEL, input="x", extra_body={"fallbacks": ["gpt-4o"]})
    assert error_of(caught) == (400, "unknown_parameter", "fallbacks")
    assert "Unknown parameter: 'fallbacks'." in caught.message
    # not in the published document, but OpenAI takes it: Codex sends it on every request
    assert client.responses.create(
        model=MODEL, input="x", extra_body={"client_metadata": {"a": "1"}}
    ).output_text


def test_an_unknown_previous_response_id_is_refused(client: openai.OpenAI) -> None:
    caught = rejected(client, model=MODEL, input="x", previous_response_id="resp_unknown")
    assert error_of(caught) == (400, "previous_response_not_found", "previous_response_id")
    unstored = client.responses.create(model=MODEL, input="x", store=False)
    caught = rejected(client, model=MODEL, input="y", previous_response_id=unstored.id)
    assert error_of(caught)[1] == "previous_response_not_found"


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "json_schema", "schema": {"type": "object"}}, "text.format.name"),
        ({"type": "json_schema", "name": "x"}, "text.format.schema"),
    ],
)
def test_json_schema_without_name_or_schema_is_refused(client: openai.OpenAI, fmt: Any, param: str) -> None:
    caught = rejected(client, model=MODEL, input="x", text={"format": fmt})
    assert error_of(caught) == (400, "missing_required_parameter", param)


@pytest.mark.parametrize(
    ("items", "code", "param"),
    [
        ([{"type": "function_call_output", "output": "x"}], "missing_required_parameter", "input[0].call_id"),
        (
            [{"type": "function_call", "call_id": "c", "name": "f"}],
            "missing_required_parameter",
            "input[0].arguments",
        ),
        ([{"type": "telepathy"}], "invalid_value", "input[0].type"),
        ([{"role": "user", "content": "x", "colour": "red"}], "unknown_parameter", "input[0].colour"),
        ([{"role": "robot", "content": "x"}], "invalid_value", "input[0].role"),
        (
            [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
            "invalid_value",
            "input[0].content[0].type",
        ),
        (
            [{"role": "user", "content": [{"type": "input_text"}]}],
            "missing_required_parameter",
            "input[0].content[0].text",
        ),
        (["just a string"], "invalid_type", "input[0]"),
        ([{"type": "reasoning", "encrypted_content": "x"}], "missing_required_parameter", "input[0].summary"),
    ],
)
def test_malformed_items_are_refused(client: openai.OpenAI, items: Any, code: str, param: str) -> None:
    caught = rejected(client, model=MODEL, input=items)
    assert error_of(caught) == (400, code, param)


def test_tools_are_checked(client: openai.OpenAI) -> None:
    caught = rejected(client, model=MODEL, input="x", tools=[{"type": "function", "parameters": {}}])
    assert error_of(caught) == (400, "missing_required_parameter", "tools[0].name")
    caught = rejected(client, model=MODEL, input="x", tools=[{"type": "teleport"}])
    assert error_of(caught) == (400, "invalid_value", "tools[0].type")
    built_in = client.responses.create(model=MODEL, input="search the web", tools=[{"type": "web_search"}])
    assert built_in.output_text == "search the web"


def test_small_max_output_tokens_and_bad_includes_are_refused(client: openai.OpenAI) -> None:
    assert error_of(rejected(client, model=MODEL, input="x", max_output_tokens=5)) == (
        400,
        "integer_below_min_value",
        "max_output_tokens",
    )
    assert error_of(rejected(client, model=MODEL, input="x", include=["everything"])) == (
        400,
        "invalid_value",
        "include[0]",
    )


def test_a_wrong_key_is_401(served: tuple[FakeOpenAI, str]) -> None:
    other = openai.OpenAI(api_key="sk-wrong", base_url=served[1] + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        other.responses.create(model=MODEL, input="x")


# -- faults --------------------------------------------------------------------------------------------------


def test_a_scripted_failure_mid_stream_is_a_failed_event(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(status=None, fail_after=3))
    events = raw_events(client, model=MODEL, input="one two three four")
    assert [e["sequence_number"] for e in events] == [0, 1, 2, 3]
    assert (
        events[-1]["type"] == "response.failed" and events[-1]["response"]["error"]["code"] == "server_error"
    )
    fake.faults.append(Fault(status=None, fail_after=2, fail_with="error", fail_code="rate_limit_exceeded"))
    events = raw_events(client, model=MODEL, input="one two")
    assert events[-1] == {
        "type": "error",
        "sequence_number": 2,
        "code": "rate_limit_exceeded",
        "message": events[-1]["message"],
        "param": None,
    }


def test_a_cut_stream_never_completes(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.faults.append(Fault(status=None, cut_after=2))
    with (
        pytest.raises(Exception),  # noqa: B017 - the SDK's transport error, whichever it is
        client.responses.stream(model=MODEL, input="one two three") as stream,
    ):
        for _ in stream:
            pass
        stream.get_final_response()


# -- Azure, and flavours without the Responses API -----------------------------------------------------------


def test_azure_serves_the_v1_and_the_versioned_paths() -> None:
    fake = FakeOpenAI(flavour="azure")
    with serve(fake.app()) as url:
        versioned = openai.AzureOpenAI(
            api_key=KEY, azure_endpoint=url, api_version="2025-04-01-preview", max_retries=0
        )
        assert versioned.responses.create(model="my-deployment", input="hi").output_text == "hi"
        assert (fake.requests[-1]["path"], fake.requests[-1]["query"]) == (
            "/openai/responses",
            "api-version=2025-04-01-preview",
        )
        v1 = openai.OpenAI(api_key="unused", base_url=url + "/openai/v1", default_headers={"api-key": KEY})
        with v1.responses.stream(model="my-deployment", input="hi v1") as stream:
            assert stream.get_final_response().output_text == "hi v1"
        assert fake.requests[-1]["path"] == "/openai/v1/responses"
        bare = openai.OpenAI(api_key="unused", base_url=url + "/openai", default_headers={"api-key": KEY})
        with pytest.raises(openai.NotFoundError):
            bare.responses.create(model="my-deployment", input="x")


def test_other_flavours_have_no_responses_api_and_chat_is_unchanged() -> None:
    fake = FakeOpenAI(flavour="mistral")
    with serve(fake.app()) as url:
        mistral = openai.OpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            mistral.responses.create(model="mistral-small", input="x")
        chat = mistral.chat.completions.create(
            model="mistral-small", messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content == "hi"


# -- embeddings ----------------------------------------------------------------------------------------------


def test_embeddings_answer_the_sdk_in_float_and_base64(client: openai.OpenAI) -> None:
    from asgi_llm_gateway.providers.echo import echo_embedding

    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a b", "c"], encoding_format="float"
    )
    assert [item.embedding for item in floats.data] == [
        echo_embedding("a b", 1536),
        echo_embedding("c", 1536),
    ]
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)
    default = client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=64)
    assert default.data[0].embedding == pytest.approx(echo_embedding("a b", 64), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"model": "text-embedding-3-small", "input": ""}, 400, "input"),
        ({"model": "text-embedding-3-small", "input": []}, 400, "input"),
        ({"model": "text-embedding-3-small", "input": ["a", ""]}, 400, "input"),
        ({"model": "text-embedding-3-small", "input": ["a"] * 2049}, 400, "input"),
        ({"model": "text-embedding-ada-002", "input": "a", "dimensions": 256}, 400, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "a", "dimensions": 4096}, 400, "dimensions"),
        (
            {"model": "text-embedding-3-small", "input": "a", "extra_body": {"input_type": "x"}},
            400,
            "input_type",
        ),
        ({"model": "gpt-4.1", "input": "a"}, 404, "model"),
    ],
)
def test_embeddings_refuse_what_openai_refuses(
    client: openai.OpenAI, params: dict[str, Any], status: int, param: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(**params)
    assert error_of(caught.value)[0] == status and error_of(caught.value)[2] == param


def test_mistral_embeddings_take_their_own_fields_and_text_only() -> None:
    fake = FakeOpenAI(flavour="mistral")
    with serve(fake.app()) as url:
        mistral = openai.OpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0)
        answer = mistral.embeddings.create(
            model="codestral-embed", input="x", encoding_format="float", extra_body={"output_dimension": 8}
        )
        assert len(answer.data[0].embedding) == 8
        for params in (
            {"input": "x", "dimensions": 8},  # OpenAI's name: Mistral's is output_dimension
            {"input": "x", "user": "u"},
            {"input": [[1, 2]]},
        ):
            with pytest.raises(openai.UnprocessableEntityError):
                mistral.embeddings.create(model="codestral-embed", **params)


def test_flavours_without_embeddings_answer_404() -> None:
    fake = FakeOpenAI(flavour="groq")
    with serve(fake.app()) as url:
        groq = openai.OpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            groq.embeddings.create(model="any", input="x")
