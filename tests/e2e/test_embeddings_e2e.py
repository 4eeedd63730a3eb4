"""`/v1/embeddings` through the whole gateway: the official `openai` SDK and LangChain's `OpenAIEmbeddings`
on one side; on the other the fake OpenAI, Azure and Mistral, Gemini and Bedrock (Titan and Cohere)
upstreams, each speaking its native wire format, and echo; real loopback sockets in between.

Every fake answers with the echo provider's vector for each text (`echo_embedding`), so each test knows the
exact vector a client must get, whichever upstream made it.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import tiktoken
from langchain_openai import OpenAIEmbeddings

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.auth import api_keys
from asgi_llm_gateway.policy import Policy, Route
from asgi_llm_gateway.providers import (
    AzureOpenAIProvider,
    BedrockProvider,
    EchoProvider,
    GeminiProvider,
    GroqProvider,
    MistralProvider,
    OpenAIProvider,
)
from asgi_llm_gateway.providers import embeddings as embedding_module
from asgi_llm_gateway.providers.echo import echo_embedding
from asgi_llm_gateway.providers.embeddings import decode_base64
from asgi_llm_gateway.usage import UsageRecord
from tests.fakes import gemini as fake_gemini
from tests.fakes.bedrock import ACCESS_KEY, SECRET_KEY, FakeBedrock
from tests.fakes.openai import KEY, FakeOpenAI, Fault
from tests.fakes.openai_embeddings import embeddings_validator
from tests.providers.embeddings_support import seed_tiktoken_cache
from tests.support.server import serve

CLIENT_KEY = "gw-client-key"
TEXT = "The quick brown fox jumps over the lazy dog"
TEXTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta theta", "iota"]


@dataclass(frozen=True)
class Backend:
    """One embedding upstream: the client's model id, its vectors' size, a `dimensions` it takes, and how
    the upstream's request names that size."""

    model: str
    size: int
    fake: str
    dimensions_field: str
    takes_tokens: bool = False
    reports_usage: bool = True


BACKENDS = {
    "openai": Backend("openai/text-embedding-3-small", 1536, "openai", "dimensions", takes_tokens=True),
    "azure": Backend("azure/text-embedding-3-small", 1536, "azure", "dimensions", takes_tokens=True),
    "mistral": Backend("mistral/codestral-embed", 1536, "mistral", "output_dimension"),
    "gemini": Backend(
        "gemini/gemini-embedding-001", 3072, "gemini", "outputDimensionality", reports_usage=False
    ),
    "titan": Backend("bedrock/amazon.titan-embed-text-v2:0", 1024, "bedrock", "dimensions"),
    "cohere": Backend("bedrock/cohere.embed-v4:0", 1536, "bedrock", "output_dimension"),
    "echo": Backend("echo/echo-1", 256, "", "dimensions", takes_tokens=True),
}
#: What every backend takes as `dimensions` (Titan v2 and Cohere v4 take only a few sizes).
DIMENSIONS = 256


@dataclass
class Stack:
    url: str
    fakes: dict[str, Any]
    records: list[UsageRecord] = field(default_factory=list)

    def client(self, key: str = CLIENT_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)

    def record(self, request_id: str | None) -> UsageRecord:
        """The usage record of one request: hooks run once the answer is sent, so it may come a little
        after the client has its answer."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [record for record in self.records if record.request_id == request_id]
            if found:
                (record,) = found
                return record
            time.sleep(0.01)
        raise AssertionError(f"no usage record for {request_id}")

    def seen(self, backend: Backend) -> list[dict[str, Any]]:
        """The bodies the backend's fake received, in order (nothing for echo)."""
        fake = self.fakes.get(backend.fake)
        if fake is None:
            return []
        if isinstance(fake, FakeBedrock):
            return [recorded.body for recorded in fake.requests]
        return [recorded["body"] for recorded in fake.requests]


