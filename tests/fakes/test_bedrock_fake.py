"""The fake Bedrock is checked against boto3, the official client: what boto3 sends must be accepted, what the
real service rejects must be rejected, and boto3 must read its answers and event streams."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from tests.fakes import anthropic as claude
from tests.fakes.bedrock import (
    ACCESS_KEY,
    API_KEY,
    REGION,
    SECRET_KEY,
    FakeBedrock,
    claude_name,
    encode_frame,
    event_frame,
    isolate_aws_environment,
    verify_sigv4,
)
from tests.support.server import serve

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # the ':' exercises the double-encoded canonical path
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

# The test vector of shared/docs/providers/bedrock.md §7.2.
VECTOR = bytes.fromhex(
    "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c7461"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74"
    "7970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b22"
    "74657874223a224869227d7d1f944657"
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, profiles or API keys from the machine running the tests."""
    isolate_aws_environment(monkeypatch, tmp_path)


@pytest.fixture
def fake() -> FakeBedrock:
    return FakeBedrock()


@pytest.fixture
def url(fake: FakeBedrock, aws_env: None) -> Iterator[str]:
    with serve(fake.app) as base:
        yield base


def client(
    url: str, *, secret: str = SECRET_KEY, token: str | None = None, validate: bool = True, **kw: Any
) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate, **kw),
    )


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def test_frames_are_encoded_as_the_documented_test_vector() -> None:
    assert event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}) == VECTOR
    assert len(encode_frame({":message-type": "event"}, b"")) == 16 + 1 + 13 + 1 + 2 + 5


def test_boto3_converse_is_signed_validated_and_answered(url: str, fake: FakeBedrock) -> None:
    response = client(url).converse(
        modelId=MODEL,
        system=[{"text": "Be brief."}],
        messages=[
            {
                "role": "user",
                "content": [{"text": "hello there"}, {"image": {"format": "png", "source": {"bytes": PNG}}}],
            }
        ],
        inferenceConfig={"maxTokens": 50, "temperature": 0.2},
    )
    assert response["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": "You said: hello there"}],
    }
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {"inputTokens": 4, "outputTokens": 4, "totalTokens": 8}
    [recorded] = fake.requests
    assert recorded.model == MODEL
    assert (
        recorded.body["messages"][0]["content"][1]["image"]["source"]["bytes"]
        == base64.b64encode(PNG).decode()
    )


def test_boto3_converse_with_a_forced_tool(url: str) -> None:
    tool = {
        "toolSpec": {
            "name": "get_weather",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
        }
    }
    response = client(url).converse(
        modelId=MODEL, messages=user("Paris"), toolConfig={"tools": [tool], "toolChoice": {"any": {}}}
    )
    [block] = response["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "get_weather"
    assert block["toolUse"]["input"] == {"city": "Paris"}
    assert response["stopReason"] == "tool_use"


def test_boto3_reads_the_event_stream(url: str) -> None:
    tool = {
        "toolSpec": {
            "name": "lookup",
            "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}},
        }
    }
    response = client(url).converse_stream(
        modelId=MODEL,
        messages=user("please lookup cats"),
        toolConfig={"tools": [tool]},
        additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 2048}},
    )
    events = list(response["stream"])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    assert "contentBlockStart" in kinds
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    assert arguments == '{"q": "please lookup cats"}'
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    assert events[-1]["metadata"]["usage"]["totalTokens"] > 0


