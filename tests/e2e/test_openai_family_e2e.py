"""OpenAI SDK → gateway (uvicorn, loopback) → fake OpenAI-family upstream (uvicorn, loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import (
    AzureOpenAIProvider,
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    XAIProvider,
)
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.support.openai_spec import ValidatingTransport, assert_valid
from tests.support.server import serve

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    },
}


class Stack:
    def __init__(
        self,
        fake: FakeOpenAI,
        client: openai.OpenAI,
        gateway_url: str,
        upstream_url: str,
        transport: ValidatingTransport,
    ) -> None:
        self.fake = fake
        self.client = client
        self.url = gateway_url
        self.upstream_url = upstream_url
        #: Every chat-completions answer the client receives is checked against OpenAI's spec on its way in.
        self.transport = transport


@pytest.fixture(scope="module")
def stacks() -> Iterator[dict[str, Stack]]:
    fakes = {name: FakeOpenAI(flavour=name) for name in ("openai", "mistral", "azure", "deepseek", "groq")}
    transport = ValidatingTransport()
    with (
        serve(fakes["openai"].app()) as openai_url,
        serve(fakes["mistral"].app()) as mistral_url,
        serve(fakes["azure"].app()) as azure_url,
        serve(fakes["deepseek"].app()) as deepseek_url,
        serve(fakes["groq"].app()) as groq_url,
    ):
        upstreams = {
            "openai": openai_url,
            "mistral": mistral_url,
            "azure": azure_url,
            "deepseek": deepseek_url,
            "groq": groq_url,
        }
        gateway = Gateway(
            providers={
                "openai": OpenAIProvider(api_key=KEY, base_url=openai_url + "/v1"),
                "mistral": MistralProvider(api_key=KEY, base_url=mistral_url + "/v1"),
                "azure": AzureOpenAIProvider(api_key=KEY, base_url=azure_url, api_version="2024-10-21"),
                "azure-v1": AzureOpenAIProvider(api_key=KEY, base_url=azure_url + "/openai/v1"),
                "deepseek": DeepSeekProvider(api_key=KEY, base_url=deepseek_url),
                "groq": GroqProvider(api_key=KEY, base_url=groq_url + "/v1"),
                "xai": XAIProvider(api_key=KEY, base_url=openai_url + "/v1"),
                "local": OpenAICompatibleProvider(base_url=openai_url + "/v1", api_key=KEY),
            },
            policy=Policy(max_attempts=1),  # error mapping is tested here; retries in test_resilience
        )
        with (
            serve(gateway) as url,
            openai.OpenAI(
                base_url=url + "/v1",
                api_key="client",
                max_retries=0,
                http_client=httpx.Client(transport=transport),
            ) as client,
        ):
            yield {
                name: Stack(fakes[flavour], client, url, upstreams[flavour], transport)
                for name, flavour in [
                    ("openai", "openai"),
                    ("mistral", "mistral"),
                    ("azure", "azure"),
                    ("azure-v1", "azure"),
                    ("deepseek", "deepseek"),
                    ("groq", "groq"),
                    ("xai", "openai"),
                    ("local", "openai"),
                ]
            }


PROVIDERS = ["openai", "mistral", "azure", "azure-v1", "deepseek", "groq", "xai", "local"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain_completion(stacks: dict[str, Stack], provider: str) -> None:
    stack = stacks[provider]
    raw = stack.client.chat.completions.with_raw_response.create(
        model=f"{provider}/test-model",
        messages=[
            {"role": "developer", "content": "Be nice."},
            {"role": "user", "content": "Hello upstream"},
        ],
        seed=3,
        max_completion_tokens=20,
    )
    body = json.loads(raw.text)
    assert_valid("CreateChatCompletionResponse", body)
    assert body["model"] == f"{provider}/test-model"
    assert body["choices"][0]["message"]["content"] == "Hello upstream"
    sent = stack.fake.requests[-1]
    assert sent["body"]["model"] == "test-model"
    if provider == "azure":
        assert sent["path"] == "/openai/deployments/test-model/chat/completions"
        assert sent["query"] == "api-version=2024-10-21"
    if provider == "mistral":
        assert sent["body"]["random_seed"] == 3 and "seed" not in sent["body"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_with_usage(stacks: dict[str, Stack], provider: str) -> None:
    stack = stacks[provider]
    with httpx.stream(
        "POST",
        stack.url + "/v1/chat/completions",
        json={
            "model": f"{provider}/m",
            "messages": [{"role": "user", "content": "one two"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        events = [e.removeprefix("data: ") for e in response.read().decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        assert chunk["model"] == f"{provider}/m"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "one two"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert all(c["usage"] is None for c in chunks[:-1])


@pytest.mark.parametrize("provider", ["openai", "mistral", "azure", "groq"])
def test_stream_without_usage_has_no_usage_chunk(stacks: dict[str, Stack], provider: str) -> None:
    chunks = list(
        stacks[provider].client.chat.completions.create(
            model=f"{provider}/m", messages=[{"role": "user", "content": "a"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_round_trip(stacks: dict[str, Stack], provider: str) -> None:
    client = stacks[provider].client
    messages: list[dict[str, Any]] = [{"role": "user", "content": "please lookup cats"}]
    first = client.chat.completions.create(
        model=f"{provider}/m", messages=messages, tools=[TOOL], tool_choice="required"
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"q": "please lookup cats"}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "cats are great"},
    ]
    second = client.chat.completions.create(model=f"{provider}/m", messages=messages, tools=[TOOL])
    assert second.choices[0].message.content == "Tool results: cats are great"


def test_mistral_gets_9_character_ids_for_openai_style_history(stacks: dict[str, Stack]) -> None:
    stack = stacks["mistral"]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "lookup"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_from_another_provider_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_from_another_provider_1", "content": "done"},
    ]
    completion = stack.client.chat.completions.create(model="mistral/m", messages=messages, tools=[TOOL])
    assert completion.choices[0].message.content == "Tool results: done"
    sent = stack.fake.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"]
    assert len(sent[2]["tool_call_id"]) == 9


@pytest.mark.parametrize("provider", ["openai", "mistral", "groq"])
def test_streamed_tool_call(stacks: dict[str, Stack], provider: str) -> None:
    stream = stacks[provider].client.chat.completions.create(
        model=f"{provider}/m", messages=[{"role": "user", "content": "lookup"}], tools=[TOOL], stream=True
    )
    arguments = ""
    names = []
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            assert delta.index == 0
            if delta.function and delta.function.name:
                names.append(delta.function.name)
            arguments += (delta.function.arguments if delta.function else "") or ""
    assert names == ["lookup"] and json.loads(arguments) == {"q": "lookup"}


def test_the_mistral_fake_answers_tool_calls_as_mistral_does(stacks: dict[str, Stack]) -> None:
    """The regression tests below prove something only while the fake deviates as Mistral does: no `type`
    on tool calls, an `index` on non-streamed ones, each streamed call whole in one delta."""
    stack = stacks["mistral"]
    body = {"model": "m", "messages": [{"role": "user", "content": "lookup"}], "tools": [TOOL]}
    headers = {"authorization": f"Bearer {KEY}"}
    answer = httpx.post(stack.upstream_url + "/v1/chat/completions", json=body, headers=headers).json()
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert "type" not in call and call["index"] == 0 and len(call["id"]) == 9
    streamed = httpx.post(
        stack.upstream_url + "/v1/chat/completions", json={**body, "stream": True}, headers=headers
    ).text
    chunks = [json.loads(e[6:]) for e in streamed.split("\n\n") if e.startswith("data: {")]
    fragments = [f for c in chunks for f in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert len(fragments) == 1 and "type" not in fragments[0] and fragments[0]["index"] == 0
    assert json.loads(fragments[0]["function"]["arguments"]) == {"q": "lookup"}


def test_mistral_tool_calls_come_back_with_type_function(stacks: dict[str, Stack]) -> None:
    """Regression (issue 12): Mistral's tool calls were passed on without `type` and with an `index`; the
    SDK showed `type=None` and openai-node's and the Vercel AI SDK's tool loops failed."""
    stack = stacks["mistral"]
    raw = stack.client.chat.completions.with_raw_response.create(
        model="mistral/m", messages=[{"role": "user", "content": "please lookup cats"}], tools=[TOOL]
    )
    body = json.loads(raw.text)
    assert_valid("CreateChatCompletionResponse", body)
    call = body["choices"][0]["message"]["tool_calls"][0]
    assert set(call) == {"id", "type", "function"} and call["type"] == "function"
    assert set(call["function"]) == {"name", "arguments"}
    sdk_call = (raw.parse().choices[0].message.tool_calls or [])[0]
    assert sdk_call.type == "function" and sdk_call.id == call["id"]


def test_mistral_streamed_tool_calls_come_back_with_type_function(stacks: dict[str, Stack]) -> None:
    """Regression (issue 12), streamed: the fragment that opens a call carries `type: "function"` (and its
    `index`), so the SDK's stream helper assembles a complete tool call."""
    stack = stacks["mistral"]
    fragments = []
    with stack.client.chat.completions.stream(
        model="mistral/m", messages=[{"role": "user", "content": "please lookup cats"}], tools=[TOOL]
    ) as stream:
        for event in stream:
            if event.type == "chunk" and event.chunk.choices:
                fragments += event.chunk.choices[0].delta.tool_calls or []
        final = stream.get_final_completion()
    opening = [f for f in fragments if f.id]
    assert len(opening) == 1 and opening[0].type == "function" and opening[0].index == 0
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.id == opening[0].id
    assert json.loads(call.function.arguments) == {"q": "please lookup cats"}


