"""A client that leaves during a plain call cancels the upstream call, on every door, through the real SDKs
over loopback: with no hook (the watch cancels through asyncio's own timeout) and with one (through an anyio
scope). The upstream holds its answer and counts the connections the gateway closed on it; afterwards the
gateway answers the next call and has no task left over."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from asgi_llm_gateway import Call, Gateway, Hooks, UsageRecord
from asgi_llm_gateway.providers import OpenAICompatibleProvider
from tests.support import held_upstream
from tests.support.held_upstream import HeldUpstream
from tests.support.server import ServedURL, serve
from tests.support.waiting import wait_for


class Ended(Hooks):
    """Any hook: with one, a plain call is watched through an anyio scope."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        self.statuses.append(record.status)


@pytest.fixture
def upstream() -> Iterator[tuple[HeldUpstream, str]]:
    held = HeldUpstream()
    with serve(held) as url:
        yield held, url


@pytest.fixture(params=["no hook", "a hook"])
def gateway(request: pytest.FixtureRequest, upstream: tuple[HeldUpstream, str]) -> Iterator[Any]:
    held, url = upstream
    hooks = [Ended()] if request.param == "a hook" else []
    provider = OpenAICompatibleProvider(api_key=held_upstream.KEY, base_url=url + "/v1")
    app = Gateway(providers={"held": provider}, hooks=hooks)
    assert (app.hooks is None) == (not hooks)  # no hook at all: the cheaper watch serves
    with serve(app) as gateway_url:
        yield gateway_url, held, hooks


def tasks_of(url: ServedURL) -> int:
    return len(asyncio.all_tasks(url.loop))


@pytest.mark.parametrize("door", ["chat", "messages", "responses"])
def test_a_client_that_leaves_a_plain_call_cancels_the_upstream_call(door: str, gateway: Any) -> None:
    url, held, hooks = gateway
    ask = {"chat": _chat, "messages": _messages, "responses": _responses}[door]
    assert ask(url, "warm up", timeout=5) == "held: warm up"
    baseline = tasks_of(url)
    with pytest.raises((openai.APITimeoutError, anthropic.APITimeoutError)):
        ask(url, "[hold] wait for me", timeout=0.5)
    # the gateway closed its upstream connection: the call was cancelled
    wait_for(lambda: held.closed == 1, timeout=5)
    assert held.answered == 1
    held.release.set()
    assert ask(url, "next", timeout=5) == "held: next"
    wait_for(lambda: tasks_of(url) <= baseline, timeout=5)
    if hooks:
        wait_for(lambda: len(hooks[0].statuses) == 3, timeout=5)
        assert sorted(hooks[0].statuses) == [200, 200, 499]


def _chat(url: str, text: str, *, timeout: float) -> str | None:
    with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0, timeout=timeout) as client:
        answer = client.chat.completions.create(model="held/m", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content


def _messages(url: str, text: str, *, timeout: float) -> str | None:
    with anthropic.Anthropic(base_url=url, api_key="c", max_retries=0, timeout=timeout) as client:
        answer = client.messages.create(
            model="held/m", max_tokens=16, messages=[{"role": "user", "content": text}]
        )
    block = answer.content[0]
    return block.text if block.type == "text" else None


def _responses(url: str, text: str, *, timeout: float) -> str | None:
    with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0, timeout=timeout) as client:
        answer = client.responses.create(model="held/m", input=text)
    return answer.output_text
