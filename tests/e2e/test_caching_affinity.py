"""Cache affinity: a conversation keeps hitting the same deployment of a weighted group while it is healthy.

`Router.plan(..., request=body)` orders a weighted group by weighted rendezvous hashing of the request's
`affinity_key`; without the request it shuffles by weight as before. Everything here is deterministic
(hashes, not chance): the proportions asserted are exact properties of fixed keys.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from asgi_llm_gateway.policy import Group, HealthBook, Policy
from asgi_llm_gateway.providers import EchoProvider
from asgi_llm_gateway.routing import Router, RouteSpec, affine_order, affinity_key

NOW = 1000.0
COOL = Policy(cooldown_after=1, cooldown=30)
GROUP = Group({"a/m": 1, "b/m": 1, "c/m": 2})
ROUTES: dict[str, RouteSpec] = {"r": [GROUP, "d/m"]}
ROUTER = Router({name: EchoProvider() for name in ("a", "b", "c", "d")}, ROUTES)


def conversation(first: str, turns: int = 0, **extra: Any) -> dict[str, Any]:
    """A chat body: a system prompt, the first user message, then `turns` more exchanges."""
    messages: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": first}]
    for n in range(turns):
        messages += [
            {"role": "assistant", "content": f"answer {n}"},
            {"role": "user", "content": f"more {n}"},
        ]
    return {"model": "r", "messages": messages, **extra}


def planned(request: dict[str, Any] | None, health: HealthBook | None = None, seed: int = 0) -> list[str]:
    targets, _ = ROUTER.plan("r", health or HealthBook(), random.Random(seed), NOW, request)
    return [target.name for target in targets]


def test_every_turn_of_a_conversation_goes_to_the_same_deployment() -> None:
    first = planned(conversation("Plan my trip to Oslo."))
    for turns in range(1, 6):
        for seed in range(5):  # the random source no longer decides
            assert planned(conversation("Plan my trip to Oslo.", turns), seed=seed) == first
    assert first[-1] == "d/m"  # the plain fallback after the group stays last


def test_conversations_spread_over_the_group_in_proportion_to_the_weights() -> None:
    firsts = Counter(planned(conversation(f"conversation {n}"))[0] for n in range(400))
    assert set(firsts) == {"a/m", "b/m", "c/m"}
    assert 160 <= firsts["c/m"] <= 240  # weight 2 of 4: about half
    assert 60 <= firsts["a/m"] <= 140 and 60 <= firsts["b/m"] <= 140


def test_a_cooling_deployment_goes_last_and_the_key_keeps_its_second_choice() -> None:
    request = conversation("Summarise this contract.")
    healthy = planned(request)
    health = HealthBook()
    health.failed(healthy[0], COOL, NOW)
    assert planned(request, health) == [*healthy[1:3], "d/m", healthy[0]]
    health_later = HealthBook()  # recovered: the conversation comes back to its deployment
    assert planned(request, health_later) == healthy


def test_removing_a_deployment_moves_only_the_conversations_that_preferred_it() -> None:
    keys = [affinity_key(conversation(f"conversation {n}")) for n in range(200)]
    before = {key: affine_order(GROUP.weights, key)[0] for key in keys}
    smaller = {name: weight for name, weight in GROUP.weights.items() if name != "a/m"}
    after = {key: affine_order(smaller, key)[0] for key in keys}
    assert all(after[key] == before[key] for key in keys if before[key] != "a/m")
    assert any(before[key] == "a/m" for key in keys)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (conversation("hi", prompt_cache_key="tenant-7", user="u1"), "key:tenant-7"),
        (conversation("hi", safety_identifier="s1", user="u1"), "user:s1"),
        (conversation("hi", user="u1"), "user:u1"),
        ({"model": "r", "metadata": {"user_id": "cc-session"}, "messages": []}, "user:cc-session"),
    ],
)
def test_affinity_key_prefers_the_cache_key_then_the_user(body: dict[str, Any], key: str) -> None:
    assert affinity_key(body) == key


def test_the_prompt_digest_is_fixed_for_a_conversation_and_differs_between_them() -> None:
    one = affinity_key(conversation("Plan my trip to Oslo."))
    assert one.startswith("prompt:")
    assert affinity_key(conversation("Plan my trip to Oslo.", turns=3)) == one
    assert affinity_key(conversation("Plan my trip to Rome.")) != one
    responses = {"model": "r", "instructions": "Be brief.", "input": "Plan my trip to Oslo."}
    assert affinity_key(responses) == affinity_key({**responses, "previous_response_id": "resp_1"})
    messages = {"model": "r", "system": "Be brief.", "messages": [{"role": "user", "content": "Oslo?"}]}
    assert affinity_key(messages).startswith("prompt:")


def test_without_the_request_a_group_is_shuffled_by_weight_as_before() -> None:
    firsts = {planned(None, seed=seed)[0] for seed in range(40)}
    assert firsts == {"a/m", "b/m", "c/m"}


# -- through the gateway ---------------------------------------------------------------------------------


def test_through_the_gateway_a_conversation_stays_on_one_deployment_and_others_spread() -> None:
    """The official openai SDK against the gateway over loopback, in front of two fake OpenAI deployments in
    a weighted group: every turn of one conversation (one `prompt_cache_key`, or one growing message list)
    reaches the same deployment; different conversations reach both."""
    import openai

    from asgi_llm_gateway import Gateway
    from asgi_llm_gateway.providers import OpenAIProvider
    from tests.fakes.openai import KEY, FakeOpenAI
    from tests.support.server import serve

    first, second = FakeOpenAI(), FakeOpenAI()
    with serve(first.app()) as first_url, serve(second.app()) as second_url:
        gateway = Gateway(
            providers={
                "one": OpenAIProvider(api_key=KEY, base_url=first_url + "/v1"),
                "two": OpenAIProvider(api_key=KEY, base_url=second_url + "/v1"),
            },
            routes={"pool": [Group({"one/m": 1, "two/m": 1})]},
        )
        with serve(gateway) as url, openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as client:

            def deployments(**body: Any) -> set[str]:
                return {client.chat.completions.create(model="pool", **body).model for _ in range(6)}

            for n in range(8):  # each conversation: one deployment for all its turns
                assert (
                    len(deployments(messages=[{"role": "user", "content": "hi"}], prompt_cache_key=f"c{n}"))
                    == 1
                )
            messages: list[Any] = [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "one"},
            ]
            seen = set()
            for turn in range(5):  # no key: the prompt's start keeps it in place as the conversation grows
                answer = client.chat.completions.create(model="pool", messages=messages)
                seen.add(answer.model)
                messages += [
                    {"role": "assistant", "content": f"a{turn}"},
                    {"role": "user", "content": f"u{turn}"},
                ]
            assert len(seen) == 1
            spread = {
                client.chat.completions.create(
                    model="pool", messages=[{"role": "user", "content": "hi"}], prompt_cache_key=f"k{n}"
                ).model
                for n in range(16)
            }
    assert spread == {"one/m", "two/m"}
    assert first.requests and second.requests
