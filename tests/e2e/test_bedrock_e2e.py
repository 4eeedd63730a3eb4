"""OpenAI SDK → gateway (uvicorn, loopback) → fake Bedrock Runtime (uvicorn, loopback).

The fake verifies every SigV4 signature and validates every body against botocore's service model, so each
answer here also proves the gateway signed and shaped a request Bedrock would accept. Model ids carry a `:`
on purpose: that is where a wrongly encoded canonical path breaks the signature.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import BedrockProvider
from tests.fakes.bedrock import ACCESS_KEY, API_KEY, SECRET_KEY, FakeBedrock, isolate_aws_environment
from tests.support.server import serve
from tests.support.tools import WEATHER

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PNG = "data:image/png;base64," + (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
READ: Any = {
    "type": "function",
    "function": {
        "name": "read_file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}


class Stack:
    def __init__(self, fake: FakeBedrock, client: openai.OpenAI) -> None:
        self.fake = fake
        self.client = client

    @property
    def last(self) -> dict[str, Any]:
        return self.fake.requests[-1].body


def gateway_for(provider: BedrockProvider) -> Gateway:
    return Gateway(providers={"bedrock": provider}, policy=Policy(max_attempts=1))


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    fake = FakeBedrock()
    with serve(fake.app) as upstream:
        provider = BedrockProvider(
            base_url=upstream,
            region="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        with serve(gateway_for(provider)) as url, openai_client(url) as client:
            yield Stack(fake, client)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty AWS environment; returns the folder of its config and credentials files."""
    return isolate_aws_environment(monkeypatch, tmp_path)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- answers -----------------------------------------------------------------------------------------------


def test_text(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
        max_completion_tokens=100,
        temperature=1.5,
    )
    assert completion.model == f"bedrock/{CLAUDE}"
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 4)
    assert stack.fake.requests[-1].model == CLAUDE
    assert stack.last["system"] == [{"text": "Be brief."}]
    assert stack.last["inferenceConfig"] == {"maxTokens": 100, "temperature": 1.0}


def test_stream_with_usage(stack: Stack) -> None:
    chunks = list(
        stack.client.chat.completions.create(
            model=f"bedrock/{CLAUDE}",
            messages=user("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 3 + 5
    assert stack.fake.requests[-1].operation == "converse-stream"


def test_cache_tokens_are_summed_into_prompt_tokens(stack: Stack) -> None:
    completion = stack.client.chat.completions.create(model="bedrock/fake.cached", messages=user("hi"))
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 1 + 100 + 20
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stop_and_length(stack: Stack) -> None:
    stopped = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=user("a b STOP c"), stop="STOP"
    )
    assert stopped.choices[0].message.content == "You said: a b "
    cut = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=user("a b c d"), max_tokens=3
    )
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("You said: a", "length")


def test_image_as_data_url(stack: Stack) -> None:
    content: Any = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    completion = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "You said: what is this"
    image = stack.last["messages"][0]["content"][1]["image"]
    assert image == {"format": "png", "source": {"bytes": PNG.split(",", 1)[1]}}


def test_image_by_url_is_a_400_before_any_upstream_call(stack: Stack) -> None:
    before = len(stack.fake.requests)
    content: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(
            model=f"bedrock/{CLAUDE}", messages=[{"role": "user", "content": content}]
        )
    assert caught.value.param == "messages[0].content[0].image_url.url"
    assert len(stack.fake.requests) == before


# -- tools -------------------------------------------------------------------------------------------------


def test_tool_calls_and_the_loop_back(stack: Stack) -> None:
    messages: list[Any] = user("use get_weather please")
    first = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=messages, tools=[WEATHER, READ]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "use get_weather please"}  # type: ignore[union-attr]

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    second = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}", messages=messages, tools=[WEATHER, READ]
    )
    assert second.choices[0].message.content == "Tool results: 18C"
    assert second.choices[0].finish_reason == "stop"