@pytest.fixture(scope="module")
def tiktoken_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tiktoken's cl100k_base from the test extra's copy, for LangChain and the gateway alike."""
    folder = seed_tiktoken_cache(tmp_path_factory.mktemp("tiktoken"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(folder))
        embedding_module._token_encoding.cache_clear()
        yield folder
    embedding_module._token_encoding.cache_clear()


@pytest.fixture(scope="module")
def stack(tiktoken_cache: Path) -> Iterator[Stack]:
    fakes: dict[str, Any] = {
        "openai": FakeOpenAI(),
        "azure": FakeOpenAI("azure"),
        "mistral": FakeOpenAI("mistral"),
        "groq": FakeOpenAI("groq"),
        "gemini": fake_gemini.FakeGemini(),
        "bedrock": FakeBedrock(),
    }
    records: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        records.append(record)

    with (
        serve(fakes["openai"].app()) as openai_url,
        serve(fakes["azure"].app()) as azure_url,
        serve(fakes["mistral"].app()) as mistral_url,
        serve(fakes["groq"].app()) as groq_url,
        serve(fakes["gemini"].app()) as gemini_url,
        serve(fakes["bedrock"].app) as bedrock_url,
    ):
        providers = {
            "openai": OpenAIProvider(api_key=KEY, base_url=openai_url + "/v1"),
            "azure": AzureOpenAIProvider(api_key=KEY, base_url=azure_url, api_version="2024-10-21"),
            "mistral": MistralProvider(api_key=KEY, base_url=mistral_url + "/v1"),
            "groq": GroqProvider(api_key=KEY, base_url=groq_url + "/v1"),
            "gemini": GeminiProvider(api_key=fake_gemini.KEY, base_url=gemini_url),
            "bedrock": BedrockProvider(
                base_url=bedrock_url,
                region="us-east-1",
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            ),
            "echo": EchoProvider(),
        }
        quick = Policy(max_attempts=2, backoff=0.01)
        routes = {
            "embed": "openai/text-embedding-3-small",
            "fallback": Route(["openai/text-embedding-3-small", "gemini/gemini-embedding-001"], quick),
            "retry": Route(["openai/text-embedding-3-small"], quick),
            "mixed": ["groq/llama-3.3-70b", "echo/echo-1"],
        }
        gateway = Gateway(
            providers=providers,
            routes=routes,
            auth=api_keys([CLIENT_KEY]),
            on_usage=on_usage,
            policy=Policy(max_attempts=1),
        )
        with serve(gateway) as url:
            yield Stack(url, fakes, records)


@pytest.fixture
def gateway(stack: Stack) -> Stack:
    for fake in stack.fakes.values():
        fake.requests.clear()
        if hasattr(fake, "faults"):
            fake.faults.clear()
    stack.records.clear()
    return stack


def close(vector: list[float], expected: list[float]) -> bool:
    """Equal as float32: a base64 answer carries float32, which is what OpenAI's vectors are."""
    return len(vector) == len(expected) and all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(vector, expected, strict=True)
    )


def words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


# -- the official SDK against every backend ------------------------------------------------------------------

PARAMS = pytest.mark.parametrize("name", list(BACKENDS))