def test_every_answer_the_sdk_receives_is_checked_against_the_spec(stacks: dict[str, Stack]) -> None:
    """Issue 12 went unseen because tool-call answers were only read through the SDK, which accepts
    `type=None`; the stack's transport now validates every answer and event it carries."""
    stack = stacks["openai"]
    before = stack.transport.checked
    stack.client.chat.completions.create(model="openai/m", messages=[{"role": "user", "content": "x"}])
    list(
        stack.client.chat.completions.create(
            model="openai/m", messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    assert stack.transport.checked >= before + 1 + 4  # the answer; role, two words, finish


LEGACY_FUNCTION = TOOL["function"]


@pytest.mark.parametrize("provider", ["openai", "mistral", "groq", "deepseek"])
def test_legacy_functions_round_trip(stacks: dict[str, Stack], provider: str) -> None:
    """Regression: Mistral's field list dropped `functions` without a word (and refused function messages).
    Every provider now gets tools, and the client gets `function_call` back, as it asked."""
    stack = stacks[provider]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "please lookup cats"}]
    first = stack.client.chat.completions.create(
        model=f"{provider}/m",
        messages=messages,
        functions=[LEGACY_FUNCTION],
        function_call={"name": "lookup"},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call is not None and choice.message.function_call.name == "lookup"
    assert json.loads(choice.message.function_call.arguments) == {"q": "please lookup cats"}
    sent = stack.fake.requests[-1]["body"]
    assert "functions" not in sent and [t["function"]["name"] for t in sent["tools"]] == ["lookup"]
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "function", "name": "lookup", "content": "cats are great"},
    ]
    second = stack.client.chat.completions.create(
        model=f"{provider}/m", messages=messages, functions=[LEGACY_FUNCTION]
    )
    assert second.choices[0].message.content == "Tool results: cats are great"
    sent = stack.fake.requests[-1]["body"]["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == sent[-2]["tool_calls"][0]["id"]


@pytest.mark.parametrize("provider", ["openai", "mistral"])
def test_legacy_functions_streamed(stacks: dict[str, Stack], provider: str) -> None:
    stream = stacks[provider].client.chat.completions.create(
        model=f"{provider}/m",
        messages=[{"role": "user", "content": "lookup"}],
        functions=[LEGACY_FUNCTION],
        function_call={"name": "lookup"},
        stream=True,
    )
    name, arguments, finish = None, "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        assert delta.tool_calls is None
        if delta.function_call is not None:
            name = delta.function_call.name or name
            arguments += delta.function_call.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (name, json.loads(arguments), finish) == ("lookup", {"q": "lookup"}, "function_call")


class Answer(BaseModel):
    answer: str
    confidence: float


@pytest.mark.parametrize("provider", ["openai", "mistral", "azure", "groq"])
def test_parse_structured_output(stacks: dict[str, Stack], provider: str) -> None:
    completion = stacks[provider].client.chat.completions.parse(
        model=f"{provider}/m", messages=[{"role": "user", "content": "yes"}], response_format=Answer
    )
    assert completion.choices[0].message.parsed == Answer(answer="yes", confidence=0.0)


def test_image_part_passes_through_to_openai(stacks: dict[str, Stack]) -> None:
    stack = stacks["openai"]
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    stack.client.chat.completions.create(
        model="openai/gpt-4.1",
        messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, part]}],
    )
    assert stack.fake.requests[-1]["body"]["messages"][0]["content"][1] == part


