"""Request rewriting through the real clients: `Gateway(rewrite=...)` on every door, with the official
`openai` and `anthropic` SDKs over loopback, in front of a fake OpenAI upstream that records what reached
it. `RequestPolicy` caps output and forces the end user whatever the client sent; a host's own rewrite sees
each door's name and may change the model, which is then routed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from asgi_llm_gateway import Gateway, Policy, Principal, RequestPolicy, api_keys
from asgi_llm_gateway.providers import EchoProvider, OpenAIProvider
from tests.fakes.openai import KEY, FakeOpenAI
from tests.support.server import serve

HELLO: list[Any] = [{"role": "user", "content": "hello there"}]


def served(rewrite: Any) -> Iterator[tuple[str, FakeOpenAI]]:
    upstream = FakeOpenAI()
    with serve(upstream.app()) as upstream_url:
        gateway = Gateway(
            providers={
                "up": OpenAIProvider(api_key=KEY, base_url=upstream_url + "/v1"),
                "echo": EchoProvider(),
            },
            auth=api_keys({"alice-key": Principal("alice")}),
            policy=Policy(max_attempts=1),
            rewrite=rewrite,
        )
        with serve(gateway) as url:
            yield url, upstream


@pytest.fixture
def capped() -> Iterator[tuple[str, FakeOpenAI]]:
    yield from served(RequestPolicy(max_output_tokens=100, force_user=True))


def test_request_policy_on_every_door(capped: tuple[str, FakeOpenAI]) -> None:
    url, upstream = capped
    with openai.OpenAI(base_url=url + "/v1", api_key="alice-key", max_retries=0) as client:
        client.chat.completions.create(model="up/gpt-4.1", messages=HELLO, max_tokens=5000, user="mallory")
        client.chat.completions.create(model="up/gpt-4.1", messages=HELLO, max_completion_tokens=10)
        client.responses.create(model="up/gpt-4.1", input="hello there", max_output_tokens=5000)
        client.embeddings.create(model="up/text-embedding-3-small", input="hello there", user="mallory")
    with anthropic.Anthropic(base_url=url, api_key="alice-key", max_retries=0) as claude:
        claude.messages.create(
            model="up/gpt-4.1", max_tokens=8192, messages=HELLO, metadata={"user_id": "mallory"}
        )
    chat, small, responses, embeddings, messages = (request["body"] for request in upstream.requests)
    assert (chat.get("max_completion_tokens") or chat.get("max_tokens"), chat["user"]) == (100, "alice")
    assert (small["max_completion_tokens"], small["user"]) == (10, "alice")  # below the cap: kept
    assert (responses["max_output_tokens"], responses["safety_identifier"]) == (100, "alice")
    assert embeddings["user"] == "alice"
    # a Messages request is translated to chat for this upstream: max_tokens and metadata.user_id with it
    assert (messages.get("max_completion_tokens") or messages.get("max_tokens")) == 100
    assert messages["user"] == "alice"


def test_a_stream_is_rewritten_too(capped: tuple[str, FakeOpenAI]) -> None:
    url, upstream = capped
    with openai.OpenAI(base_url=url + "/v1", api_key="alice-key", max_retries=0) as client:
        list(client.chat.completions.create(model="up/gpt-4.1", messages=HELLO, stream=True))
    body = upstream.requests[-1]["body"]
    assert (body["max_completion_tokens"], body["user"], body["stream"]) == (100, "alice", True)


class Redirect:
    """A host's own rewrite: every door's name as it sees it; chat calls for `cheap` go to echo."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, principal: Any, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        self.seen.append((principal.name, endpoint))
        if body["model"] == "cheap":
            return {**body, "model": "echo/echo-1"}
        return body


def test_a_hosts_rewrite_sees_each_door_and_its_model_is_routed() -> None:
    redirect = Redirect()
    for url, upstream in served(redirect):
        with openai.OpenAI(base_url=url + "/v1", api_key="alice-key", max_retries=0) as client:
            answer = client.chat.completions.with_raw_response.create(model="cheap", messages=HELLO)
            client.responses.create(model="up/gpt-4.1", input="hi")
            client.embeddings.create(model="up/text-embedding-3-small", input="hi")
            with pytest.raises(openai.NotFoundError):  # the rewrite runs after validation, before routing
                client.chat.completions.create(model="nowhere", messages=HELLO)
        with anthropic.Anthropic(base_url=url, api_key="alice-key", max_retries=0) as claude:
            claude.messages.create(model="up/gpt-4.1", max_tokens=10, messages=HELLO)
            claude.messages.count_tokens(model="up/gpt-4.1", messages=HELLO)
        assert answer.headers["x-llm-gateway-target"] == "echo/echo-1"
        assert answer.parse().model == "echo/echo-1"
        assert [request["path"] for request in upstream.requests] == [
            "/v1/responses",
            "/v1/embeddings",
            "/v1/chat/completions",
        ]
    assert redirect.seen == [
        ("alice", "chat.completions"),
        ("alice", "responses"),
        ("alice", "embeddings"),
        ("alice", "chat.completions"),
        ("alice", "messages"),
        ("alice", "messages.count_tokens"),
    ]
