"""Codex CLI itself as a client: the real `codex exec` (the native binary of the pinned `@openai/codex` in
tests/node) with a custom Responses model provider whose `base_url` is a target, in a session where it runs
its shell tool (`exec_command`) on `cat notes.txt` and answers with what only that file holds.

Which base URL is set by TARGETS below: the recording Responses fake directly (tests/support/codex.py),
which proves the harness and the tool turn, and the gateway in front of tests/fakes/<provider>.py (as in
test_claude_code.py), with a gateway model id: the fakes' echo model calls the tool the prompt spells out,
`exec_command(cmd=cat notes.txt)`, and answers with the tool's output.

A Codex user may also keep one of Codex's own model names and route it in the gateway: then Codex sends
another shape (its tools in an `additional_tools` item, the shell behind the freeform code-mode `exec`
tool), which a translated upstream gets as one-string functions; OWN_MODEL_ROUTES runs that through the
Anthropic and Gemini fakes (and an older own model, which sends plain function tools).

The first test of a session runs `npm ci` in tests/node when node_modules is missing or older than the
lockfile. Without node and npm the tests skip, except under CI (`CI` set), where they fail: a skip must
never pass CI silently. Runs are offline (see `run_codex`); each takes well under a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.codex import (
    EXEC_FUNCTION,
    FIXTURES,
    KEY,
    MODEL,
    NODE_DIR,
    OWN_MODEL,
    OWN_MODEL_PROMPTS,
    PROMPT,
    SECRET_WORD,
    SESSIONS,
    SHELL_TOOL,
    RecordingResponses,
    ToolThenAnswer,
    capture,
    codex_executable,
    input_items,
    offered_tools,
    output_text,
    run_codex,
    shape,
    stream_events,
    tool_outputs,
)
from tests.support.requirements import node_packages, required
from tests.support.server import serve
from tests.support.upstreams import gateway_over_every_upstream

# The base URLs Codex is pointed at (its provider's `base_url`, ending in /v1), one test run each.
# "recording-fake": the recording Responses fake itself, no gateway in between (proves the harness).
# "gateway-<provider>": the gateway mounted at /llm in Starlette in front of tests/fakes/<provider>.py
# (OpenAI natively over the Responses API; Anthropic and Gemini translated), a gateway model id.
TARGETS = ("recording-fake", "gateway-openai", "gateway-anthropic", "gateway-gemini")


@pytest.fixture(scope="session")
def codex() -> Path:
    """The native `codex` binary of tests/node's pinned package (`npm ci` there first, once, if needed)."""
    node_packages("the Codex tests run the npm package")
    executable = codex_executable()
    if executable is None:
        required(f"@openai/codex installed no native binary for this platform under {NODE_DIR}")
    assert executable is not None
    return executable


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """A project directory holding notes.txt, whose secret word Codex can only learn by reading it."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    path = workdir / "notes.txt"
    path.write_text(f"The secret word is {SECRET_WORD}.\n")
    return path


@dataclass
class Target:
    """Where Codex is pointed: base URL (ending in /v1), model and key, and the texts of the tool outputs
    that reached the model behind it (to prove the tool turn went all the way)."""

    base_url: str
    model: str
    key: str
    upstream_tool_results: Callable[[], list[str]]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, notes: Path) -> Iterator[Target]:
    if request.param == "recording-fake":
        fake = RecordingResponses()

        def seen() -> list[str]:
            return [
                output_text(item) for body in fake.responses() for item in tool_outputs(input_items(body))
            ]

        with serve(fake) as url:
            yield Target(url + "/v1", MODEL, KEY, seen)
    elif request.param.startswith("gateway-"):
        from tests.e2e.test_claude_code import GATEWAY_KEY, GATEWAY_MODELS, gateway_in_front_of

        provider = request.param.removeprefix("gateway-")
        with gateway_in_front_of(provider) as gateway:
            yield Target(
                gateway.base_url + "/v1", GATEWAY_MODELS[provider], GATEWAY_KEY, gateway.upstream_tool_results
            )
    else:
        raise ValueError(f"no target {request.param!r}")


def test_codex_runs_a_shell_command_with_its_tool_and_answers_from_it(
    codex: Path, target: Target, notes: Path
) -> None:
    """Turn 1: the model calls `exec_command` with `cat notes.txt`; Codex runs it without a prompt
    (approvals and sandbox bypassed in the temporary project) and sends the output back; turn 2: the
    answer, which holds the file's secret word."""
    result = run_codex(target.base_url, PROMPT, notes.parent, target.model, key=target.key, executable=codex)
    assert result.returncode == 0 and result.events, result.describe()
    assert not result.failed, result.describe()
    commands = result.items("command_execution")
    assert len(commands) == 1 and "cat notes.txt" in commands[0]["command"], result.describe()
    assert commands[0]["exit_code"] == 0 and SECRET_WORD in commands[0]["aggregated_output"]
    assert SECRET_WORD in result.text, result.describe()
    assert any(SECRET_WORD in text for text in target.upstream_tool_results()), result.describe()
    assert [e["type"] for e in result.events][-1] == "turn.completed", result.describe()


