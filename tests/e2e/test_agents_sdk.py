"""The OpenAI Agents SDK as a real client: a function-tool agent run over `OpenAIResponsesModel` and over
`OpenAIChatCompletionsModel`, each given an `AsyncOpenAI(base_url=…, api_key=…)` pointed at a target.

The agent has one tool, `get_secret_word(key)`, that looks the word up in a dict; the model must call it to
learn the word, and the final answer must hold it. Then the conversation goes on in a second run, continued
the two ways the SDK offers: `previous_response_id` (Responses only: the server keeps the history) and
`result.to_input_list()` (the client sends the history again), streamed this time.

Which base URL is set by TARGETS below, one (API, target) pair per run:
- ("chat", "gateway-echo"): the gateway's /v1/chat/completions with its default offline `echo` provider
  (it calls the tools whose names the user's text mentions, `get_secret_word(key=notes)`, then answers
  "Tool results: …").
- ("responses", "recording-fake"): tests/support/codex.py's RecordingResponses, a scripted Responses API
  that keeps its responses for `previous_response_id`.

Tracing is disabled in every run, and `loopback_only` fails a test whose process resolves or connects to
anything but 127.0.0.1 while it runs: nothing leaves the machine.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
)
from openai import AsyncOpenAI

from asgi_llm_gateway import Gateway, api_keys
from tests.support.codex import KEY as FAKE_KEY
from tests.support.codex import RecordingResponses, ToolThenAnswer
from tests.support.server import serve

SECRET_WORD = "PELICAN-42"
SECRETS = {"notes": SECRET_WORD, "backup": SECRET_WORD}
TOOL = "get_secret_word"
PROMPT = f"What is the secret word? Look it up with {TOOL}(key=notes)."
# Run 2 asks about another key: the echo model calls the tool again, and a call with other arguments gets
# another id from it (the same call would get the same id, which the SDK's chat converter then merges with
# run 1's call into a malformed history).
FOLLOW_UP = f"Is the backup the same? Check with {TOOL}(key=backup) and say the word again."
INSTRUCTIONS = "You answer questions about secret words. Use the tool to look them up."
GATEWAY_KEY = "sk-gw-agents-sdk-developer"

# The (API, target) pairs the agent runs against, one test run each. "chat" runs go through
# OpenAIChatCompletionsModel (POST <base>/chat/completions), "responses" runs through OpenAIResponsesModel
# (POST <base>/responses). When the gateway serves /v1/responses, add ("responses", "gateway-<provider>")
# pairs in front of the recording fake (a gateway mounted before tests/fakes/<provider>.py, as in
# test_claude_code.py's gateway_in_front_of) and extend `target` below.
TARGETS = (
    ("chat", "gateway-echo"),
    ("responses", "recording-fake"),
    ("responses", "gateway-echo"),
    ("responses", "gateway-openai"),
    ("responses", "gateway-anthropic"),
    ("responses", "gateway-gemini"),
)
pytestmark = pytest.mark.anyio
CONTINUATIONS = {"chat": ("input_list",), "responses": ("previous_response_id", "input_list")}


@dataclass
class Target:
    """Where the agent's client is pointed: base URL (ending in /v1), model and key; `sent` collects the
    JSON bodies the SDK posts there (an httpx event hook on the client), in order."""

    api: str
    base_url: str
    model: str
    key: str
    sent: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def client(self) -> Iterator[AsyncOpenAI]:
        async def record(request: httpx.Request) -> None:
            if request.method == "POST":
                self.sent.append(json.loads(request.content))

        http = httpx.AsyncClient(event_hooks={"request": [record]}, timeout=30)
        yield AsyncOpenAI(base_url=self.base_url, api_key=self.key, http_client=http, max_retries=0)

    def model_for(self, client: AsyncOpenAI) -> OpenAIResponsesModel | OpenAIChatCompletionsModel:
        if self.api == "responses":
            return OpenAIResponsesModel(model=self.model, openai_client=client)
        return OpenAIChatCompletionsModel(model=self.model, openai_client=client)


@pytest.fixture(params=TARGETS, ids=["-".join(pair) for pair in TARGETS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    api, name = request.param
    if name == "gateway-echo":
        gateway = Gateway(auth=api_keys({GATEWAY_KEY: "agents-sdk"}))  # no providers: the echo provider
        with serve(gateway) as url:
            yield Target(api, url + "/v1", "echo/echo-1", GATEWAY_KEY)
    elif name == "recording-fake":
        fake = RecordingResponses(script=ToolThenAnswer(tool=TOOL, arguments={"key": "notes"}))
        with serve(fake) as url:
            yield Target(api, url + "/v1", "gpt-4.1", FAKE_KEY)
    elif name.startswith("gateway-"):
        from tests.e2e.test_claude_code import GATEWAY_KEY as KEY
        from tests.e2e.test_claude_code import GATEWAY_MODELS, gateway_in_front_of

        provider = name.removeprefix("gateway-")
        with gateway_in_front_of(provider) as mounted:
            yield Target(api, mounted.base_url + "/v1", GATEWAY_MODELS[provider], KEY)
    else:
        raise ValueError(f"no target {name!r}")


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any name lookup or connection of this process to anything but loopback while the test runs
    (the SDK's tracing exporter, were it on, would post to OpenAI)."""
    refused: list[str] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            refused.append(f"connect {address}")
            raise OSError(f"test: no connections beyond loopback ({address})")
        return connect(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # httpx passes IDNA-encoded bytes
        if name not in ("127.0.0.1", "::1", "localhost", None):
            refused.append(f"resolve {name}")
            raise OSError(f"test: no name lookups ({name})")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return refused


def secret_agent(target: Target, client: AsyncOpenAI, looked_up: list[str]) -> Agent[Any]:
    @function_tool
    def get_secret_word(key: str) -> str:
        """Look up the secret word stored under `key`."""
        looked_up.append(key)
        return f"The secret word is {SECRETS.get(key, 'unknown')}."

    return Agent(
        name="Secret keeper",
        instructions=INSTRUCTIONS,
        model=target.model_for(client),
        tools=[get_secret_word],
    )


RUN_CONFIG = RunConfig(tracing_disabled=True, workflow_name="asgi-llm-gateway e2e")


def calls_and_outputs(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The tool names called and the tool outputs carried in one request body, either API."""
    if "messages" in body:
        messages = body["messages"]
        calls = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
        return calls, [str(m.get("content")) for m in messages if m.get("role") == "tool"]
    items = body["input"] if isinstance(body.get("input"), list) else []
    calls = [i["name"] for i in items if i.get("type") == "function_call"]
    return calls, [str(i.get("output")) for i in items if i.get("type") == "function_call_output"]


def assert_well_formed(body: dict[str, Any]) -> None:
    """Every tool output in a request answers a call made earlier in it, and call ids are not reused."""
    if "messages" in body:
        calls = [c["id"] for m in body["messages"] for c in m.get("tool_calls") or []]
        answered = [m["tool_call_id"] for m in body["messages"] if m.get("role") == "tool"]
        for position, message in enumerate(body["messages"]):
            if message.get("role") == "tool":
                before = body["messages"][position - 1]
                assert before.get("role") in ("assistant", "tool"), body["messages"]
    else:
        items = body["input"] if isinstance(body.get("input"), list) else []
        calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
        answered = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    assert len(set(calls)) == len(calls), body
    if not body.get("previous_response_id"):  # with it, the calls answered may be in the stored history
        assert set(answered) <= set(calls), body


async def test_a_function_tool_agent_answers_with_what_only_its_tool_knows(
    target: Target, loopback_only: list[str]
) -> None:
    """Turn 1: the model calls get_secret_word(key=notes); the SDK runs it and sends the output back;
    turn 2: the answer, which holds the secret word. Not streamed."""
    looked_up: list[str] = []
    with target.client() as client:
        result = await Runner.run(
            secret_agent(target, client, looked_up), PROMPT, run_config=RUN_CONFIG, max_turns=4
        )
        await client.close()
    assert looked_up == ["notes"]
    assert SECRET_WORD in str(result.final_output)
    assert len(result.raw_responses) == 2 and len(target.sent) == 2
    first, second = (calls_and_outputs(body) for body in target.sent)
    assert first == ([], [])
    assert second[0] == [TOOL] and SECRET_WORD in second[1][0]
    assert loopback_only == []


async def test_the_conversation_goes_on_in_a_second_streamed_run(
    target: Target, loopback_only: list[str]
) -> None:
    """Run 1 as above; run 2 (streamed) continues it: with `previous_response_id` the SDK sends only the
    new user message and the server supplies the history; with `to_input_list()` it sends it all again.
    Either way the second answer holds the secret word, and the tool result of run 1 was part of the
    conversation run 2 sent or pointed to."""
    for continuation in CONTINUATIONS[target.api]:
        target.sent.clear()
        looked_up: list[str] = []
        with target.client() as client:
            agent = secret_agent(target, client, looked_up)
            first = await Runner.run(agent, PROMPT, run_config=RUN_CONFIG, max_turns=4)
            assert SECRET_WORD in str(first.final_output), continuation
            sent_in_run_1 = len(target.sent)
            if continuation == "previous_response_id":
                assert first.last_response_id is not None
                second = Runner.run_streamed(
                    agent,
                    FOLLOW_UP,
                    previous_response_id=first.last_response_id,
                    run_config=RUN_CONFIG,
                    max_turns=4,
                )
            else:
                history = [*first.to_input_list(), {"role": "user", "content": FOLLOW_UP}]
                second = Runner.run_streamed(agent, history, run_config=RUN_CONFIG, max_turns=4)
            deltas = [event async for event in second.stream_events() if event.type == "raw_response_event"]
            await client.close()
        assert deltas, continuation
        assert SECRET_WORD in str(second.final_output), (continuation, second.final_output)
        opening = target.sent[sent_in_run_1]
        assert opening.get("stream") is True, continuation
        if continuation == "previous_response_id":
            assert opening["previous_response_id"] == first.last_response_id
            assert calls_and_outputs(opening) == ([], [])  # the history stays on the server
        else:
            calls, outputs = calls_and_outputs(opening)
            assert TOOL in calls and any(SECRET_WORD in output for output in outputs), continuation
        assert looked_up[0] == "notes"
        for body in target.sent:
            assert_well_formed(body)
    assert loopback_only == []