def test_deepseek_rejects_images_before_calling_upstream(stacks: dict[str, Stack]) -> None:
    stack = stacks["deepseek"]
    count = len(stack.fake.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(
            model="deepseek/m",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ],
        )
    assert caught.value.param == "messages[0].content[0].type"
    assert len(stack.fake.requests) == count


def test_openai_reasoning_model_gets_max_completion_tokens(stacks: dict[str, Stack]) -> None:
    stack = stacks["openai"]
    stack.client.chat.completions.create(
        model="openai/o4-mini", messages=[{"role": "user", "content": "x"}], max_tokens=9
    )
    body = stack.fake.requests[-1]["body"]
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


def test_unknown_fields_reach_openai_and_its_rejection_reaches_the_client(stacks: dict[str, Stack]) -> None:
    stack = stacks["openai"]
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(
            model="openai/gpt-4.1", messages=[{"role": "user", "content": "x"}], extra_body={"not_a_field": 1}
        )
    assert "Unrecognized request argument supplied: not_a_field" in caught.value.message
    assert caught.value.body["message"].startswith("openai:")  # type: ignore[index]


def test_models_listing_includes_upstream_models(stacks: dict[str, Stack]) -> None:
    ids = {model.id for model in stacks["openai"].client.models.list()}
    assert {"openai/gpt-test", "local/gpt-test", "xai/gpt-test"} <= ids