# (Codex's model name, the gateway target its route names, the prompt): Codex's own names, routed by the
# gateway (`routes`) to a translated provider. OWN_MODEL runs the shell through `exec`; gpt-5.1-codex, an
# older model Codex knows, sends exec_command as a function tool.
OWN_MODEL_ROUTES = {
    "anthropic": (OWN_MODEL, "claude/claude-sonnet-4-5", OWN_MODEL_PROMPTS["anthropic"]),
    "gemini": (OWN_MODEL, "gemini/gemini-3-flash", OWN_MODEL_PROMPTS["gemini"]),
    "anthropic-gpt-5.1-codex": ("gpt-5.1-codex", "claude/claude-sonnet-4-5", PROMPT),
}
ROUTED_KEY = "sk-gw-codex-developer"


def upstream_bodies(fake: Any) -> list[dict[str, Any]]:
    """The bodies a fake upstream was sent (the Anthropic fake records objects, the others dicts)."""
    return [r["body"] if isinstance(r, dict) else r.body for r in fake.requests]


def function_names(body: dict[str, Any]) -> list[str]:
    """The functions an Anthropic (`tools[].name`) or Gemini (`tools[].functionDeclarations[].name`) request
    offers."""
    tools = body.get("tools") or []
    return [t["name"] for t in tools if "name" in t] + [
        d["name"] for t in tools for d in t.get("functionDeclarations") or []
    ]


@pytest.mark.parametrize("route", OWN_MODEL_ROUTES)
def test_codex_with_its_own_model_name_routed_to_another_provider_runs_its_tool(
    codex: Path, notes: Path, route: str
) -> None:
    """Only the base URL changes: Codex keeps its own model name, the gateway routes it to Anthropic or
    Gemini. Turn 1: the model calls the shell (for OWN_MODEL: the freeform `exec` tool, which the upstream
    saw as the function `functions__exec` and Codex gets back as a custom_tool_call, with JavaScript that
    runs `cat notes.txt`); turn 2 carries the output up, and the answer holds the file's secret word."""
    model, routed, prompt = OWN_MODEL_ROUTES[route]
    provider = routed.partition("/")[0]
    with gateway_over_every_upstream({ROUTED_KEY: "developer"}, {model: routed}) as upstreams:
        result = run_codex(
            upstreams.url + "/v1", prompt, notes.parent, model, key=ROUTED_KEY, executable=codex
        )
        bodies = upstream_bodies(upstreams.fakes[provider])
    assert result.returncode == 0 and not result.failed, result.describe()
    commands = result.items("command_execution")
    assert len(commands) == 1 and "cat notes.txt" in commands[0]["command"], result.describe()
    assert commands[0]["exit_code"] == 0 and SECRET_WORD in commands[0]["aggregated_output"]
    assert SECRET_WORD in result.text, result.describe()
    assert len(bodies) == 2, bodies
    first, second = (json.dumps(body) for body in bodies)
    assert SECRET_WORD not in first and SECRET_WORD in second  # the tool's output went up in turn 2
    offered = function_names(bodies[0])
    assert (EXEC_FUNCTION in offered, SHELL_TOOL in offered) == (model == OWN_MODEL, model != OWN_MODEL)
    assert [e["type"] for e in result.events][-1] == "turn.completed", result.describe()


def test_the_own_model_is_the_one_the_fixture_shows_with_code_mode() -> None:
    """OWN_MODEL is the pinned Codex's default (the fixture of a session without --model), the one that
    sends its tools in an additional_tools item behind `exec` (no node needed)."""
    first, _ = _session("session-default-model.json")
    assert first["body"]["model"] == OWN_MODEL
    assert offered_tools(first["body"]).get("exec") == "custom" and SHELL_TOOL not in offered_tools(
        first["body"]
    )


def test_a_wrong_key_ends_in_an_error_not_a_hang(codex: Path, notes: Path) -> None:
    """The fake answers 401 to another key; with retries off Codex reports it and exits non-zero."""
    fake = RecordingResponses()
    with serve(fake) as url:
        result = run_codex(url + "/v1", PROMPT, notes.parent, MODEL, key="sk-wrong", executable=codex)
    assert result.returncode != 0 and result.failed, result.describe()
    assert fake.calls() == ["POST /v1/responses"]


@pytest.mark.parametrize(("model", "name"), SESSIONS, ids=[name for _, name in SESSIONS])
def test_the_fixture_is_what_the_pinned_codex_sends(codex: Path, model: str | None, name: str) -> None:
    """tests/fixtures/codex/ has the shape of what the pinned version sends today (calls, headers, body
    keys and steering values, input items, tools). After a version bump: python -m tests.support.codex"""
    recorded = json.loads((FIXTURES / name).read_text())
    assert shape(capture(model)) == shape(recorded), "regenerate: python -m tests.support.codex"