@PARAMS
def test_default_call_asks_base64_and_gets_the_exact_vector(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    raw = gateway.client().embeddings.with_raw_response.create(model=backend.model, input=TEXT)
    wire = json.loads(raw.text)
    assert isinstance(wire["data"][0]["embedding"], str)  # the SDK asked for base64 and got it
    result = raw.parse()
    assert result.model == backend.model
    assert close(result.data[0].embedding, echo_embedding(TEXT, backend.size))
    assert (
        result.usage.prompt_tokens
        == result.usage.total_tokens
        == (words([TEXT]) if backend.reports_usage else 0)
    )
    for body in gateway.seen(backend):
        assert "encoding_format" not in body  # upstreams are asked for floats; the gateway encodes


@PARAMS
def test_float_answers_match_openais_schema(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    raw = gateway.client().embeddings.with_raw_response.create(
        model=backend.model, input=[TEXT], encoding_format="float"
    )
    body = json.loads(raw.text)
    errors = list(embeddings_validator("CreateEmbeddingResponse").iter_errors(body))
    assert not errors, errors[0].message
    assert body["data"][0]["embedding"] == pytest.approx(echo_embedding(TEXT, backend.size))
    assert raw.headers["x-llm-gateway-target"] == backend.model


@PARAMS
def test_base64_is_little_endian_float32_of_the_float_answer(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    client = gateway.client()
    floats = client.embeddings.create(model=backend.model, input=TEXT, encoding_format="float").data[0]
    raw = client.embeddings.with_raw_response.create(
        model=backend.model, input=TEXT, encoding_format="base64"
    )
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    assert len(base64.b64decode(encoded)) == 4 * backend.size
    assert decode_base64(encoded) == pytest.approx(floats.embedding, rel=1e-6, abs=1e-7)


@PARAMS
def test_dimensions_reach_the_upstream_in_its_own_words(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    result = gateway.client().embeddings.create(model=backend.model, input=TEXT, dimensions=DIMENSIONS)
    assert close(result.data[0].embedding, echo_embedding(TEXT, DIMENSIONS))
    for body in gateway.seen(backend):
        sent = body.get("requests", [body])[0] if name == "gemini" else body
        assert sent[backend.dimensions_field] == DIMENSIONS


@PARAMS
def test_a_list_comes_back_in_input_order(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    result = gateway.client().embeddings.create(model=backend.model, input=TEXTS, encoding_format="float")
    assert [item.index for item in result.data] == list(range(len(TEXTS)))
    for item, text in zip(result.data, TEXTS, strict=True):
        assert close(item.embedding, echo_embedding(text, backend.size))


@PARAMS
def test_token_arrays_pass_or_are_decoded_to_their_text(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    encoding = tiktoken.get_encoding("cl100k_base")
    tokens = [encoding.encode(text) for text in TEXTS[:2]]
    result = gateway.client().embeddings.create(model=backend.model, input=tokens, encoding_format="float")
    seen = gateway.seen(backend)
    if backend.takes_tokens:
        expected = [echo_embedding(array, backend.size) for array in tokens]
        assert all(body["input"] == tokens for body in seen)
    else:
        expected = [echo_embedding(text, backend.size) for text in TEXTS[:2]]
        assert seen and all(str(tokens[0][0]) not in json.dumps(body) for body in seen)
    assert [item.embedding for item in result.data] == [pytest.approx(vector) for vector in expected]


@PARAMS
def test_one_token_array_is_one_input(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    tokens = tiktoken.get_encoding("cl100k_base").encode(TEXT)
    result = gateway.client().embeddings.create(model=backend.model, input=tokens, encoding_format="float")
    assert len(result.data) == 1


@pytest.mark.parametrize("name", ["mistral", "gemini", "titan", "cohere"])
def test_token_arrays_without_tiktoken_are_a_400_naming_input(
    gateway: Stack, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = BACKENDS[name]
    monkeypatch.setattr(embedding_module, "_token_encoding", lambda: None)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=backend.model, input=[[9906, 1917]])
    assert caught.value.body["param"] == "input"
    assert "check_embedding_ctx_length=False" in caught.value.body["message"]
    assert gateway.seen(backend) == []


@pytest.mark.parametrize("name", ["openai", "gemini", "titan", "cohere", "echo"])
@pytest.mark.parametrize("empty", ["", [], [""], ["ok", ""], [[]]])
def test_empty_input_is_a_400_naming_input_and_never_sent(gateway: Stack, name: str, empty: Any) -> None:
    backend = BACKENDS[name]
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=backend.model, input=empty)
    assert str(caught.value.body["param"]).startswith("input")
    assert gateway.seen(backend) == []


@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_stream_true_is_a_400_naming_stream_and_never_sent(gateway: Stack, name: str) -> None:
    """Regression: `stream: true` was accepted, recorded as a streamed call and forwarded to the OpenAI family
    (which refuses it); embeddings have no stream."""
    backend = BACKENDS[name]
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=backend.model, input="hello", extra_body={"stream": True})
    assert caught.value.body["param"] == "stream"  # type: ignore[index]
    assert "not streamed" in caught.value.body["message"]  # type: ignore[index]
    assert gateway.seen(backend) == []


def test_more_than_2048_inputs_is_a_400(gateway: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model="openai/text-embedding-3-small", input=["x"] * 2049)
    assert caught.value.body["param"] == "input"
    assert gateway.fakes["openai"].requests == []


# -- translation details seen at the upstream ----------------------------------------------------------------


def test_gemini_batches_by_100_in_order(gateway: Stack) -> None:
    texts = [f"text number {i}" for i in range(150)]
    result = gateway.client().embeddings.create(
        model="gemini/text-embedding-004",
        input=texts,
        encoding_format="float",
        extra_body={"task_type": "CLUSTERING"},
    )
    assert [item.embedding for item in result.data] == [pytest.approx(echo_embedding(t, 768)) for t in texts]
    requests = gateway.fakes["gemini"].requests
    assert sorted(len(request["body"]["requests"]) for request in requests) == [50, 100]
    assert all(
        request["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents" for request in requests
    )
    assert {item["taskType"] for request in requests for item in request["body"]["requests"]} == {
        "CLUSTERING"
    }


def test_gemini_one_text_uses_embed_content_with_the_task_of_input_type(gateway: Stack) -> None:
    gateway.client().embeddings.create(
        model="gemini/gemini-embedding-001", input="where is it?", extra_body={"input_type": "search_query"}
    )
    (request,) = gateway.fakes["gemini"].requests
    assert request["path"] == "/v1beta/models/gemini-embedding-001:embedContent"
    assert request["body"] == {
        "content": {"parts": [{"text": "where is it?"}]},
        "taskType": "RETRIEVAL_QUERY",
    }


def test_cohere_batches_by_96_with_input_type(gateway: Stack) -> None:
    texts = [f"document {i}" for i in range(100)]
    result = gateway.client().embeddings.create(
        model="bedrock/cohere.embed-english-v3", input=texts, encoding_format="float"
    )
    assert [item.embedding for item in result.data] == [pytest.approx(echo_embedding(t, 1024)) for t in texts]
    bodies = [recorded.body for recorded in gateway.fakes["bedrock"].requests]
    assert [len(body["texts"]) for body in bodies] == [96, 4]
    assert {body["input_type"] for body in bodies} == {"search_document"}
    assert result.usage.prompt_tokens == words(texts)  # from Bedrock's token-count header


def test_titan_calls_once_per_text_and_sums_the_tokens(gateway: Stack) -> None:
    result = gateway.client().embeddings.create(model="bedrock/amazon.titan-embed-text-v2:0", input=TEXTS)
    bodies = sorted(
        (recorded.body for recorded in gateway.fakes["bedrock"].requests), key=lambda b: b["inputText"]
    )
    assert bodies == sorted(
        ({"inputText": text, "normalize": True} for text in TEXTS), key=lambda b: b["inputText"]
    )
    assert result.usage.prompt_tokens == words(TEXTS)


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [
        ("bedrock/amazon.titan-embed-text-v2:0", 300),
        ("bedrock/amazon.titan-embed-text-v1", 256),
        ("bedrock/cohere.embed-v4:0", 100),
        ("bedrock/cohere.embed-english-v3", 512),
    ],
)
def test_a_size_bedrock_lacks_is_a_400_naming_dimensions_before_any_call(
    gateway: Stack, model: str, dimensions: int
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=model, input=TEXT, dimensions=dimensions)
    assert caught.value.body["param"] == "dimensions"
    assert gateway.fakes["bedrock"].requests == []


def test_upstream_refusals_keep_their_status(gateway: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model="openai/text-embedding-ada-002", input=TEXT, dimensions=256)
    assert "does not support specifying dimensions" in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        gateway.client().embeddings.create(model="openai/no-such-embedder", input=TEXT)


def test_mistral_gets_only_its_fields(gateway: Stack) -> None:
    gateway.client().embeddings.create(
        model="mistral/codestral-embed",
        input=TEXT,
        dimensions=256,
        user="u-1",
        extra_body={"input_type": "search_query"},
    )
    (body,) = gateway.seen(BACKENDS["mistral"])
    assert body == {"model": "codestral-embed", "input": [TEXT], "output_dimension": 256}


def test_openai_gets_user_and_unknown_fields_but_not_the_gateways_own(gateway: Stack) -> None:
    gateway.client().embeddings.create(
        model="openai/text-embedding-3-small",
        input=TEXT,
        user="u-1",
        extra_body={"input_type": "search_query", "task_type": "CLUSTERING"},
    )
    (body,) = gateway.seen(BACKENDS["openai"])
    assert body == {"model": "text-embedding-3-small", "input": [TEXT], "user": "u-1"}


# -- the pipeline: usage, routes, retries, fallback, auth, errors ----------------------------------------


def test_usage_record_names_the_embeddings_endpoint(gateway: Stack) -> None:
    raw = gateway.client().embeddings.with_raw_response.create(
        model="bedrock/amazon.titan-embed-text-v2:0", input=TEXTS[:2]
    )
    record = gateway.record(raw.headers["x-request-id"])
    assert record.endpoint == "embeddings"
    assert record.status == 200 and record.stream is False
    assert record.target == "bedrock/amazon.titan-embed-text-v2:0" and record.provider == "bedrock"
    assert record.usage == {"prompt_tokens": words(TEXTS[:2]), "total_tokens": words(TEXTS[:2])}


def test_route_alias(gateway: Stack) -> None:
    raw = gateway.client().embeddings.with_raw_response.create(model="embed", input=TEXT)
    assert raw.parse().model == "openai/text-embedding-3-small"
    assert gateway.record(raw.headers["x-request-id"]).model == "embed"


def test_retry_on_the_same_target(gateway: Stack) -> None:
    gateway.fakes["openai"].faults.append(Fault(status=503, body={"error": {"message": "busy"}}))
    raw = gateway.client().embeddings.with_raw_response.create(model="retry", input=TEXT)
    assert raw.headers["x-llm-gateway-attempts"] == "2"
    assert len(gateway.fakes["openai"].requests) == 2


def test_fallback_to_another_provider(gateway: Stack) -> None:
    faults = [Fault(status=503, body={"error": {"message": "busy"}}) for _ in range(2)]
    gateway.fakes["openai"].faults.extend(faults)
    raw = gateway.client().embeddings.with_raw_response.create(model="fallback", input=TEXT)
    assert raw.headers["x-llm-gateway-provider"] == "gemini"
    assert close(raw.parse().data[0].embedding, echo_embedding(TEXT, 3072))
    record = gateway.record(raw.headers["x-request-id"])
    assert record.target == "gemini/gemini-embedding-001" and record.status == 200


def test_a_route_skips_targets_that_do_not_embed(gateway: Stack) -> None:
    raw = gateway.client().embeddings.with_raw_response.create(model="mixed", input=TEXT)
    assert raw.headers["x-llm-gateway-provider"] == "echo"
    assert gateway.fakes["groq"].requests == []


def test_failure_is_recorded_with_its_status(gateway: Stack) -> None:
    gateway.fakes["openai"].faults.append(Fault(status=500, body={"error": {"message": "boom"}}))
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().embeddings.create(model="openai/text-embedding-3-small", input=TEXT)
    record = gateway.record(caught.value.response.headers["x-request-id"])
    assert record.endpoint == "embeddings" and record.status == 502 and record.usage is None


def test_wrong_key_is_a_401(gateway: Stack) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.client("nope").embeddings.create(model="echo/echo-1", input=TEXT)


def test_unknown_model_is_a_404(gateway: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().embeddings.create(model="nowhere/model", input=TEXT)
    assert caught.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    "model", ["groq/llama-3.3-70b", "gemini/gemini-3-flash", "bedrock/anthropic.claude-x"]
)
def test_a_model_without_embeddings_is_a_400_never_sent(gateway: Stack, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=model, input=TEXT)
    assert caught.value.body["code"] == "model_not_supported"
    assert caught.value.body["param"] == "model"
    assert all(not fake.requests for fake in gateway.fakes.values())


def test_a_model_id_cannot_steer_the_upstream_url(gateway: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model="gemini/../embedding", input=TEXT)
    assert caught.value.body["code"] == "invalid_model_id"
    assert gateway.fakes["gemini"].requests == []
    with pytest.raises(openai.NotFoundError):  # one path segment, whatever it holds: no query, no method
        gateway.client().embeddings.create(model="gemini/x:embedding?alt=1#f", input=TEXT)
    (request,) = gateway.fakes["gemini"].requests
    assert request["path"] == "/v1beta/models/x:embedding%3Falt=1%23f:embedContent" and request["query"] == ""


def test_gemini_model_listing_includes_its_embedding_models(gateway: Stack) -> None:
    ids = [model.id for model in gateway.client().models.list()]
    assert "gemini/gemini-embedding-001" in ids and "gemini/gemini-3-flash" in ids


# -- LangChain: OpenAIEmbeddings pointed at the gateway, unchanged ------------------------------------------


@PARAMS
def test_langchain_openai_embeddings_default(gateway: Stack, name: str) -> None:
    """LangChain's defaults: it tokenizes with tiktoken and sends token arrays (base64 answers)."""
    backend = BACKENDS[name]
    embedder = OpenAIEmbeddings(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, model=backend.model)  # type: ignore[arg-type]
    documents = embedder.embed_documents(TEXTS[:3])
    query = embedder.embed_query(TEXT)
    encoding = tiktoken.get_encoding("cl100k_base")
    sent = (
        [encoding.encode(text) for text in [*TEXTS[:3], TEXT]] if backend.takes_tokens else [*TEXTS[:3], TEXT]
    )
    expected = [echo_embedding(item, backend.size) for item in sent]
    assert [*documents, query] == [pytest.approx(vector, rel=1e-6, abs=1e-7) for vector in expected]


@PARAMS
def test_langchain_openai_embeddings_with_text_and_dimensions(gateway: Stack, name: str) -> None:
    backend = BACKENDS[name]
    embedder = OpenAIEmbeddings(
        base_url=gateway.url + "/v1",
        api_key=CLIENT_KEY,  # type: ignore[arg-type]
        model=backend.model,
        dimensions=DIMENSIONS,
        check_embedding_ctx_length=False,
    )
    documents = embedder.embed_documents(TEXTS)
    assert documents == [
        pytest.approx(echo_embedding(text, DIMENSIONS), rel=1e-6, abs=1e-7) for text in TEXTS
    ]
