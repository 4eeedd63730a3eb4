"""Hostile input against every provider: model ids that try to steer headers or upstream URLs, ids that
must travel exactly as signed, numbers past what the schema allows.

Every provider points at one recording upstream on loopback that keeps the raw path of each request it
gets, so each test can say exactly what reached an upstream, and that nothing did when the gateway refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import (
    AnthropicProvider,
    AzureOpenAIProvider,
    BedrockProvider,
    DeepSeekProvider,
    GeminiProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    XAIProvider,
)
from tests.e2e.test_bedrock_e2e import gateway_for, openai_client
from tests.fakes.bedrock import ACCESS_KEY, SECRET_KEY, FakeBedrock
from tests.support.server import serve

KEY = "sk-upstream-hostile-0123456789"


@dataclass
class Recorder:
    """An upstream that records the raw path (and body) of every request, and answers 418."""

    seen: list[tuple[str, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        self.seen.append((target.decode("latin-1"), body))
        await send(
            {"type": "http.response.start", "status": 418, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"recorded"})


PROVIDERS = [
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "bedrock",
    "mistral",
    "groq",
    "deepseek",
    "xai",
    "local",
]


@dataclass
class Stack:
    recorder: Recorder
    url: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    recorder = Recorder()
    with serve(recorder) as upstream:
        gateway = Gateway(
            providers={
                "openai": OpenAIProvider(api_key=KEY, base_url=upstream + "/v1"),
                "azure": AzureOpenAIProvider(api_key=KEY, base_url=upstream, api_version="2024-10-21"),
                "anthropic": AnthropicProvider(api_key=KEY, base_url=upstream),
                "gemini": GeminiProvider(api_key=KEY, base_url=upstream),
                "bedrock": BedrockProvider(api_key=KEY, base_url=upstream, region="us-east-1"),
                "mistral": MistralProvider(api_key=KEY, base_url=upstream + "/v1"),
                "groq": GroqProvider(api_key=KEY, base_url=upstream + "/v1"),
                "deepseek": DeepSeekProvider(api_key=KEY, base_url=upstream),
                "xai": XAIProvider(api_key=KEY, base_url=upstream + "/v1"),
                "local": OpenAICompatibleProvider(api_key=KEY, base_url=upstream + "/v1"),
            },
            policy=Policy(max_attempts=1),
        )
        with serve(gateway) as url:
            yield Stack(recorder, url)


@pytest.fixture
def recorder(stack: Stack) -> Recorder:
    stack.recorder.seen.clear()
    return stack.recorder


def post(stack: Stack, body: dict[str, Any] | str) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(
        stack.url + "/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
    )


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def assert_rejected(response: httpx.Response, param: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    return error


# -- 1. A model id never reaches a response header unvalidated ----------------------------------------------

HEADER_BREAKERS = [
    "m\r\nx-injected: 1",
    "m\nx-injected: 1",
    "m with spaces",
    "m\tx",
    "m\x00",
    "caf\u00e9",
    "m" * 300,
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("upstream_id", HEADER_BREAKERS, ids=repr)
def test_model_id_that_would_break_a_response_header_is_a_400_naming_model(
    stack: Stack, recorder: Recorder, provider: str, upstream_id: str
) -> None:
    response = post(stack, chat(f"{provider}/{upstream_id}"))
    error = assert_rejected(response, "model")
    assert error["code"] == "invalid_model_id"
    assert "x-injected" not in response.headers
    assert "x-llm-gateway-target" not in response.headers
    assert recorder.seen == []


def test_model_id_in_the_models_path_is_validated_too(stack: Stack) -> None:
    response = httpx.get(stack.url + "/v1/models/openai%2Fm%0D%0Ax-injected:%201", timeout=10)
    assert_rejected(response, "model")
    assert "x-injected" not in response.headers


# -- 2. A model id never steers the upstream URL ---------------------------------------------------------

STEERING = [
    "..",
    ".",
    "../../v1beta/models/x",
    "x/../../../../openai/v1/chat/completions",
    "models/../../x",
    "a/./b",
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("upstream_id", STEERING)
def test_dot_segments_in_a_model_id_never_reach_an_upstream(
    stack: Stack, recorder: Recorder, provider: str, upstream_id: str
) -> None:
    error = assert_rejected(post(stack, chat(f"{provider}/{upstream_id}")), "model")
    assert "'..'" in error["message"]
    assert recorder.seen == []


TRICKY = "a/b?c=d#e%2F..:1"
QUOTED = "a%2Fb%3Fc%3Dd%23e%252F..%3A1"
ONE_SEGMENT = {
    "azure": f"/openai/deployments/{QUOTED}/chat/completions?api-version=2024-10-21",
    "gemini": f"/v1beta/models/{QUOTED}:generateContent",
    "bedrock": f"/model/{QUOTED}/converse",
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_model_id_enters_the_upstream_url_as_exactly_one_segment(
    stack: Stack, recorder: Recorder, provider: str
) -> None:
    post(stack, chat(f"{provider}/{TRICKY}"))
    [(path, body)] = recorder.seen
    if provider in ONE_SEGMENT:
        assert path == ONE_SEGMENT[provider]
    else:  # the id travels in the body, the path is the API's own
        assert path in ("/v1/chat/completions", "/chat/completions", "/v1/messages")
        assert json.loads(body)["model"] == TRICKY


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini/models/gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("gemini/tunedModels/my-model-42", "/v1beta/tunedModels/my-model-42:generateContent"),
        ("gemini/models/a/b", "/v1beta/models/a%2Fb:generateContent"),
    ],
)
def test_gemini_collection_prefix_is_kept_and_the_rest_is_one_segment(
    stack: Stack, recorder: Recorder, model: str, path: str
) -> None:
    post(stack, chat(model))
    assert [seen for seen, _ in recorder.seen] == [path]


# -- 3. Bedrock: what is signed is exactly what is sent ----------------------------------------------------

BEDROCK_IDS = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
]


@pytest.fixture(scope="module")
def signed_bedrock() -> Iterator[tuple[FakeBedrock, openai.OpenAI]]:
    fake = FakeBedrock()  # checks every SigV4 signature against the path exactly as received
    with serve(fake.app) as upstream:
        provider = BedrockProvider(
            base_url=upstream,
            region="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        with serve(gateway_for(provider)) as url, openai_client(url) as client:
            yield fake, client


@pytest.mark.parametrize("model_id", BEDROCK_IDS)
def test_bedrock_ids_with_colons_are_sent_on_the_path_they_were_signed_for(
    signed_bedrock: tuple[FakeBedrock, openai.OpenAI], model_id: str
) -> None:
    fake, client = signed_bedrock
    messages: Any = [{"role": "user", "content": "hello"}]
    completion = client.chat.completions.create(model=f"bedrock/{model_id}", messages=messages)
    assert completion.model == f"bedrock/{model_id}"
    assert fake.requests[-1].model == model_id
    stream = client.chat.completions.create(model=f"bedrock/{model_id}", messages=messages, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert (fake.requests[-1].operation, fake.requests[-1].model) == ("converse-stream", model_id)


# -- 6. Numbers out of range ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("max_tokens", "100000000000000000000"),
        ("max_completion_tokens", "1e20"),
        ("n", "1.5"),
        ("seed", "2e64"),
    ],
)
def test_numbers_past_their_bounds_are_a_400_naming_the_field(
    stack: Stack, recorder: Recorder, provider: str, field_name: str, value: str
) -> None:
    body = json.dumps(chat(f"{provider}/m"))[:-1] + f', "{field_name}": {value}}}'
    assert_rejected(post(stack, body), field_name)
    assert recorder.seen == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_400_naming_the_field(
    stack: Stack, recorder: Recorder, provider: str, value: str
) -> None:
    body = json.dumps(chat(f"{provider}/m"))[:-1] + f', "temperature": {value}}}'
    error = assert_rejected(post(stack, body), "temperature")
    assert "temperature" in error["message"]
    assert recorder.seen == []
