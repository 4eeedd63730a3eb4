"""The Claude-shaped pieces Anthropic and Bedrock share (providers/claude.py), each tested once here with
both providers' spellings; the golden fixtures of each provider cover them end to end."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llm_gateway import wire
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.providers.claude import (
    JSON_TOOL,
    ContentBlocks,
    JsonAnswer,
    TurnShape,
    UsageKeys,
    add_turn,
    finish_reason,
    finish_turns,
    json_answer,
    thinking_lost,
    usage_of,
)

ANTHROPIC_TURNS = TurnShape(
    is_tool_result=lambda block: block["type"] == "tool_result",
    lead_in={"type": "text", "text": "(start of conversation)"},
    is_reasoning=lambda block: block["type"] in ("thinking", "redacted_thinking"),
)
BEDROCK_TURNS = TurnShape(
    is_tool_result=lambda block: "toolResult" in block,
    lead_in={"text": "Continue."},
    is_reasoning=lambda block: "reasoningContent" in block,
)


# -- turns ---------------------------------------------------------------------------------------------------


def test_same_role_turns_merge_and_empty_ones_are_dropped() -> None:
    turns: list[dict[str, Any]] = []
    add_turn(turns, "user", [{"text": "a"}])
    add_turn(turns, "user", [])
    add_turn(turns, "user", [{"text": "b"}])
    add_turn(turns, "assistant", [{"text": "c"}])
    assert turns == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
        {"role": "assistant", "content": [{"text": "c"}]},
    ]


@pytest.mark.parametrize(
    ("shape", "text", "result"),
    [
        (ANTHROPIC_TURNS, {"type": "text", "text": "next"}, {"type": "tool_result", "tool_use_id": "t"}),
        (BEDROCK_TURNS, {"text": "next"}, {"toolResult": {"toolUseId": "t"}}),
    ],
    ids=["anthropic", "bedrock"],
)
def test_tool_results_open_their_turn_in_order(shape: TurnShape, text: Any, result: Any) -> None:
    second = {**result, "n": 2}
    turns = [{"role": "user", "content": [text, result, second]}]
    assert finish_turns(turns, shape) == [{"role": "user", "content": [result, second, text]}]


@pytest.mark.parametrize("shape", [ANTHROPIC_TURNS, BEDROCK_TURNS], ids=["anthropic", "bedrock"])
def test_a_conversation_opened_by_the_assistant_gets_a_lead_in(shape: TurnShape) -> None:
    turns = finish_turns([{"role": "assistant", "content": [{**shape.lead_in, "text": "hi"}]}], shape)
    assert turns[0] == {"role": "user", "content": [shape.lead_in]}
    assert turns[0]["content"][0] is not shape.lead_in  # a body never shares the constant
    assert not thinking_lost(turns, shape)


@pytest.mark.parametrize(
    ("shape", "call", "result", "thought"),
    [
        (
            ANTHROPIC_TURNS,
            {"type": "tool_use", "id": "t"},
            {"type": "tool_result", "tool_use_id": "t"},
            {"type": "thinking", "thinking": "x", "signature": "s"},
        ),
        (
            BEDROCK_TURNS,
            {"toolUse": {"toolUseId": "t"}},
            {"toolResult": {"toolUseId": "t"}},
            {"reasoningContent": {"reasoningText": {"text": "x", "signature": "s"}}},
        ),
    ],
    ids=["anthropic", "bedrock"],
)
def test_thinking_is_lost_when_a_tool_loop_continues_without_the_turns_reasoning(
    shape: TurnShape, call: Any, result: Any, thought: Any
) -> None:
    ask = {"role": "user", "content": [{**shape.lead_in, "text": "go"}]}
    without = [ask, {"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
    assert thinking_lost(without, shape)
    kept = [ask, {"role": "assistant", "content": [thought, call]}, {"role": "user", "content": [result]}]
    assert not thinking_lost(kept, shape)
    assert not thinking_lost(without[:2], shape)  # no tool results at the end: nothing to lose
    assert not thinking_lost([], shape)


# -- structured output ---------------------------------------------------------------------------------------


def answer(request: dict[str, Any], **options: Any) -> JsonAnswer | None:
    defaults: dict[str, Any] = {
        "provider": "p",
        "native_json": lambda model: model == "new",
        "tool_demanded": False,
        "thinking_on": False,
        "tool_names": (),
    }
    return json_answer(request, options.pop("model", "old"), **{**defaults, **options})


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
JSON_SCHEMA = {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}}
JSON_OBJECT = {"response_format": {"type": "json_object"}}


def test_json_schema_is_native_where_the_model_has_it() -> None:
    assert answer(JSON_SCHEMA, model="new") == JsonAnswer(True, SCHEMA)
    assert answer(JSON_SCHEMA, model="new", tool_demanded=True, thinking_on=True) == JsonAnswer(True, SCHEMA)
    assert answer(JSON_SCHEMA) == JsonAnswer(False, SCHEMA)
    assert answer(JSON_OBJECT, model="new") == JsonAnswer(False, {"type": "object"})


def test_nothing_to_do_without_response_format_or_when_a_tool_call_is_demanded() -> None:
    assert answer({}) is None
    assert answer({"response_format": {"type": "text"}}) is None
    assert answer(JSON_OBJECT, tool_demanded=True, thinking_on=True) is None


@pytest.mark.parametrize(
    ("request_", "options", "param", "message"),
    [
        (JSON_OBJECT, {"thinking_on": True}, "response_format", "json_object cannot be combined"),
        (
            JSON_SCHEMA,
            {"thinking_on": True, "thinking_scope": " on X"},
            "response_format",
            "reasoning_effort on X",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}},
            {},
            "response_format.json_schema.schema",
            "the schema must describe an object",
        ),
        (JSON_OBJECT, {"tool_names": iter(["a", JSON_TOOL])}, "tools", f"a tool named '{JSON_TOOL}'"),
    ],
    ids=["thinking", "thinking-scope", "not-an-object", "name-clash"],
)
def test_the_json_tool_refusals(request_: Any, options: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(GatewayError) as caught:
        answer(request_, **options)
    assert (caught.value.status, caught.value.param) == (400, param)
    assert message in caught.value.message and "the p provider" in caught.value.message


# -- answers -------------------------------------------------------------------------------------------------


def test_usage_sums_cache_reads_and_writes_into_the_prompt() -> None:
    keys = UsageKeys("in", "out", "read", "write", reasoning=("details", "thinking"))
    usage = {"in": 3, "out": 7, "read": 20, "write": 10, "details": {"thinking": 5}}
    assert usage_of(usage, keys) == {
        "prompt_tokens": 33,
        "completion_tokens": 7,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    plain = UsageKeys("in", "out", "read", "write")
    assert usage_of({"in": 1, "out": 2}, plain) == wire.usage(1, 2, cached_tokens=0)


def test_finish_reasons() -> None:
    reasons = {"end": "stop", "cut": "length", "tool_use": "tool_calls"}
    assert finish_reason(reasons, "cut", tool_calls=False) == "length"
    assert finish_reason(reasons, "cut", tool_calls=True) == "tool_calls"
    assert finish_reason(reasons, "tool_use", tool_calls=False) == "stop"  # answered by the JSON tool
    assert finish_reason(reasons, "new", tool_calls=False) == "stop"


# -- stream state --------------------------------------------------------------------------------------------


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk["choices"][0]["delta"] for chunk in chunks]


def test_tool_calls_are_numbered_among_tool_calls_only() -> None:
    blocks = ContentBlocks(wire.ChunkBuilder("m"), json_tool=JSON_TOOL)
    blocks.open(0)
    assert blocks.start_tool(1, "a") == 0
    assert blocks.start_tool(2, JSON_TOOL) is None
    assert blocks.start_tool(5, "b") == 1
    assert blocks.tool_calls == 2
    assert (blocks.is_open(2), blocks.is_open(3)) == (True, False)


def test_input_fragments_stream_as_arguments_or_as_json_content() -> None:
    blocks = ContentBlocks(wire.ChunkBuilder("m"), json_tool=JSON_TOOL)
    blocks.start_tool(0, "a")
    blocks.start_tool(1, JSON_TOOL)
    assert blocks.input(0, "") == []
    assert deltas(blocks.input(0, '{"x"')) == [{"tool_calls": [wire.tool_call_delta(0, arguments='{"x"')]}]
    assert deltas(blocks.input(1, '{"y": 1}')) == [{"content": '{"y": 1}'}]
    assert blocks.stop(0) == [] and blocks.stop(1) == []  # both had input
    assert not blocks.is_open(0)


def test_a_tool_block_without_fragments_sends_its_start_input_on_stop() -> None:
    blocks = ContentBlocks(wire.ChunkBuilder("m"), json_tool=JSON_TOOL)
    blocks.start_tool(0, "a")
    blocks.start_tool(1, "b", {"city": "Oslo"})
    blocks.start_tool(2, JSON_TOOL)
    blocks.open(3)
    assert deltas(blocks.stop(0)) == [{"tool_calls": [wire.tool_call_delta(0, arguments="{}")]}]
    assert deltas(blocks.stop(1)) == [{"tool_calls": [wire.tool_call_delta(1, arguments='{"city":"Oslo"}')]}]
    assert deltas(blocks.stop(2)) == [{"content": "{}"}]
    assert blocks.stop(3) == [] and blocks.stop(9) == []