def test_boto3_sees_a_mid_stream_exception(url: str) -> None:
    response = client(url).converse_stream(modelId="stream-error.throttlingException", messages=user("hi"))
    with pytest.raises(botocore.exceptions.EventStreamError) as caught:
        list(response["stream"])
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_boto3_gets_the_modelled_exception(url: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url).converse(modelId="error.ThrottlingException", messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_a_wrong_secret_is_rejected(url: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url, secret="not-the-secret").converse(modelId=MODEL, messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_temporary_credentials_need_their_session_token(url: str, fake: FakeBedrock) -> None:
    fake.add_credentials("ASIATESTTESTTESTTEST", "temporary-secret", "the-session-token")
    good = boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="ASIATESTTESTTESTTEST",
        aws_secret_access_key="temporary-secret",
        aws_session_token="the-session-token",
    )
    assert good.converse(modelId=MODEL, messages=user("hi"))["stopReason"] == "end_turn"
    bad = boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="ASIATESTTESTTESTTEST",
        aws_secret_access_key="temporary-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        bad.converse(modelId=MODEL, messages=user("hi"))
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_bedrock_api_keys_are_accepted_as_bearer_tokens(url: str) -> None:
    # boto3 sends API keys only over https, so this one request is made by hand.
    body = {"messages": user("hi")}
    path = f"{url}/model/{quote(MODEL, safe='')}/converse"
    good = httpx.post(path, json=body, headers={"authorization": f"Bearer {API_KEY}"})
    assert good.status_code == 200
    assert good.json()["output"]["message"]["content"] == [{"text": "You said: hi"}]
    wrong = httpx.post(path, json=body, headers={"authorization": "Bearer ABSK-not-a-key"})
    assert wrong.status_code == 403
    assert wrong.headers["x-amzn-errortype"].startswith("UnrecognizedClientException:")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"messages": user("hi"), "inferenceConfig": {"temperature": 1.5}}, "above the maximum 1"),
        ({"messages": user("hi"), "inferenceConfig": {"maxTokens": 0}}, "valid min value: 1"),
        ({"messages": user("   ")}, "is blank"),
        (
            {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]},
            "must start with a user message",
        ),
        ({"messages": [*user("a"), *user("b")]}, "alternate between user and assistant"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"text": "a", "image": {"format": "png", "source": {"bytes": PNG}}}],
                    }
                ]
            },
            "tagged union",
        ),
        (
            {
                "messages": [
                    *user("a"),
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}],
                    },
                    {
                        "role": "user",
                        "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "x"}]}}],
                    },
                ]
            },
            "toolConfig field must be defined",
        ),
        (
            {
                "messages": user("a"),
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "bad name", "inputSchema": {"json": {"type": "object"}}}}]
                },
            },
            "does not match [a-zA-Z0-9_-]+",
        ),
        (
            {
                "messages": [
                    *user("a"),
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}],
                    },
                    {
                        "role": "user",
                        "content": [{"toolResult": {"toolUseId": "t2", "content": [{"text": "x"}]}}],
                    },
                ],
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
                },
            },
            "must answer the toolUse blocks",
        ),
    ],
)
def test_what_the_service_rejects_is_rejected(url: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url, validate=False).converse(modelId=MODEL, **kwargs)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def signed_post(url: str, body: bytes) -> httpx.Response:
    """A request boto3 would refuse to send, signed the way boto3 signs."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    target = f"{url}/model/{quote(MODEL, safe='')}/converse"
    request = AWSRequest(method="POST", url=target, data=body, headers={"content-type": "application/json"})
    SigV4Auth(ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, None), "bedrock", REGION).add_auth(request)
    return httpx.post(target, content=body, headers=dict(request.headers.items()))


def test_unknown_fields_and_bad_json_are_rejected(url: str) -> None:
    unknown = signed_post(url, b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}], "bogus": 1}')
    assert unknown.status_code == 400
    assert unknown.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert 'Unknown parameter in input: "bogus"' in unknown.json()["message"]
    assert signed_post(url, b"{not json").status_code == 400
    assert (
        signed_post(url, b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}').status_code == 200
    )


def test_a_stale_signature_is_rejected() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    request = AWSRequest(
        method="POST", url="http://h:1/model/m%3A0/converse", data=b"{}", headers={"host": "h:1"}
    )
    SigV4Auth(ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, None), "bedrock", REGION).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    check = {
        "method": "POST",
        "raw_path": "/model/m%3A0/converse",
        "query": "",
        "headers": headers,
        "body": b"{}",
        "credentials": {ACCESS_KEY: (SECRET_KEY, None)},
        "region": REGION,
    }
    assert verify_sigv4(**check) is None
    # What is signed must be exactly what is sent: the path signed with '%3A' but received with ':' fails.
    assert verify_sigv4(**{**check, "raw_path": "/model/m:0/converse"})[0] == "InvalidSignatureException"  # type: ignore[index]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=6)
    assert verify_sigv4(**check, now=later) == (
        "InvalidSignatureException",
        "Signature expired or not yet valid.",
    )
    assert verify_sigv4(**{**check, "body": b"{ }"})[0] == "InvalidSignatureException"  # type: ignore[index]
    assert verify_sigv4(**{**check, "region": "eu-west-1"})[0] == "InvalidSignatureException"  # type: ignore[index]


# -- InvokeModel (Claude's Messages body) and CountTokens ---------------------------------------------------

CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def messages_body(text: str = "hi there", **extra: Any) -> dict[str, Any]:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def test_boto3_invoke_model_answers_an_anthropic_message(url: str, fake: FakeBedrock) -> None:
    answer = client(url).invoke_model(modelId=MODEL, body=json.dumps(messages_body()))
    message = json.loads(answer["body"].read())
    assert message["type"] == "message" and message["content"] == [{"type": "text", "text": "hi there"}]
    assert fake.requests[-1].operation == "invoke" and fake.requests[-1].model == MODEL


def test_boto3_reads_the_invoke_stream_of_anthropic_events(url: str) -> None:
    answer = client(url).invoke_model_with_response_stream(
        modelId=MODEL, body=json.dumps(messages_body("a b"))
    )
    events = [json.loads(part["chunk"]["bytes"]) for part in answer["body"]]
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 2


def test_boto3_sees_an_invoke_stream_exception(url: str) -> None:
    answer = client(url).invoke_model_with_response_stream(
        modelId=MODEL, body=json.dumps(messages_body("FAIL STREAM throttlingException"))
    )
    with pytest.raises(botocore.exceptions.EventStreamError) as caught:
        list(answer["body"])
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_the_anthropic_sdk_for_bedrock_reads_the_fake() -> None:
    fake = FakeBedrock()
    version = {"anthropic_version": "bedrock-2023-05-31"}
    with serve(fake.app) as base:
        sdk = anthropic.AnthropicBedrock(
            aws_access_key=ACCESS_KEY,
            aws_secret_key=SECRET_KEY,
            aws_region=REGION,
            base_url=base,
            max_retries=0,
        )
        message = sdk.messages.create(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "hello"}], extra_body=version
        )
        with sdk.messages.stream(
            model=CLAUDE,
            max_tokens=100,
            messages=[{"role": "user", "content": "one two"}],
            extra_body=version,
        ) as stream:
            text = "".join(stream.text_stream)
        # This SDK's own default version is one Bedrock's ARN-versioned Claude models refuse.
        with pytest.raises(anthropic.BadRequestError):
            sdk.messages.create(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "hello" and text == "one two"
    assert fake.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (MODEL, messages_body(model=CLAUDE), "extraneous key [model]"),
        (MODEL, messages_body(stream=True), "extraneous key [stream]"),
        (MODEL, messages_body(service_tier="auto"), "extraneous key [service_tier]"),
        (MODEL, messages_body(container="c"), "extraneous key [container]"),
        (MODEL, {k: v for k, v in messages_body().items() if k != "anthropic_version"}, "anthropic_version"),
        (MODEL, messages_body(anthropic_version="2023-06-01"), "anthropic_version"),
        (MODEL, messages_body(anthropic_beta=["claude-code-20250219"]), "invalid beta flag"),
        (MODEL, messages_body(context_management={"edits": []}), "context_management"),
        (
            MODEL,
            messages_body(
                system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral", "scope": "g"}}]
            ),
            "extraneous key [scope]",
        ),
        (MODEL, messages_body(temperature=1.5), "temperature"),  # then the Messages rules apply
        ("amazon.nova-pro-v1:0", messages_body(), "Claude models only"),
    ],
)
def test_what_invoke_model_rejects_is_rejected(
    url: str, model: str, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url).invoke_model(modelId=model, body=json.dumps(body))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_context_management_is_accepted_with_its_beta(url: str) -> None:
    body = messages_body(
        anthropic_beta=["context-management-2025-06-27"],
        context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
    )
    assert (
        client(url).invoke_model(modelId=MODEL, body=json.dumps(body))["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )


def test_invoke_model_checks_signatures_too(url: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url, secret="not-the-secret").invoke_model(modelId=MODEL, body=json.dumps(messages_body()))
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_boto3_count_tokens_for_both_inputs(url: str) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    invoke = client(url).count_tokens(
        modelId=CLAUDE, input={"invokeModel": {"body": json.dumps(messages_body("a b c")).encode()}}
    )
    with_tools = client(url).count_tokens(
        modelId=CLAUDE,
        input={"invokeModel": {"body": json.dumps(messages_body("a b c", tools=tools)).encode()}},
    )
    converse = client(url).count_tokens(
        modelId=CLAUDE, input={"converse": {"messages": user("a b c"), "system": [{"text": "be brief"}]}}
    )
    assert 0 < invoke["inputTokens"] < with_tools["inputTokens"]
    assert converse["inputTokens"] == 5


@pytest.mark.parametrize(
    ("model", "counted", "message"),
    [
        (MODEL, {"converse": {"messages": user("hi")}}, "doesn't support counting tokens"),  # a profile
        ("amazon.nova-pro-v1:0", {"converse": {"messages": user("hi")}}, "doesn't support counting tokens"),
        (
            CLAUDE,
            {"invokeModel": {"body": json.dumps({"max_tokens": 5, "messages": []}).encode()}},
            "anthropic_version",
        ),
        (
            CLAUDE,
            {"converse": {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}},
            "user message",
        ),
    ],
)
def test_what_count_tokens_rejects_is_rejected(
    url: str, model: str, counted: dict[str, Any], message: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(url).count_tokens(modelId=model, input=counted)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


# -- embeddings ----------------------------------------------------------------------------------------------


def invoke(url: str, model: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    answer = client(url).invoke_model(modelId=model, body=json.dumps(body).encode())
    return json.loads(answer["body"].read()), answer["ResponseMetadata"]["HTTPHeaders"]


def test_boto3_invokes_titan_and_cohere_embeddings(url: str) -> None:
    from asgi_llm_gateway.providers.echo import echo_embedding

    titan, _ = invoke(url, "amazon.titan-embed-text-v2:0", {"inputText": "a b", "dimensions": 256})
    assert titan == {"embedding": echo_embedding("a b", 256), "inputTextTokenCount": 2}
    cohere, headers = invoke(
        url,
        "cohere.embed-english-v3",
        {"texts": ["a", "b c"], "input_type": "search_query", "embedding_types": ["float"]},
    )
    assert cohere["embeddings"] == {"float": [echo_embedding("a", 1024), echo_embedding("b c", 1024)]}
    assert headers["x-amzn-bedrock-input-token-count"] == "3"


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("amazon.titan-embed-text-v2:0", {"inputText": ""}, "minLength"),
        ("amazon.titan-embed-text-v2:0", {"inputText": "a", "dimensions": 300}, "dimensions"),
        ("amazon.titan-embed-text-v1", {"inputText": "a", "dimensions": 256}, "extraneous key [dimensions]"),
        ("amazon.titan-embed-text-v2:0", {"inputText": "a", "user": "u"}, "extraneous key [user]"),
        ("cohere.embed-english-v3", {"texts": ["a"]}, "input_type"),
        ("cohere.embed-english-v3", {"texts": ["a"] * 97, "input_type": "search_document"}, "maxItems: 96"),
        (
            "cohere.embed-english-v3",
            {"texts": ["a"], "input_type": "search_document", "output_dimension": 256},
            "extraneous",
        ),
        (
            "cohere.embed-v4:0",
            {"texts": ["a"], "input_type": "clustering", "output_dimension": 100},
            "output_dimension",
        ),
    ],
)
def test_embeddings_reject_what_the_service_rejects(
    url: str, model: str, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        invoke(url, model, body)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


# -- signed reasoning and cache points (issue 19) ------------------------------------------------------------


CLAUDE_NAME = claude_name(MODEL) or MODEL


def reasoning_loop(url: str, signature: str | None = None) -> Any:
    """A Claude turn with thinking on that calls a tool, then the tool loop with its reasoning sent back
    (with `signature` instead of the real one, when given; without any reasoning when it is "")."""
    sdk = client(url)
    tools = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}
    options: Any = {
        "modelId": MODEL,
        "toolConfig": tools,
        "inferenceConfig": {"maxTokens": 4000},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    }
    question = user("get_weather please")
    first = sdk.converse(messages=question, **options)
    content = first["output"]["message"]["content"]
    if signature == "":
        content = [block for block in content if "reasoningContent" not in block]
    elif signature is not None:
        content[0]["reasoningContent"]["reasoningText"]["signature"] = signature
    call = next(block["toolUse"] for block in content if "toolUse" in block)
    result = {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"text": "Sunny"}]}}
    messages = [*question, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]
    return sdk.converse(messages=messages, **options)


def test_claude_reasoning_sent_back_with_its_signature_is_accepted(url: str) -> None:
    assert reasoning_loop(url)["stopReason"] == "end_turn"


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (claude.sign_thinking(CLAUDE_NAME, "Thinking about: get_weather please"), "Invalid `signature`"),
        ("", "must start with a thinking block"),
    ],
    ids=["anthropic-apis-signature", "reasoning-dropped"],
)
def test_foreign_or_missing_reasoning_is_rejected(url: str, signature: str, message: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError, match=message):
        reasoning_loop(url, signature)


def test_cache_points_write_then_read_the_prefix(url: str, fake: FakeBedrock) -> None:
    system = [{"text": "Rules. " * 40}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    first = client(url).converse(modelId=MODEL, system=system, messages=user("one"))
    second = client(url).converse(modelId=MODEL, system=system, messages=user("two"))
    assert (first["usage"]["cacheWriteInputTokens"], first["usage"]["cacheReadInputTokens"]) == (40, 0)
    assert second["usage"]["cacheReadInputTokens"] == 40
    assert (fake.cache.reads, fake.cache.writes) == (40, 40)
    shorter_first = [{"text": "A."}, {"cachePoint": {"type": "default"}}, *system]
    with pytest.raises(botocore.exceptions.ClientError, match="longer ttl cannot follow"):
        client(url).converse(modelId=MODEL, system=shorter_first, messages=user("three"))
