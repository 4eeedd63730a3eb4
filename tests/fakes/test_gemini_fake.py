"""The fake Gemini upstream is only worth testing against if it behaves like the real one: these tests drive
it with Google's official `google-genai` SDK (which must be able to parse everything it sends) and with raw
HTTP for what the SDK would never send (unknown fields, wrong roles, missing keys)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from tests.fakes.gemini import DUMMY_SIGNATURE, KEY, FakeGemini, Fault, sign_call
from tests.support.server import serve

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
TIME = types.FunctionDeclaration(
    name="get_time",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"tz": types.Schema(type=types.Type.STRING)}),
)
NO_AUTO_CALLS = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
def fake(upstream: tuple[FakeGemini, str]) -> FakeGemini:
    upstream[0].requests.clear()
    upstream[0].faults.clear()
    return upstream[0]


@pytest.fixture
def url(upstream: tuple[FakeGemini, str]) -> str:
    return upstream[1]


@pytest.fixture
def client(url: str) -> Iterator[genai.Client]:
    # One attempt: the SDK's default retries would turn every scripted fault into a multi-second test.
    client = genai.Client(api_key=KEY, http_options={"base_url": url, "retry_options": {"attempts": 1}})
    yield client
    client.close()


def test_generate_content_echoes_and_counts(client: genai.Client, fake: FakeGemini) -> None:
    response = client.models.generate_content(
        model="gemini-3-flash",
        contents="Hello there friend",
        config=types.GenerateContentConfig(system_instruction="Be brief", temperature=0.2),
    )
    assert response.text == "Hello there friend"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 5  # three words + "Be brief"
    assert response.usage_metadata.candidates_token_count == 3
    recorded = fake.requests[-1]
    # google-genai 3.x calls /v1, 2.x (the newest for Python 3.10) /v1beta; the fake serves both.
    assert recorded["path"] in (
        "/v1/models/gemini-3-flash:generateContent",
        "/v1beta/models/gemini-3-flash:generateContent",
    )
    assert recorded["headers"]["x-goog-api-key"] == KEY
    assert recorded["body"]["systemInstruction"]["parts"] == [{"text": "Be brief"}]


def test_stream_sends_deltas_then_finish_and_usage(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="one two three"))
    assert [chunk.text for chunk in chunks] == ["one ", "two ", "three"]
    finishes = [chunk.candidates[0].finish_reason for chunk in chunks if chunk.candidates]
    assert finishes == [None, None, types.FinishReason.STOP]
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata.candidates_token_count == 3


def test_thinking_returns_a_thought_summary(client: genai.Client) -> None:
    response = client.models.generate_content(
        model="gemini-3-pro",
        contents="why is the sky blue",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(
                include_thoughts=True, thinking_level=types.ThinkingLevel.LOW
            )
        ),
    )
    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    thought, answer = response.candidates[0].content.parts
    assert thought.thought is True and thought.text == "Thinking about: why is the sky blue"
    assert answer.text == "why is the sky blue"
    assert response.usage_metadata and response.usage_metadata.thoughts_token_count == 7


def test_function_call_round_trip_with_thought_signature(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER, TIME])], automatic_function_calling=NO_AUTO_CALLS
    )
    question = types.Content(role="user", parts=[types.Part(text="Use get_weather for city=Paris days=3")])
    response = client.models.generate_content(model="gemini-3-flash", contents=[question], config=config)
    assert response.function_calls is not None
    assert [(call.name, call.args) for call in response.function_calls] == [
        ("get_weather", {"city": "Paris", "days": 3})
    ]
    assert response.candidates and response.candidates[0].content
    model_turn = response.candidates[0].content
    assert model_turn.parts and model_turn.parts[0].thought_signature == base64.b64decode(
        sign_call("gemini-3-flash", "get_weather")
    )
    result = types.Content(
        role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 21})]
    )
    followup = client.models.generate_content(
        model="gemini-3-flash", contents=[question, model_turn, result], config=config
    )
    assert followup.text == 'Results: get_weather={"temp_c": 21}'


def test_parallel_calls_sign_only_the_first(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER, TIME])], automatic_function_calling=NO_AUTO_CALLS
    )
    response = client.models.generate_content(
        model="gemini-3-flash", contents="get_weather and get_time please, tz=UTC", config=config
    )
    assert response.function_calls is not None
    assert [(call.name, call.args) for call in response.function_calls] == [
        ("get_weather", {"city": "text", "days": 1}),
        ("get_time", {"tz": "UTC"}),
    ]
    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    assert [part.thought_signature is not None for part in response.candidates[0].content.parts] == [
        True,
        False,
    ]


def test_mode_any_forces_a_call_and_none_forbids_it(client: genai.Client) -> None:
    tools = [types.Tool(function_declarations=[WEATHER, TIME])]

    def ask(
        mode: types.FunctionCallingConfigMode, names: list[str] | None = None
    ) -> types.GenerateContentResponse:
        calling = types.FunctionCallingConfig(mode=mode, allowed_function_names=names)
        config = types.GenerateContentConfig(
            tools=tools,
            tool_config=types.ToolConfig(function_calling_config=calling),
            automatic_function_calling=NO_AUTO_CALLS,
        )
        return client.models.generate_content(
            model="gemini-2.5-flash", contents="hi get_weather", config=config
        )

    forced = ask(types.FunctionCallingConfigMode.ANY, ["get_time"])
    assert forced.function_calls and [call.name for call in forced.function_calls] == ["get_time"]
    assert ask(types.FunctionCallingConfigMode.NONE).text == "hi get_weather"


def test_gemini_3_rejects_a_function_call_without_its_signature(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AUTO_CALLS
    )
    call = types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Oslo"}))
    history = [
        types.Content(role="user", parts=[types.Part(text="weather?")]),
        types.Content(role="model", parts=[call]),
        types.Content(
            role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})]
        ),
    ]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-flash", contents=history, config=config)
    assert caught.value.code == 400 and "thought_signature" in str(caught.value.message)
    # Google's documented placeholder passes, and older models do not check at all.
    call.thought_signature = DUMMY_SIGNATURE.encode()  # the SDK re-encodes bytes as base64
    with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
        client.models.generate_content(model="gemini-3-flash", contents=history, config=config)
    call.thought_signature = base64.urlsafe_b64decode(DUMMY_SIGNATURE)
    assert client.models.generate_content(model="gemini-3-flash", contents=history, config=config).text
    call.thought_signature = None
    assert client.models.generate_content(model="gemini-2.5-flash", contents=history, config=config).text


def _signed_history(client: genai.Client, model: str) -> list[types.Content]:
    """A Gemini 3 tool loop's history as `model` signed it, ready for the next call."""
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AUTO_CALLS
    )
    question = types.Content(role="user", parts=[types.Part(text="get_weather for city=Oslo days=1")])
    response = client.models.generate_content(model=model, contents=[question], config=config)
    assert response.candidates and response.candidates[0].content
    result = types.Content(
        role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})]
    )
    return [question, response.candidates[0].content, result]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_signatures_are_bound_to_the_model_and_the_fakes_key(client: genai.Client, stream: bool) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AUTO_CALLS
    )
    history = _signed_history(client, "gemini-3-pro")
    if stream:
        [*chunks] = client.models.generate_content_stream(
            model="gemini-3-pro", contents=history, config=config
        )
        assert "".join(chunk.text or "" for chunk in chunks).startswith("Results:")
    else:
        assert (
            client.models.generate_content(model="gemini-3-pro", contents=history, config=config).text or ""
        )
    with pytest.raises(errors.ClientError, match="Corrupted thought signature") as caught:
        client.models.generate_content(
            model="gemini-3-flash", contents=history, config=config
        )  # another model
    assert caught.value.code == 400
    part = history[1].parts[0] if history[1].parts else None
    assert part is not None and part.thought_signature is not None
    signed = part.thought_signature
    for foreign in (
        base64.b64decode(sign_call("gemini-3-pro", "get_weather", b"another project's key")),
        signed[:-1] + bytes([signed[-1] ^ 1]),  # altered
        signed[:-1],  # cut
    ):
        part.thought_signature = foreign
        with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
            client.models.generate_content(model="gemini-3-pro", contents=history, config=config)
    part.thought_signature = base64.urlsafe_b64decode(DUMMY_SIGNATURE)  # the placeholder passes anywhere
    assert client.models.generate_content(model="gemini-3-flash", contents=history, config=config).text


