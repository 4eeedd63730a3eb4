"""Tool loops with thinking on through the openai SDK: gateway → the Anthropic, Bedrock and Gemini fakes.

The fakes sign their reasoning (each with its own key, bound to the model) and reject a tool loop whose last
assistant turn comes back without it, or with a signature that is missing, altered or another service's, as
the real APIs do. So a second turn that the fake accepts with thinking on proves the gateway replayed exactly
the reasoning that upstream made; and a fallback that would replay it to another upstream would fail there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from asgi_llm_gateway.providers.gemini import DUMMY_THOUGHT_SIGNATURE
from asgi_llm_gateway.providers.sealing import seal, sealed_for
from tests.e2e.openai_client_stack import KEY, Stack, openai_stack
from tests.fakes.gemini import sign_call
from tests.support.tools import WEATHER

CLAUDE = "claude/claude-haiku-4-5"
BEDROCK = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
GEMINI = "gemini/gemini-3-flash"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with openai_stack() as served:
        yield served


def ask(stack: Stack, model: str, messages: list[Any], stream: bool = False) -> dict[str, Any]:
    """One turn with thinking on; the assistant message as a dict (streamed turns assembled as a client would:
    text, reasoning, tool calls; `reasoning_details` from the deltas that carry it)."""
    options: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "tools": [WEATHER],
        "reasoning_effort": "low",
    }
    if not stream:
        whole: dict[str, Any] = (
            stack.client.chat.completions.create(**options).choices[0].message.model_dump(exclude_unset=True)
        )
        return whole
    message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": []}
    details: list[Any] = []
    for chunk in stack.client.chat.completions.create(**options, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        message["content"] += delta.content or ""
        details += (delta.model_extra or {}).get("reasoning_details") or []
        for call in delta.tool_calls or ():
            if call.id:
                message["tool_calls"].append(
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": ""},
                    }
                )
            message["tool_calls"][call.index]["function"]["arguments"] += call.function.arguments or ""
    if details:
        message["reasoning_details"] = details
    return message


def loop(first: dict[str, Any], keep: bool = True) -> list[Any]:
    """The conversation after the tool ran, with the assistant message echoed back (or without its
    `reasoning_details`, as LangChain and the Vercel AI SDK send it)."""
    echoed = dict(first) if keep else {k: v for k, v in first.items() if k != "reasoning_details"}
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21C"} for call in first["tool_calls"]
    ]
    return [{"role": "user", "content": "get_weather(city=Paris) please"}, echoed, *results]


def assert_reasoning_replayed(stack: Stack, fake: str) -> None:
    """The last request to `fake` had thinking on and its last assistant turn opened with the signed
    reasoning (Gemini: the function call carried its thought signature), unsealed."""
    body = stack.last(fake)
    text = json.dumps(body)
    assert "gw1." not in text
    if fake == "claude":
        assert body["thinking"]["type"] == "enabled" and assistant_turn(body)[0]["type"] == "thinking"
    elif fake == "bedrock":
        assert "thinking" in body["additionalModelRequestFields"]
        assert "reasoningContent" in assistant_turn(body)[0]
    else:
        assert '"thoughtSignature"' in text


QUESTION: list[Any] = [{"role": "user", "content": "get_weather(city=Paris) please"}]


def assistant_turn(body: dict[str, Any]) -> list[Any]:
    """The content of the assistant turn before the tool results, as the upstream received it."""
    content: list[Any] = body["messages"][-2]["content"]
    return content


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("keep", [True, False], ids=["echoed", "dropped-store"])
def test_anthropic_tool_loop_keeps_its_thinking(stack: Stack, stream: bool, keep: bool) -> None:
    first = ask(stack, CLAUDE, QUESTION, stream)
    [detail] = first["reasoning_details"]
    assert detail["type"] == "reasoning.text" and detail["format"] == "anthropic-claude-v1"
    assert (sealed_for(detail["signature"]) or "").endswith("/claude-haiku-4-5")
    second = ask(stack, CLAUDE, loop(first, keep), stream)
    body = stack.last("claude")
    assert body["thinking"]["type"] == "enabled"
    thinking = assistant_turn(body)[0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == detail["text"]
    assert not thinking["signature"].startswith("gw1.")  # unsealed: what the fake signed, it verified
    assert second["content"].startswith("Tool results:")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("keep", [True, False], ids=["echoed", "dropped-store"])
def test_bedrock_claude_tool_loop_keeps_its_reasoning(stack: Stack, stream: bool, keep: bool) -> None:
    first = ask(stack, BEDROCK, QUESTION, stream)
    [detail] = first["reasoning_details"]
    assert (sealed_for(detail["signature"]) or "").endswith("/us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    second = ask(stack, BEDROCK, loop(first, keep), stream)
    body = stack.last("bedrock")
    assert body["additionalModelRequestFields"]["thinking"]["type"] in ("enabled", "adaptive")
    reasoning = assistant_turn(body)[0]["reasoningContent"]["reasoningText"]
    assert reasoning["text"] == detail["text"] and not reasoning["signature"].startswith("gw1.")
    assert second["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_redacted_thinking_comes_back_unchanged(stack: Stack, stream: bool) -> None:
    first = ask(stack, CLAUDE, [{"role": "user", "content": "get_weather(city=Paris) REDACT"}], stream)
    kinds = [d["type"] for d in first["reasoning_details"]]
    assert kinds == ["reasoning.text", "reasoning.encrypted"]
    ask(stack, CLAUDE, loop(first))
    sent = [block["type"] for block in assistant_turn(stack.last("claude"))]
    assert sent[:2] == ["thinking", "redacted_thinking"]


def test_gemini_tool_loop_keeps_its_thought_signatures_in_the_call_ids(stack: Stack) -> None:
    """Gemini 3 rejects a function call sent back without its signature: the tool-call id carries it."""
    first = ask(stack, GEMINI, QUESTION)
    assert "reasoning_details" not in first
    second = ask(stack, GEMINI, loop(first, keep=False))
    assert second["content"].startswith("Results:")
    calls = [
        part
        for content in stack.last("gemini")["contents"]
        for part in content["parts"]
        if "functionCall" in part
    ]
    assert calls and calls[0]["thoughtSignature"]


def test_reasoning_details_delta_comes_before_the_tool_calls(stack: Stack) -> None:
    kinds: list[str] = []
    for chunk in stack.client.chat.completions.create(
        model=CLAUDE, messages=QUESTION, tools=[WEATHER], reasoning_effort="low", stream=True
    ):
        if chunk.choices:
            delta = chunk.choices[0].delta
            kinds += ["details"] if (delta.model_extra or {}).get("reasoning_details") else []
            kinds += ["call"] if delta.tool_calls else []
    assert kinds[0] == "details" and "call" in kinds


# -- replayed only where it was made ----------------------------------------------------------------------


def test_regression_anthropic_signature_is_never_replayed_to_bedrock(stack: Stack) -> None:
    """A conversation that moves from Anthropic to Bedrock (a fallback) used to risk replaying Anthropic's
    signature there, which Bedrock rejects: it is dropped, and thinking is left off for that turn."""
    first = ask(stack, CLAUDE, QUESTION)
    answer = ask(stack, BEDROCK, loop(first))
    body = stack.last("bedrock")
    assert "reasoningContent" not in json.dumps(body)
    assert "thinking" not in body.get("additionalModelRequestFields", {})
    assert answer["content"]


def test_regression_bedrock_signature_is_never_replayed_to_anthropic(stack: Stack) -> None:
    first = ask(stack, BEDROCK, QUESTION)
    answer = ask(stack, CLAUDE, loop(first))
    body = stack.last("claude")
    assert all(block["type"] != "thinking" for block in assistant_turn(body))
    assert "thinking" not in body
    assert answer["content"].startswith("Tool results:")


def test_another_models_or_a_raw_signature_is_dropped_never_sent(stack: Stack) -> None:
    first = ask(stack, CLAUDE, QUESTION)
    [detail] = first["reasoning_details"]
    original = detail["signature"].split(".", 3)[3]
    scope = sealed_for(detail["signature"])
    assert scope is not None
    for signature in (original, seal(original, scope.replace("haiku", "opus"))):
        echoed = {**first, "reasoning_details": [{**detail, "signature": signature}]}
        # A fresh id: the store must not stand in for the client's own (wrong) details.
        echoed["tool_calls"] = [{**first["tool_calls"][0], "id": "call_not_remembered"}]
        messages = loop(echoed)
        answer = ask(stack, CLAUDE, messages)
        body = stack.last("claude")
        assert "thinking" not in body and "signature" not in json.dumps(body)
        assert answer["content"].startswith("Tool results:")


# -- LangChain: ChatOpenAI keeps neither field, only the tool-call ids -----------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("fake", "model"), [("claude", CLAUDE), ("bedrock", BEDROCK), ("gemini", GEMINI)])
def test_langchain_tool_loop_with_reasoning_keeps_its_thinking(
    stack: Stack, fake: str, model: str, stream: bool
) -> None:
    llm = ChatOpenAI(
        model=model,
        api_key=SecretStr(KEY),
        base_url=str(stack.client.base_url),
        reasoning_effort="low",
        max_retries=0,
    ).bind_tools([WEATHER])

    def invoke(messages: list[BaseMessage]) -> AIMessage:
        if not stream:
            answer = llm.invoke(messages)
        else:
            chunks = [chunk for chunk in llm.stream(messages) if isinstance(chunk, AIMessageChunk)]
            answer = sum(chunks[1:], chunks[0])
        assert isinstance(answer, AIMessage)
        return answer

    history: list[BaseMessage] = [HumanMessage("get_weather(city=Paris) please")]
    first = invoke(history)
    assert [call["name"] for call in first.tool_calls] == ["get_weather"]
    assert "reasoning_details" not in first.additional_kwargs  # LangChain keeps no extension field
    history += [first, ToolMessage("Sunny, 21C", tool_call_id=first.tool_calls[0]["id"])]
    second = invoke(history)
    assert second.content
    assert_reasoning_replayed(stack, fake)


# -- the Responses door: its function_call items keep the call ids, so the store stands in ------------------

RESPONSES_WEATHER: Any = {"type": "function", **WEATHER["function"]}


@pytest.mark.parametrize(("fake", "model"), [("claude", CLAUDE), ("bedrock", BEDROCK)])
def test_responses_door_tool_loop_with_reasoning_keeps_its_thinking(
    stack: Stack, fake: str, model: str
) -> None:
    """A Responses client (store off, the whole input sent each turn, as Codex does) runs a tool loop with
    reasoning on against Claude: the thinking comes back from the provider's store by call id."""
    question: list[Any] = [{"role": "user", "content": "get_weather(city=Paris) please"}]
    first = stack.client.responses.create(
        model=model, input=question, tools=[RESPONSES_WEATHER], reasoning={"effort": "low"}, store=False
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    history = [*question, *(item.model_dump(exclude_none=True) for item in first.output)]
    second = stack.client.responses.create(
        model=model,
        input=[*history, {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"}],
        tools=[RESPONSES_WEATHER],
        reasoning={"effort": "low"},
        store=False,
    )
    assert second.status == "completed" and second.output_text
    assert_reasoning_replayed(stack, fake)


# -- Gemini: the thought signature in a tool-call id goes back only to the model that made it -------------


def test_gemini_tool_loop_continued_on_another_gemini_model_sends_the_placeholder(stack: Stack) -> None:
    """The fake signs for the model: gemini-3-pro would reject gemini-3-flash's signature with a 400."""
    first = ask(stack, GEMINI, QUESTION, stream=True)
    signed = sign_call("gemini-3-flash", "get_weather")
    answer = ask(stack, "gemini/gemini-3-pro", loop(first, keep=False))
    assert answer["content"].startswith("Results:")
    body = stack.last("gemini")
    calls = [part for content in body["contents"] for part in content["parts"] if "functionCall" in part]
    assert [call.get("thoughtSignature") for call in calls] == [DUMMY_THOUGHT_SIGNATURE]
    assert signed not in json.dumps(body)


def test_gemini_tool_loop_continued_on_claude_keeps_valid_ids_and_no_signature(stack: Stack) -> None:
    """The signed ids are valid Anthropic tool_use ids (the fake checks the pattern) and go there as the ids
    they are; Claude gets no thinking for a turn Gemini made."""
    first = ask(stack, GEMINI, QUESTION)
    [call] = first["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]{24}-[0-9a-f]{12}_[A-Za-z0-9_-]+", call["id"])
    answer = ask(stack, CLAUDE, loop(first))
    assert answer["content"].startswith("Tool results:")
    body = stack.last("claude")
    assert all(block["type"] != "thinking" for block in assistant_turn(body))
    assert [block["id"] for block in assistant_turn(body) if block["type"] == "tool_use"] == [call["id"]]