def test_named_tool_choice_and_foreign_tool_call_ids(stack: Stack) -> None:
    forced = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=user("the motd"),
        tools=[WEATHER, READ],
        tool_choice={"type": "function", "function": {"name": "read_file"}},
    )
    [call] = forced.choices[0].message.tool_calls or []
    assert call.function.name == "read_file"  # type: ignore[union-attr]
    assert stack.last["toolConfig"]["toolChoice"] == {"tool": {"name": "read_file"}}
    # History from another provider may carry ids Bedrock refuses; calls and results are rewritten alike.
    foreign = "call|" + "x" * 80
    messages: Any = [
        {"role": "user", "content": "the motd"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": foreign, "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": foreign, "content": "Welcome"},
    ]
    answer = stack.client.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=messages, tools=[READ])
    assert answer.choices[0].message.content == "Tool results: Welcome"
    sent = stack.last["messages"][1]["content"][0]["toolUse"]["toolUseId"]
    assert len(sent) <= 64 and "|" not in sent


def test_streamed_tool_calls(stack: Stack) -> None:
    tools = [
        WEATHER,
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    stream = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=user("get_weather and get_time for Oslo"),
        tools=tools,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                call["name"] += (delta.function.name if delta.function else None) or ""
                call["arguments"] += (delta.function.arguments if delta.function else None) or ""
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "get_weather and get_time for Oslo"}
    assert json.loads(calls[1]["arguments"]) == {"text": "get_weather and get_time for Oslo"}
    assert all(call["id"].startswith("tooluse_") for call in calls.values())


def test_an_unanswered_tool_call_is_rejected_upstream_as_a_400(stack: Stack) -> None:
    messages: Any = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "never mind"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        stack.client.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=messages, tools=[WEATHER])
    assert "ValidationException" in caught.value.message
    assert "without toolResult blocks" in caught.value.message


# -- structured output and reasoning -----------------------------------------------------------------------


def test_json_schema_uses_native_structured_output(stack: Stack) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = stack.client.chat.completions.create(
        model=f"bedrock/{CLAUDE}",
        messages=user("Ada Lovelace"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"name": "Ada Lovelace", "age": 2}
    assert "outputConfig" in stack.last and "toolConfig" not in stack.last


def test_json_object_uses_a_forced_tool_and_answers_in_content(stack: Stack) -> None:
    for stream in (False, True):
        if stream:
            chunks = list(
                stack.client.chat.completions.create(
                    model=f"bedrock/{CLAUDE}",
                    messages=user("a JSON object please"),
                    response_format={"type": "json_object"},
                    stream=True,
                )
            )
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
            assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
        else:
            completion = stack.client.chat.completions.create(
                model=f"bedrock/{CLAUDE}",
                messages=user("a JSON object please"),
                response_format={"type": "json_object"},
            )
            content = completion.choices[0].message.content or ""
            finish = completion.choices[0].finish_reason
            assert completion.choices[0].message.tool_calls is None
        assert json.loads(content) == {"text": "a JSON object please"}
        assert finish == "stop"
        assert stack.last["toolConfig"]["toolChoice"] == {"any": {}}


def test_reasoning_effort_returns_reasoning_content(stack: Stack) -> None:
    model = "bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0"
    completion = stack.client.chat.completions.create(
        model=model, messages=user("why"), reasoning_effort="low"
    )
    message = completion.choices[0].message
    assert message.content == "You said: why"
    assert (message.model_extra or {})["reasoning_content"] == "Thinking about: why"
    assert stack.last["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    chunks = list(
        stack.client.chat.completions.create(
            model=model, messages=user("why"), reasoning_effort="low", stream=True
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
    )
    assert reasoning == "Thinking about: why"


# -- failures ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        ("ThrottlingException", openai.RateLimitError),
        ("ValidationException", openai.BadRequestError),
        ("ResourceNotFoundException", openai.NotFoundError),
        ("AccessDeniedException", openai.InternalServerError),
        ("ModelNotReadyException", openai.InternalServerError),
        ("ModelTimeoutException", openai.InternalServerError),
    ],
)
def test_upstream_exceptions(stack: Stack, exception: str, error: type[openai.APIStatusError]) -> None:
    with pytest.raises(error) as caught:
        stack.client.chat.completions.create(model=f"bedrock/error.{exception}", messages=user("hi"))
    assert f"bedrock: {exception}: " in caught.value.message