def test_another_fake_is_another_project(url: str) -> None:
    """A fake with its own signing key rejects what this one signed, as another project's Gemini would."""
    other = FakeGemini(signing_key=b"another project's key")
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AUTO_CALLS
    )
    with (
        serve(other.app()) as other_url,
        genai.Client(api_key=KEY, http_options={"base_url": url, "retry_options": {"attempts": 1}}) as ours,
        genai.Client(
            api_key=KEY, http_options={"base_url": other_url, "retry_options": {"attempts": 1}}
        ) as theirs,
    ):
        history = _signed_history(ours, "gemini-3-flash")
        with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
            theirs.models.generate_content(model="gemini-3-flash", contents=history, config=config)
        assert ours.models.generate_content(model="gemini-3-flash", contents=history, config=config).text


class City(BaseModel):
    name: str
    population: int = Field(ge=0)


class Trip(BaseModel):
    destination: City
    stops: list[City]
    note: str | None = None


@pytest.mark.parametrize("field", ["response_schema", "response_json_schema"])
def test_structured_output_matches_the_schema(client: genai.Client, field: str) -> None:
    schema: Any = Trip if field == "response_schema" else Trip.model_json_schema()
    config = types.GenerateContentConfig(response_mime_type="application/json", **{field: schema})
    response = client.models.generate_content(
        model="gemini-3-flash", contents="plan name=Rome", config=config
    )
    trip = Trip.model_validate_json(response.text or "")
    assert trip.destination == City(name="Rome", population=0)


