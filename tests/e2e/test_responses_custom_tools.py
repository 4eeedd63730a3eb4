"""Freeform custom tools through /v1/responses on translated upstreams, with the official `openai` SDK over a
real loopback socket: the gateway in front of the Anthropic, Gemini and Bedrock fakes (tests/support/
upstreams.py), each speaking its provider's native API, and of its own echo provider.

A custom tool reaches the upstream as a function with one string parameter, `input`; the fakes' echo model
calls it with the argument the prompt spells out, `note(input=Buy milk)`, and the client gets a
`custom_tool_call` whose `input` is that string, whole or streamed as
`response.custom_tool_call_input.delta` events. Turn 2 answers it with a `custom_tool_call_output` (by
`previous_response_id`) and the upstream's answer quotes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.upstreams import Upstreams, gateway_over_every_upstream

KEY = "sk-gw-custom-tools"
MODELS = {
    "echo": "echo/echo-1",
    "claude": "claude/claude-sonnet-4-5",
    "gemini": "gemini/gemini-3-flash",
    "bedrock": "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
}
PROMPT = "Call note(input=Buy milk) please."
NOTE: Any = {
    "type": "custom",
    "name": "note",
    "description": "Write a note.",
    "format": {"type": "grammar", "syntax": "regex", "definition": "[A-Za-z ]+"},
}
OUTPUT = "Noted as #7"


def expected_input(provider: str) -> str:
    """What the provider's echo model writes for the one string parameter: what the prompt spells out."""
    return "Buy milk"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with gateway_over_every_upstream({KEY: "developer"}, {}) as served:
        yield served


@pytest.fixture
def client(upstreams: Upstreams) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstreams.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def upstream_bodies(upstreams: Upstreams, provider: str) -> list[dict[str, Any]]:
    """The bodies the provider's fake was sent (none for echo, which runs in the gateway)."""
    fake = upstreams.fakes.get(provider)
    return [r["body"] if isinstance(r, dict) else r.body for r in fake.requests] if fake else []


def answer_turn(client: openai.OpenAI, provider: str, previous: Any, tools: Any) -> Any:
    """Turn 2: the custom call's output, by previous_response_id."""
    (call,) = [item for item in previous.output if item.type == "custom_tool_call"]
    output: Any = [{"type": "custom_tool_call_output", "call_id": call.call_id, "output": OUTPUT}]
    return client.responses.create(
        model=MODELS[provider], previous_response_id=previous.id, input=output, tools=tools
    )


@pytest.mark.parametrize("provider", MODELS)
def test_a_custom_tool_round_trip(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    raw = client.responses.with_raw_response.create(model=MODELS[provider], input=PROMPT, tools=[NOTE])
    assert raw.headers.get("x-llm-gateway-dropped-tools") is None  # a custom tool is not dropped
    first = raw.parse()
    (call,) = [item for item in first.output if item.type == "custom_tool_call"]
    assert (call.name, call.input, call.namespace) == ("note", expected_input(provider), None)
    assert call.id is not None and call.id.startswith("ctc_") and call.call_id
    answer = answer_turn(client, provider, first, [NOTE])
    assert OUTPUT in answer.output_text
    if provider != "echo":  # what went up: the grammar in the description, the call, its output
        sent = json.dumps(upstream_bodies(upstreams, provider)[-2:])
        assert "[A-Za-z ]+" in sent
        assert json.dumps(expected_input(provider)) in sent and OUTPUT in sent


@pytest.mark.parametrize("provider", MODELS)
def test_a_streamed_custom_tool_call(client: openai.OpenAI, provider: str) -> None:
    """The SDK's stream helper: the input arrives in `response.custom_tool_call_input.delta` events that add
    up to it, `.done` carries it whole, and the accumulated final response holds the custom_tool_call."""
    with client.responses.stream(model=MODELS[provider], input=PROMPT, tools=[NOTE]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    (done,) = [e.input for e in events if e.type == "response.custom_tool_call_input.done"]
    assert deltas and "".join(deltas) == done == expected_input(provider)
    (call,) = [item for item in final.output if item.type == "custom_tool_call"]
    assert call.input == done and call.name == "note"
    answer = answer_turn(client, provider, final, [NOTE])
    assert OUTPUT in answer.output_text


@pytest.mark.parametrize("provider", MODELS)
def test_tools_in_an_additional_tools_item_and_a_namespaced_custom_tool(
    client: openai.OpenAI, upstreams: Upstreams, provider: str
) -> None:
    """Codex's shape: no `tools`, an `additional_tools` item whose namespace holds the custom tool; the call
    comes back with the namespace and the tool's own name, and only the built-in is reported dropped."""
    additional = {
        "type": "additional_tools",
        "role": "developer",
        "tools": [
            {"type": "namespace", "name": "desk", "description": "Desk tools.", "tools": [NOTE]},
            {"type": "web_search"},
        ],
    }
    prompt = PROMPT.replace("note(", "desk__note(")
    items: Any = [additional, {"role": "user", "content": prompt}]
    raw = client.responses.with_raw_response.create(model=MODELS[provider], input=items)
    assert raw.headers.get("x-llm-gateway-dropped-tools") == "web_search"
    (call,) = [item for item in raw.parse().output if item.type == "custom_tool_call"]
    assert (call.namespace, call.name, call.input) == ("desk", "note", expected_input(provider))
    if provider != "echo":
        assert "desk__note" in json.dumps(upstream_bodies(upstreams, provider)[-1])


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"type": "additional_tools", "role": "developer", "tools": "note"}], "input[0].tools"),
        (
            [{"type": "additional_tools", "role": "developer", "tools": [{"type": "custom"}]}],
            "input[0].tools[0].name",
        ),
        ([{"type": "custom_tool_call", "call_id": "c", "name": "note", "input": 7}], "input[0].input"),
        ([{"type": "custom_tool_call_output", "call_id": "c", "output": {"a": 1}}], "input[0].output"),
    ],
    ids=["tools-not-a-list", "custom-without-name", "input-not-text", "output-not-text"],
)
def test_malformed_custom_tool_input_is_a_400_naming_it(
    client: openai.OpenAI, items: Any, param: str
) -> None:
    """What the request schema leaves unchecked (items of custom tools, tools of additional_tools items) is
    checked by the translation: a 400 in OpenAI's envelope, never a 500."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODELS["claude"], input=[*items, {"role": "user", "content": "Hi"}])
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == param and refused.value.code == "invalid_value"  # type: ignore[index]
