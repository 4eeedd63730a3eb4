"""Claude Code itself as a client: the real `claude -p` (the pinned `@anthropic-ai/claude-code` in
tests/node) pointed by ANTHROPIC_BASE_URL at a base URL, in a session where it calls its `Read` tool on a
file and answers with what only that file holds.

Which base URL is set by TARGETS below: the recording Anthropic fake directly (tests/support/claude_code.py),
which proves the harness and the tool turn; and the gateway, mounted in Starlette, in front of the
Anthropic, OpenAI, Gemini and Bedrock fakes, each speaking its provider's native API.

The first test of a session runs `npm ci` in tests/node when node_modules is missing or older than the
lockfile. Without node and npm the tests skip, except under CI (`CI` set), where they fail: a skip must
never pass CI silently. Runs are offline (see `run_claude`); each takes about a second.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from asgi_llm_gateway import Gateway, api_keys
from asgi_llm_gateway.providers import AnthropicProvider, BedrockProvider, GeminiProvider, OpenAIProvider
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import bedrock as fake_bedrock
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.support.claude_code import (
    FIXTURES,
    KEY,
    MODEL,
    NODE_DIR,
    PROMPT,
    SECRET_WORD,
    SESSIONS,
    ReadThenAnswer,
    RecordingAnthropic,
    capture,
    claude_executable,
    result_text,
    run_claude,
    shape,
    tool_results,
)
from tests.support.requirements import node_packages, required
from tests.support.server import serve

# The base URLs Claude Code is pointed at, one test run each. "recording-fake": ANTHROPIC_BASE_URL is the
# recording fake itself, no gateway in between (proves the harness). "gateway-<provider>": the gateway
# mounted at /llm in a Starlette app, with its own client keys, in front of tests/fakes/<provider>.py; the
# model is a gateway model id on that provider, so Claude Code works against any provider.
TARGETS = ("recording-fake", "gateway-anthropic", "gateway-openai", "gateway-gemini", "gateway-bedrock")
GATEWAY_KEY = "sk-gw-claude-code-developer"
GATEWAY_MODELS = {
    "anthropic": "claude/claude-sonnet-4-5",
    "openai": "openai/gpt-4.1",
    "gemini": "gemini/gemini-3-flash",
    "bedrock": "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
}


@pytest.fixture(scope="session")
def claude() -> Path:
    """The native `claude` binary of tests/node's pinned package (`npm ci` there first, once, if needed)."""
    node_packages("the Claude Code tests run the npm package")
    executable = claude_executable()
    if executable is None:
        required(f"@anthropic-ai/claude-code installed no native binary for this platform under {NODE_DIR}")
    assert executable is not None
    return executable


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """A project directory holding notes.txt, whose secret word Claude Code can only learn by reading it."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    path = workdir / "notes.txt"
    path.write_text(f"The secret word is {SECRET_WORD}.\n")
    return path


@dataclass
class Target:
    """Where Claude Code is pointed: base URL, model and key, and the texts of the tool results that
    reached the model behind it (to prove the tool turn went all the way)."""

    base_url: str
    model: str
    key: str
    upstream_tool_results: Callable[[], list[str]]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, notes: Path) -> Iterator[Target]:
    if request.param == "recording-fake":
        fake = RecordingAnthropic(script=ReadThenAnswer(str(notes)))

        def seen() -> list[str]:
            return [result_text(result) for body in fake.messages() for result in tool_results(body)]

        with serve(fake) as url:
            yield Target(url, MODEL, KEY, seen)
    elif request.param.startswith("gateway-"):
        with gateway_in_front_of(request.param.removeprefix("gateway-")) as target:
            yield target
    else:
        raise ValueError(f"no target {request.param!r}")


@contextmanager
def gateway_in_front_of(provider: str) -> Iterator[Target]:
    """The gateway, mounted in Starlette at /llm, in front of one provider's fake; the fake's recorded
    bodies after the first turn are where the tool result (and so the file's secret word) must arrive."""
    fake: Any
    if provider == "anthropic":
        fake = fake_anthropic.FakeAnthropic()
        app, bodies = fake, lambda: [r.body for r in fake.requests]
    elif provider == "openai":
        fake = fake_openai.FakeOpenAI()
        app, bodies = fake.app(), lambda: [r["body"] for r in fake.requests]
    elif provider == "gemini":
        fake = fake_gemini.FakeGemini()
        app, bodies = fake.app(), lambda: [r["body"] for r in fake.requests]
    else:
        fake = fake_bedrock.FakeBedrock()
        app, bodies = fake.app, lambda: [r.body for r in fake.requests]
    with serve(app) as upstream:
        providers = {
            "anthropic": lambda: {"claude": AnthropicProvider(api_key=fake_anthropic.KEY, base_url=upstream)},
            "openai": lambda: {"openai": OpenAIProvider(api_key=fake_openai.KEY, base_url=upstream + "/v1")},
            "gemini": lambda: {"gemini": GeminiProvider(api_key=fake_gemini.KEY, base_url=upstream)},
            "bedrock": lambda: {
                "bedrock": BedrockProvider(
                    base_url=upstream,
                    region="us-east-1",
                    aws_access_key_id=fake_bedrock.ACCESS_KEY,
                    aws_secret_access_key=fake_bedrock.SECRET_KEY,
                )
            },
        }[provider]()
        gateway = Gateway(providers, auth=api_keys({GATEWAY_KEY: "developer"}))

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with gateway:  # mounted apps get no lifespan: the host closes the gateway
                yield

        host = Starlette(routes=[Mount("/llm", app=gateway)], lifespan=lifespan)
        with serve(host) as url:
            yield Target(
                url + "/llm", GATEWAY_MODELS[provider], GATEWAY_KEY, lambda: [json.dumps(b) for b in bodies()]
            )


@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_claude_code_reads_a_file_with_its_tool_and_answers_from_it(
    claude: Path, target: Target, notes: Path, bearer: bool
) -> None:
    """Turn 1: the model asks for `Read(file_path=notes.txt)`; Claude Code runs it without a prompt
    (pre-approved) and sends the result back; turn 2: the answer, which holds the file's secret word."""
    result = run_claude(
        target.base_url,
        PROMPT.format(path=notes),
        notes.parent,
        target.model,
        key=target.key,
        bearer=bearer,
        executable=claude,
    )
    assert result.returncode == 0 and result.output is not None, result.describe()
    assert result.output["is_error"] is False, result.describe()
    assert result.output["num_turns"] == 2, result.describe()
    assert result.output["permission_denials"] == [], result.describe()
    assert SECRET_WORD in result.text, result.describe()
    assert any(SECRET_WORD in text for text in target.upstream_tool_results()), result.describe()


@pytest.mark.parametrize(("model", "name"), SESSIONS, ids=[name for _, name in SESSIONS])
def test_the_fixture_is_what_the_pinned_claude_code_sends(claude: Path, model: str | None, name: str) -> None:
    """tests/fixtures/claude_code/ has the shape of what the pinned version sends today (paths, headers,
    betas, body keys, roles and blocks, tools). After a version bump: python -m tests.support.claude_code"""
    recorded = json.loads((FIXTURES / name).read_text())
    assert shape(capture(model)) == shape(recorded), "regenerate: python -m tests.support.claude_code"


def test_what_claude_code_sends_to_a_gateway() -> None:
    """The facts of the captured sessions that the /v1/messages door has to handle (no node needed)."""
    for _, name in SESSIONS:
        session = json.loads((FIXTURES / name).read_text())
        first, second = [r for r in session["requests"] if r["method"] == "POST"]
        for request in (first, second):
            assert request["path"] == "/v1/messages?beta=true"
            assert request["headers"]["anthropic-version"] == "2023-06-01"
            assert request["headers"]["x-api-key"] == "<redacted>"
            betas = set(request["headers"]["anthropic-beta"].split(","))
            assert {"claude-code-20250219", "interleaved-thinking-2025-05-14", "effort-2025-11-24"} <= betas
            assert {"context-management-2025-06-27", "mid-conversation-system-2026-04-07"} <= betas
            body = request["body"]
            assert body["stream"] is True
            assert body["thinking"] == {"type": "adaptive"}
            assert body["output_config"] == {"effort": "high"}
            assert body["context_management"]["edits"] == [{"type": "clear_thinking_20251015", "keep": "all"}]
            roles = [m["role"] for m in body["messages"]]
            assert roles[:2] == ["user", "system"]  # role "system" between turns
            assert "Read" in [t["name"] for t in body["tools"]] and len(body["tools"]) > 12
        # The tool turn replays the signed thinking block the model gave, before its text and tool_use.
        assistant = second["body"]["messages"][2]
        assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use"]
        assert assistant["content"][0]["signature"] == first["reply"]["content"][0]["signature"]
        result = second["body"]["messages"][3]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == assistant["content"][2]["id"]


def test_the_recording_fake_answers_the_anthropic_sdk_streamed_and_not(notes: Path) -> None:
    """Claude Code streams; the fake's other path (a whole message, as after a stream fails) and its
    stream are both checked with the official SDK, which reassembles thinking, text and tool_use."""
    import anthropic

    fake = RecordingAnthropic(script=ReadThenAnswer(str(notes)))
    tools = [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}]
    request: Any = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Read notes.txt"}],
        "tools": tools,
        "thinking": {"type": "adaptive"},
    }
    with serve(fake) as url, anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0) as client:
        whole = client.messages.create(**request)
        with client.messages.stream(**request) as stream:
            streamed = stream.get_final_message()
        count = client.messages.count_tokens(model=MODEL, messages=request["messages"])
        models = client.models.list()
    for message in (whole.model_dump(), streamed.model_dump()):
        assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
        assert message["stop_reason"] == "tool_use"
        assert message["content"][0]["signature"] == fake.requests[1]["reply"]["content"][0]["signature"]
        assert message["content"][2]["input"] == {"file_path": str(notes)}
    assert count.input_tokens > 0 and MODEL in [m.id for m in models]
    assert fake.calls()[:3] == ["POST /v1/messages", "POST /v1/messages", "POST /v1/messages/count_tokens"]
