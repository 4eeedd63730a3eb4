"""Real Node clients → gateway (uvicorn, loopback) → the Mistral fake: openai-node's `runTools` and the
Vercel AI SDK's tool loop, the clients issue 12 was reported against; and the Vercel AI SDK's tool loop with
reasoning on against the Anthropic, Bedrock and Gemini fakes (issue 19).

The clients are pinned in tests/node (package.json and its lockfile); the first test of a session runs
`npm ci` there when node_modules is missing or older than the lockfile. Without node and npm the tests
skip, except under CI (`CI` set), where they fail: a skip must never pass CI silently.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from asgi_llm_gateway import Gateway
from asgi_llm_gateway.policy import Policy
from asgi_llm_gateway.providers import MistralProvider
from tests.fakes.openai import KEY, FakeOpenAI
from tests.support.requirements import NODE_DIR, node_packages
from tests.support.server import serve
from tests.support.upstreams import Upstreams, gateway_over_every_upstream

MODEL = "mistral/mistral-large-latest"


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` executable, with tests/node's pinned packages installed (`npm ci`, once)."""
    return node_packages("the Node client tests need node and npm")


class Stack:
    def __init__(self, fake: FakeOpenAI, url: str) -> None:
        self.fake = fake
        self.url = url


@pytest.fixture(scope="module")
def mistral() -> Iterator[Stack]:
    fake = FakeOpenAI(flavour="mistral")
    with serve(fake.app()) as upstream:
        gateway = Gateway(
            providers={"mistral": MistralProvider(api_key=KEY, base_url=upstream + "/v1")},
            policy=Policy(max_attempts=1),
        )
        with serve(gateway) as url:
            yield Stack(fake, url + "/v1")


def run(node: str, script: str, *args: str) -> dict[str, Any]:
    """Run one of tests/node's scripts; its last stdout line is its JSON result."""
    result = subprocess.run(
        [node, script, *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"{script} printed nothing (exit {result.returncode}):\n{result.stderr[-3000:]}")
    output: dict[str, Any] = json.loads(lines[-1])
    if result.returncode != 0 or "error" in output:
        pytest.fail(f"node {script} {' '.join(args)}:\n{output.get('error')}\n{result.stderr[-3000:]}")
    return output


def assert_tool_loop_reached_the_upstream(stack: Stack, requests_before: int) -> None:
    """Two upstream requests: the one answered with a tool call, and the one carrying its result back
    (the id Mistral gave the call, the tool's output) that was answered with text."""
    requests = stack.fake.requests[requests_before:]
    assert len(requests) == 2, [r["body"]["messages"] for r in requests]
    call_id = requests[1]["body"]["messages"][1]["tool_calls"][0]["id"]
    result = requests[1]["body"]["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == call_id
    assert "cats are great" in result["content"]


@pytest.mark.parametrize("mode", ["", "stream"], ids=["plain", "streamed"])
def test_mistral_tool_calls_come_back_with_type_function_for_openai_node_run_tools(
    node: str, mistral: Stack, mode: str
) -> None:
    """Regression (issue 12): without `type` on Mistral's tool calls, openai-node's `runTools` threw
    before running the tool ("Currently only `function` tool calls are supported; Received `undefined`";
    streamed: "tool call snapshot missing `type`")."""
    before = len(mistral.fake.requests)
    output = run(node, "openai_run_tools.mjs", mistral.url, MODEL, mode)
    assert output["calls"] == [{"q": "please lookup cats"}]
    assert output["final"] == "Tool results: cats are great"
    assert output["completions"] == 2
    assert_tool_loop_reached_the_upstream(mistral, before)


@pytest.mark.parametrize(
    ("provider", "mode"),
    [("openai-chat", ""), ("openai-compatible", ""), ("openai-chat", "stream")],
    ids=["openai-chat", "openai-compatible", "openai-chat-streamed"],
)
def test_mistral_tool_calls_come_back_with_type_function_for_the_vercel_ai_sdk_tool_loop(
    node: str, mistral: Stack, provider: str, mode: str
) -> None:
    """Regression (issue 12): `generateText` with an executing tool, through `@ai-sdk/openai`'s `.chat()`,
    failed with "Invalid JSON response" (its schema requires `type: "function"`). The compatible provider
    and streaming, which tolerate a missing type, are checked alongside."""
    before = len(mistral.fake.requests)
    output = run(node, "ai_sdk_tool_loop.mjs", mistral.url, MODEL, provider, mode)
    assert output["calls"] == [{"q": "please lookup cats"}]
    assert output["final"] == "Tool results: cats are great"
    assert output["steps"] == 2
    assert_tool_loop_reached_the_upstream(mistral, before)


# -- reasoning: a tool loop with thinking on, through the Vercel AI SDK -------------------------------------


@pytest.fixture(scope="module")
def reasoning_upstreams() -> Iterator[Upstreams]:
    with gateway_over_every_upstream({"client": "developer"}, {}) as served:
        yield served


@pytest.mark.parametrize("mode", ["", "stream"], ids=["plain", "streamed"])
@pytest.mark.parametrize("provider", ["openai-chat", "openai-compatible"])
@pytest.mark.parametrize(
    ("fake", "model"),
    [
        ("claude", "claude/claude-haiku-4-5"),
        ("bedrock", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("gemini", "gemini/gemini-3-flash"),
    ],
    ids=["anthropic", "bedrock", "gemini"],
)
def test_vercel_ai_sdk_tool_loop_with_reasoning_keeps_its_thinking(
    node: str, reasoning_upstreams: Upstreams, fake: str, model: str, provider: str, mode: str
) -> None:
    """The SDK drops `reasoning_details` (measured here: `echoed`), so the provider's store of reasoning by
    tool-call id puts the signed reasoning back; the fakes reject a tool loop with thinking on without it."""
    upstream = reasoning_upstreams.fakes[fake]
    before = len(upstream.requests)
    output = run(node, "ai_sdk_reasoning_loop.mjs", reasoning_upstreams.url + "/v1", model, provider, mode)
    assert output["calls"] == [{"city": "Paris"}] and output["steps"] == 2
    assert all("reasoning_details" not in keys for keys in output["echoed"])
    requests = upstream.requests[before:]
    assert len(requests) == 2
    last = requests[-1]
    body = last["body"] if isinstance(last, dict) else last.body
    text = json.dumps(body)
    if fake == "claude":
        assert (
            body["thinking"]["type"] == "enabled" and body["messages"][1]["content"][0]["type"] == "thinking"
        )
    elif fake == "bedrock":
        assert "thinking" in body["additionalModelRequestFields"]
        assert "reasoningContent" in body["messages"][1]["content"][0]
    else:
        assert '"thoughtSignature"' in text
    assert "gw1." not in text  # only unsealed reasoning reaches an upstream