def test_candidates_and_logprobs(client: genai.Client) -> None:
    config = types.GenerateContentConfig(candidate_count=2, response_logprobs=True, logprobs=2)
    response = client.models.generate_content(model="gemini-3-flash", contents="red fish", config=config)
    assert response.candidates and [c.index for c in response.candidates] == [0, 1]
    result = response.candidates[1].logprobs_result
    assert (
        result and result.chosen_candidates and [c.token for c in result.chosen_candidates] == ["red", "fish"]
    )


def test_limits_stop_sequences_and_safety(client: genai.Client) -> None:
    cut = client.models.generate_content(
        model="gemini-3-flash", contents="a b c d", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert (
        cut.text == "a b"
        and cut.candidates
        and cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    )
    stopped = client.models.generate_content(
        model="gemini-3-flash",
        contents="a b STOP c",
        config=types.GenerateContentConfig(stop_sequences=["STOP"]),
    )
    assert stopped.text == "a b "
    unsafe = client.models.generate_content(model="gemini-3-flash", contents="UNSAFE_OUTPUT")
    assert unsafe.candidates and unsafe.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert unsafe.candidates[0].content is None
    blocked = client.models.generate_content(model="gemini-3-flash", contents="BLOCK_PROMPT")
    assert blocked.candidates is None
    assert blocked.prompt_feedback and blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_media_parts_are_described(client: genai.Client) -> None:
    parts = [
        types.Part(text="look"),
        types.Part.from_bytes(data=b"\x89PNG1234", mime_type="image/png"),
        types.Part.from_uri(file_uri="https://example.com/cat.jpg", mime_type="image/jpeg"),
    ]
    response = client.models.generate_content(
        model="gemini-3-flash", contents=[types.Content(role="user", parts=parts)]
    )
    assert response.text == "look [image/png, 8 bytes] [image/jpeg at https://example.com/cat.jpg]"


def test_errors_the_sdk_understands(client: genai.Client, fake: FakeGemini, url: str) -> None:
    fake.faults.append(Fault(status=429))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-flash", contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"
    with pytest.raises(errors.ClientError) as not_found:
        client.models.generate_content(model="gemini-0-nope", contents="hi")
    assert not_found.value.code == 404 and not_found.value.status == "NOT_FOUND"
    bad_key = genai.Client(
        api_key="AIzaWrong", http_options={"base_url": url, "retry_options": {"attempts": 1}}
    )
    with pytest.raises(errors.ClientError) as invalid:
        bad_key.models.generate_content(model="gemini-3-flash", contents="hi")
    bad_key.close()
    assert (
        invalid.value.code == 400
        and invalid.value.message == "API key not valid. Please pass a valid API key."
    )


def test_an_error_written_into_a_stream_reaches_the_sdk(client: genai.Client, fake: FakeGemini) -> None:
    fake.faults.append(Fault(status=503, after_events=1))
    received = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model="gemini-3-flash", contents="one two three"):
            received.append(chunk.text)
    assert received == ["one "]
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"