# -- upstream failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "exception", "status"),
    [
        (
            Fault(
                429,
                {
                    "error": {
                        "message": "slow down",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
                {"retry-after": "7"},
            ),
            openai.RateLimitError,
            429,
        ),
        (
            Fault(500, {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}),
            openai.InternalServerError,
            502,
        ),
        (
            Fault(
                503, {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}}
            ),
            openai.InternalServerError,
            503,
        ),
        (
            Fault(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {KEY}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            openai.InternalServerError,
            502,
        ),
        (
            Fault(
                404,
                {
                    "error": {
                        "message": "The model does not exist",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
            ),
            openai.NotFoundError,
            404,
        ),
        (Fault(200, raw="<html>definitely not json</html>"), openai.InternalServerError, 502),
    ],
    ids=["429", "500", "503", "upstream-401", "404", "garbage"],
)
def test_upstream_errors_map_to_the_right_sdk_exception(
    stacks: dict[str, Stack], fault: Fault, exception: type[openai.APIStatusError], status: int
) -> None:
    stack = stacks["openai"]
    stack.fake.faults.append(fault)
    with pytest.raises(exception) as caught:
        stack.client.chat.completions.create(model="openai/m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert_valid("ErrorResponse", caught.value.response.json())
    assert KEY not in caught.value.response.text
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


def test_mistral_422_becomes_400(stacks: dict[str, Stack]) -> None:
    stack = stacks["mistral"]
    stack.fake.faults.append(
        Fault(
            422,
            {
                "object": "error",
                "message": {"detail": [{"msg": "bad"}]},
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
        )
    )
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(model="mistral/m", messages=[{"role": "user", "content": "x"}])
    assert "bad" in caught.value.message


def test_stream_cut_midway_ends_in_an_error_not_success(stacks: dict[str, Stack]) -> None:
    stack = stacks["openai"]
    stack.fake.faults.append(Fault(cut_after=2))
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stack.client.chat.completions.create(
            model="openai/m", messages=[{"role": "user", "content": "one two three four"}], stream=True
        ):
            received.append(chunk)
    assert "upstream" in caught.value.message
    assert all(chunk.choices[0].finish_reason is None for chunk in received)


def test_stream_error_before_first_chunk_is_a_status(stacks: dict[str, Stack]) -> None:
    stack = stacks["openai"]
    stack.fake.faults.append(
        Fault(429, {"error": {"message": "busy", "type": "x", "param": None, "code": None}})
    )
    with pytest.raises(openai.RateLimitError):
        stack.client.chat.completions.create(
            model="openai/m", messages=[{"role": "user", "content": "x"}], stream=True
        )


def test_upstream_model_lists_are_cached() -> None:
    fake = FakeOpenAI()
    with serve(fake.app()) as upstream:
        gateway = Gateway(providers={"up": OpenAIProvider(api_key=KEY, base_url=upstream + "/v1")})
        with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
            first = [model.id for model in client.models.list()]
            second = [model.id for model in client.models.list()]
    assert first == second == ["up/gpt-test"]
    assert fake.model_listings == 1