def _session(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    session = json.loads((FIXTURES / name).read_text())
    assert [f"{r['method']} {r['path']}" for r in session["requests"]] == ["POST /v1/responses"] * 2
    first, second = session["requests"]
    return first, second


def test_what_codex_sends_to_a_gateway() -> None:
    """The facts of the captured session with a gateway model id (one Codex has no metadata for) that the
    /v1/responses door has to handle (no node needed)."""
    first, second = _session("session.json")
    for request in (first, second):
        headers, body = request["headers"], request["body"]
        assert headers["authorization"] == "<redacted>" and headers["accept"] == "text/event-stream"
        assert headers["originator"] == "codex_exec" and "x-codex-turn-metadata" in headers
        assert body["model"] == MODEL and body["stream"] is True
        assert "instructions" not in body  # the system prompt is the first developer message
        assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
        assert body["reasoning"] == {"summary": "auto"}
        assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
        assert isinstance(body["prompt_cache_key"], str) and isinstance(body["client_metadata"], dict)
        items = input_items(body)
        assert [(i["type"], i.get("role")) for i in items[:4]] == [
            ("message", "developer"),
            ("message", "developer"),
            ("message", "user"),
            ("message", "user"),
        ]
        assert all(i["id"].startswith("msg_") for i in items[:4])  # ids on input items
        assert len(items[0]["content"][0]["text"]) > 10_000
        tools = {t.get("name") or t["type"]: t for t in body["tools"]}
        assert tools["web_search"] == {"type": "web_search", "external_web_access": True}  # built-in
        assert tools["multi_agent_v1"]["type"] == "namespace"  # a grouped tool set
        assert tools["get_goal"]["parameters"]["properties"] == {}  # a parameterless tool
        assert offered_tools(body)[SHELL_TOOL] == "function"
        assert tools[SHELL_TOOL]["parameters"]["required"] == ["cmd"]
    # Turn 2 replays everything (store is false, no previous_response_id): the same leading items, the
    # model's function_call as it was answered, then the output with Codex's own `fco_` id.
    assert "previous_response_id" not in second["body"]
    items = input_items(second["body"])
    assert items[:4] == input_items(first["body"])
    call, output = items[4:]
    assert call == first["reply"]["output"][0]
    assert output["type"] == "function_call_output" and output["call_id"] == call["call_id"]
    assert output["id"].startswith("fco_") and isinstance(output["output"], str)
    assert SECRET_WORD in output["output"]


def test_what_codex_sends_for_a_model_it_knows() -> None:
    """With one of its own models (its default) Codex sends another shape: no top-level `tools`; an
    `additional_tools` input item holds namespaces, among them the code-mode `exec` freeform tool (a
    `custom` tool with a Lark grammar) through which the model runs the shell in JavaScript, answered with
    `custom_tool_call_output` items; `text.verbosity`, reasoning effort, no parallel tool calls."""
    first, second = _session("session-default-model.json")
    for request in (first, second):
        body = request["body"]
        assert "tools" not in body and body["parallel_tool_calls"] is False
        assert request["headers"]["x-openai-internal-codex-responses-lite"] == "true"
        assert body["text"] == {"verbosity": "low"} and "effort" in body["reasoning"]
        additional = input_items(body)[0]
        assert additional["type"] == "additional_tools" and additional["role"] == "developer"
        assert offered_tools(body)["exec"] == "custom"
        exec_tool = additional["tools"][0]["tools"][0]
        assert exec_tool["format"]["type"] == "grammar" and exec_tool["format"]["syntax"] == "lark"
    call, output = input_items(second["body"])[-2:]
    assert call["type"] == "custom_tool_call" and call == first["reply"]["output"][0]
    assert output["type"] == "custom_tool_call_output" and output["call_id"] == call["call_id"]
    assert SECRET_WORD in output_text(output)


def test_the_recording_fake_answers_the_openai_sdk_streamed_and_not() -> None:
    """Codex streams; the fake's other path (one response object) and its stream are both read with the
    official SDK, and previous_response_id continues a stored conversation."""
    import openai

    fake = RecordingResponses(script=ToolThenAnswer(tool="lookup", arguments={"key": "notes"}))
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]
    with serve(fake) as url, openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as client:
        whole = client.responses.create(model=MODEL, input="Look it up", tools=tools)
        with client.responses.stream(model=MODEL, input="Look it up", tools=tools) as stream:
            streamed = stream.get_final_response()
        answer = client.responses.create(
            model=MODEL,
            previous_response_id=streamed.id,
            input=[{"type": "function_call_output", "call_id": streamed.output[0].call_id, "output": "42"}],  # type: ignore[union-attr]
        )
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model=MODEL, previous_response_id="resp_nope", input="Hi")
    for response in (whole, streamed):
        assert [item.type for item in response.output] == ["function_call"]
        assert response.output[0].arguments == '{"key": "notes"}'  # type: ignore[union-attr]
    assert answer.output_text == "The tool said: 42" and answer.previous_response_id == streamed.id
    assert refused.value.code == "previous_response_not_found"
    events = list(stream_events(fake.requests[1]["reply"]))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["id"] == events[-1]["response"]["id"] == streamed.id