def test_a_cut_stream_ends_without_a_finish_reason(client: genai.Client, fake: FakeGemini) -> None:
    fake.faults.append(Fault(status=None, after_events=2))
    chunks = list(client.models.generate_content_stream(model="gemini-3-flash", contents="one two three"))
    assert [chunk.text for chunk in chunks] == ["one ", "two "]
    assert all(chunk.candidates and chunk.candidates[0].finish_reason is None for chunk in chunks)


def test_models_listing(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert "models/gemini-3-flash" in names and "models/text-embedding-004" in names


# -- what the SDK would never send: raw HTTP ----------------------------------------------------------------


def _post(url: str, body: Any, *, key: str | None = KEY, model: str = "gemini-3-flash") -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.post(f"{url}/v1beta/models/{model}:generateContent", json=body, headers=headers)


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == response.status_code
    return body["error"]  # type: ignore[no-any-return]


USER = {"role": "user", "parts": [{"text": "hi"}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"contents": [USER], "generationConfig": {"maxTokens": 5}},
            "Unknown name \"maxTokens\" at 'generation_config'",
        ),
        ({"contents": [USER], "temperature": 1}, 'Unknown name "temperature": Cannot find field.'),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
            "Please use a valid role: user, model.",
        ),
        ({"contents": []}, "contents is not specified"),
        ({}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "empty text parameter"),
        (
            {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "function response turn comes immediately after a function call turn",
        ),
        (
            {
                "contents": [
                    USER,
                    {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2tpcA"}],
                    },
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}] * 2},
                ]
            },
            "number of function response parts is equal to the number of function call parts",
        ),
        ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {}}]}]}, "oneof field 'data'"),
        (
            {
                "contents": [USER],
                "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}],
            },
            "should be non-empty for OBJECT type",
        ),
        (
            {
                "contents": [USER],
                "tools": [{"functionDeclarations": [{"name": "f"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["f"]}},
            },
            "allowed_function_names may only be set when mode is ANY or VALIDATED",
        ),
        (
            {
                "contents": [USER],
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseJsonSchema": {
                        "type": "object",
                        "properties": {"a": {"$ref": "#/$defs/A", "description": "x"}},
                        "$defs": {"A": {}},
                    },
                },
            },
            "a schema with $ref may not set other properties",
        ),
        (
            {"contents": [USER], "generationConfig": {"responseJsonSchema": {"type": "object"}}},
            "must be application/json",
        ),
        (
            {"contents": [USER], "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOUD"}}},
            "ThinkingConfig.thinkingLevel",
        ),
    ],
)
def test_rejects_what_the_real_api_rejects(url: str, body: Any, message: str) -> None:
    response = _post(url, body)
    error = _error(response)
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


def test_thinking_level_is_for_gemini_3_only(url: str) -> None:
    body = {"contents": [USER], "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}
    assert _post(url, body).status_code == 200
    assert "not supported for this model" in _error(_post(url, body, model="gemini-2.5-flash"))["message"]


def test_keys_are_checked_like_google_does(url: str) -> None:
    missing = _post(url, {"contents": [USER]}, key=None)
    assert missing.status_code == 403 and _error(missing)["status"] == "PERMISSION_DENIED"
    wrong = _post(url, {"contents": [USER]}, key="AIzaWrongKey")
    assert wrong.status_code == 400 and _error(wrong)["details"][0]["reason"] == "API_KEY_INVALID"
    query = httpx.post(
        f"{url}/v1beta/models/gemini-3-flash:generateContent?key={KEY}", json={"contents": [USER]}
    )
    assert query.status_code == 200


def test_snake_case_fields_are_accepted_like_proto_json(url: str) -> None:
    body = {
        "contents": [USER],
        "generation_config": {"max_output_tokens": 1, "thinking_config": {"include_thoughts": True}},
    }
    response = _post(url, body)
    assert response.status_code == 200
    candidate = response.json()["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["parts"][0]["thought"] is True


def test_count_tokens_with_the_sdk(client: genai.Client, fake: FakeGemini) -> None:
    counted = client.models.count_tokens(model="gemini-3-flash", contents="one two three")
    assert counted.total_tokens == 3
    assert fake.requests[-1]["path"].endswith("/models/gemini-3-flash:countTokens")


def count(url: str, body: Any, model: str = "gemini-3-flash") -> httpx.Response:
    return httpx.post(f"{url}/v1beta/models/{model}:countTokens", json=body, headers={"x-goog-api-key": KEY})


def test_count_tokens_of_a_generate_content_request(url: str) -> None:
    contents = [{"role": "user", "parts": [{"text": "one two three"}]}]
    request = {"model": "models/gemini-3-flash", "contents": contents}
    bare = count(url, {"generateContentRequest": request})
    system = {**request, "systemInstruction": {"parts": [{"text": "be brief"}]}}
    tools = {**system, "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "w"}]}]}
    assert bare.status_code == 200 and bare.json()["totalTokens"] == 3
    assert count(url, {"generateContentRequest": system}).json()["totalTokens"] == 5
    assert count(url, {"generateContentRequest": tools}).json()["totalTokens"] > 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "contents": [{"parts": [{"text": "a"}]}],
                "generateContentRequest": {
                    "model": "models/gemini-3-flash",
                    "contents": [{"parts": [{"text": "a"}]}],
                },
            },
            "mutually exclusive",
        ),
        ({"generateContentRequest": {"contents": [{"parts": [{"text": "a"}]}]}}, "the model must be"),
        ({"generateContentRequest": {"model": "models/gemini-2.5-pro", "contents": []}}, "the model must be"),
        ({"generateContentRequest": {"model": "models/gemini-3-flash"}}, "contents is not specified"),
        ({"contentz": []}, 'Unknown name "contentz"'),
    ],
)
def test_count_tokens_rejects_what_the_real_api_rejects(url: str, body: Any, message: str) -> None:
    answer = count(url, body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]