def test_exceptions_before_a_stream_starts_are_http_errors(stack: Stack) -> None:
    with pytest.raises(openai.RateLimitError):
        list(
            stack.client.chat.completions.create(
                model="bedrock/error.ThrottlingException", messages=user("hi"), stream=True
            )
        )


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("stream-error.throttlingException", "ThrottlingException: Too many tokens"),
        ("stream-cut", "ended inside a frame"),
        ("stream-bad-crc", "hecksum mismatch"),
        ("stream-no-metadata", "ended before it was complete"),
    ],
)
def test_broken_streams_end_in_an_error_event(stack: Stack, model: str, text: str) -> None:
    stream = stack.client.chat.completions.create(
        model=f"bedrock/{model}", messages=user("one two three"), stream=True
    )
    received: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received  # it failed after the first byte, as a mid-stream error event
    assert text in caught.value.message


# -- credentials -------------------------------------------------------------------------------------------


def run(provider: BedrockProvider, fake: FakeBedrock, upstream: str, stream: bool = False) -> str:
    with serve(gateway_for(provider)) as url, openai_client(url) as client:
        if stream:
            chunks = client.chat.completions.create(
                model=f"bedrock/{CLAUDE}", messages=user("hi"), stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        completion = client.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=user("hi"))
        return completion.choices[0].message.content or ""


def test_credentials_from_a_profile_as_the_aws_cli_reads_them(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIADEFAULTDEFAULT00\naws_secret_access_key = wrong\n\n"
        "[work]\naws_access_key_id = AKIAWORKWORKWORK0000\naws_secret_access_key = work-secret\n"
    )
    (aws_env / "config").write_text("[default]\nregion = us-east-1\n\n[profile work]\nregion = eu-west-1\n")
    fake = FakeBedrock(credentials={"AKIAWORKWORKWORK0000": ("work-secret", None)}, region="eu-west-1")
    with serve(fake.app) as upstream:
        assert run(BedrockProvider(base_url=upstream, profile="work"), fake, upstream) == "You said: hi"
        monkeypatch.setenv("AWS_PROFILE", "work")
        assert run(BedrockProvider(base_url=upstream), fake, upstream, stream=True) == "You said: hi"
    assert {r.headers["authorization"].split("/")[0] for r in fake.requests} == {
        "AWS4-HMAC-SHA256 Credential=AKIAWORKWORKWORK0000"
    }


def test_refreshed_credentials_are_used(aws_env: Path) -> None:
    """A credential_process whose credentials are always due for refresh: each request gets new ones."""
    script = aws_env / "creds.py"
    script.write_text(
        "import datetime, json, pathlib, sys\n"
        "counter = pathlib.Path(sys.argv[1])\n"
        "n = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(n))\n"
        "expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'ASIAREFRESH{n:09d}',\n"
        "                  'SecretAccessKey': f'secret-{n}', 'SessionToken': f'token-{n}',\n"
        "                  'Expiration': expires.isoformat()}))\n"
    )
    process = f"{sys.executable} {script} {aws_env / 'n'}"
    (aws_env / "config").write_text(
        f"[profile rotating]\nregion = us-east-1\ncredential_process = {process}\n"
    )
    fake = FakeBedrock(
        credentials={f"ASIAREFRESH{n:09d}": (f"secret-{n}", f"token-{n}") for n in range(1, 6)}
    )
    with serve(fake.app) as upstream:
        provider = BedrockProvider(base_url=upstream, profile="rotating")
        with serve(gateway_for(provider)) as url, openai_client(url) as client:
            for _ in range(2):
                client.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=user("hi"))
    keys = [r.headers["authorization"].split("/")[0].rsplit("=", 1)[1] for r in fake.requests]
    assert (
        len(keys) == 2 and len(set(keys)) == 2
    )  # a new key for the second request: the refresh was honoured


def test_a_bedrock_api_key_from_the_environment(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    fake = FakeBedrock(credentials={})
    with serve(fake.app) as upstream:
        assert run(BedrockProvider(base_url=upstream), fake, upstream, stream=True) == "You said: hi"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in fake.requests[-1].headers


def test_a_wrong_api_key_is_a_502_not_the_clients_fault(aws_env: Path) -> None:
    fake = FakeBedrock()
    with serve(fake.app) as upstream:
        provider = BedrockProvider(api_key="ABSK-wrong", base_url=upstream, region="us-east-1")
        with (
            serve(gateway_for(provider)) as url,
            openai_client(url) as client,
            pytest.raises(openai.InternalServerError) as caught,
        ):
            client.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=user("hi"))
    assert caught.value.status_code == 502
    assert "ABSK-wrong" not in caught.value.message
    assert "UnrecognizedClientException" in caught.value.message
