"""`RequestPolicy`, door by door: which field each door's output bound and end user live in, and what a cap
and a forced user do to them (pure: dict in, dict out; the request given is never changed)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from asgi_llm_gateway import Principal, RequestPolicy

ALICE = Principal("alice")
CAP = RequestPolicy(max_output_tokens=100)
USER = RequestPolicy(force_user=True)


def rewritten(policy: RequestPolicy, endpoint: str, body: dict[str, Any], principal: Any = ALICE) -> Any:
    before = copy.deepcopy(body)
    after = policy(principal, endpoint, body)
    assert body == before  # the door's body is left as it was
    return after


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        ("chat.completions", {}, {"max_completion_tokens": 100}),
        ("chat.completions", {"max_tokens": 5000}, {"max_tokens": 100}),
        ("chat.completions", {"max_completion_tokens": 10}, {"max_completion_tokens": 10}),
        ("chat.completions", {"max_tokens": None}, {"max_tokens": None, "max_completion_tokens": 100}),
        (
            "chat.completions",
            {"max_tokens": 50, "max_completion_tokens": 500},
            {"max_tokens": 50, "max_completion_tokens": 100},
        ),
        ("messages", {"max_tokens": 8192}, {"max_tokens": 100}),
        ("responses", {}, {"max_output_tokens": 100}),
        ("responses", {"max_output_tokens": 101}, {"max_output_tokens": 100}),
        ("embeddings", {"input": "x"}, {"input": "x"}),
        ("messages.count_tokens", {"messages": []}, {"messages": []}),
    ],
)
def test_the_cap_lands_on_each_doors_own_output_bound(
    endpoint: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert rewritten(CAP, endpoint, {"model": "m", **body}) == {"model": "m", **expected}


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        ("chat.completions", {"user": "mallory"}, {"user": "alice"}),
        ("embeddings", {}, {"user": "alice"}),
        ("messages", {"metadata": {"user_id": "mallory"}}, {"metadata": {"user_id": "alice"}}),
        ("messages", {}, {"metadata": {"user_id": "alice"}}),
        ("responses", {}, {"safety_identifier": "alice"}),
        ("responses", {"user": "mallory"}, {"user": "alice", "safety_identifier": "alice"}),
        ("messages.count_tokens", {}, {}),
    ],
)
def test_the_forced_user_lands_on_each_doors_own_field(
    endpoint: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert rewritten(USER, endpoint, {"model": "m", **body}) == {"model": "m", **expected}


def test_a_principal_that_is_not_a_principal_is_named_by_its_text_and_no_principal_forces_nothing() -> None:
    assert rewritten(USER, "chat.completions", {"model": "m"}, "team-7")["user"] == "team-7"
    assert rewritten(USER, "chat.completions", {"model": "m"}, None) == {"model": "m"}


def test_a_policy_that_does_nothing_returns_the_body_itself() -> None:
    body = {"model": "m", "max_tokens": 5}
    assert RequestPolicy()(ALICE, "chat.completions", body) is body
    assert CAP(ALICE, "embeddings", body) is body


@pytest.mark.parametrize("cap", [0, -1, True, 1.5])
def test_a_cap_is_a_positive_integer(cap: Any) -> None:
    with pytest.raises(ValueError, match="max_output_tokens must be a positive integer"):
        RequestPolicy(max_output_tokens=cap)