# -- embeddings ----------------------------------------------------------------------------------------------


def test_the_sdk_embeds_one_text_and_a_batch(client: genai.Client, fake: FakeGemini) -> None:
    from asgi_llm_gateway.providers.echo import echo_embedding

    config = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=16, title="T")
    answer = client.models.embed_content(model="gemini-embedding-001", contents=["a b", "c"], config=config)
    assert answer.embeddings is not None
    assert [item.values for item in answer.embeddings] == [echo_embedding("a b", 16), echo_embedding("c", 16)]
    assert fake.requests[-1]["path"].endswith(":batchEmbedContents")


def embed(url: str, model: str, method: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1beta/models/{model}:{method}", json=body, headers={"x-goog-api-key": KEY})


def one(text: str, **fields: Any) -> dict[str, Any]:
    return {"content": {"parts": [{"text": text}]}, **fields}


def test_embed_content_answers_values(url: str) -> None:
    answer = embed(url, "text-embedding-004", "embedContent", one("hello", outputDimensionality=4))
    assert answer.status_code == 200 and len(answer.json()["embedding"]["values"]) == 4
    assert "usageMetadata" not in answer.json()


@pytest.mark.parametrize(
    ("model", "method", "body", "status", "message"),
    [
        ("gemini-embedding-001", "embedContent", one(""), 400, "text must not be empty"),
        ("gemini-embedding-001", "embedContent", {"content": {"parts": []}}, 400, "content is not specified"),
        ("gemini-embedding-001", "embedContent", one("a", taskType="SEARCH"), 400, "taskType"),
        ("gemini-embedding-001", "embedContent", one("a", title="T"), 400, "RETRIEVAL_DOCUMENT"),
        (
            "text-embedding-004",
            "embedContent",
            one("a", outputDimensionality=1024),
            400,
            "output_dimensionality",
        ),
        ("gemini-embedding-001", "embedContent", one("a", dimensions=8), 400, 'Unknown name "dimensions"'),
        ("gemini-embedding-001", "batchEmbedContents", {"requests": []}, 400, "requests is not specified"),
        (
            "gemini-embedding-001",
            "batchEmbedContents",
            {"requests": [{"model": "models/gemini-embedding-001", **one("a")}] * 101},
            400,
            "at most 100",
        ),
        (
            "gemini-embedding-001",
            "batchEmbedContents",
            {"requests": [{"model": "models/text-embedding-004", **one("a")}]},
            400,
            "the model must be",
        ),
        ("gemini-3-flash", "embedContent", one("a"), 404, "not supported for embedContent"),
        (
            "gemini-embedding-001",
            "generateContent",
            {"contents": [{"parts": [{"text": "a"}]}]},
            404,
            "not found",
        ),
    ],
)
def test_embeddings_reject_what_the_real_api_rejects(
    url: str, model: str, method: str, body: Any, status: int, message: str
) -> None:
    answer = embed(url, model, method, body)
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"]
