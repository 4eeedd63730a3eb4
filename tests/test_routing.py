"""Router.plan: which targets a call tries, and in what order, given the health of each."""

from __future__ import annotations

import random

import pytest

from asgi_llm_gateway.policy import Group, HealthBook, Policy
from asgi_llm_gateway.providers import EchoProvider
from asgi_llm_gateway.routing import Router, RouteSpec

NOW = 1000.0
COOL = Policy(cooldown_after=1, cooldown=30)


def router(routes: dict[str, RouteSpec]) -> Router:
    return Router({name: EchoProvider() for name in ("a", "b", "c", "d")}, routes)


def cooled(*names: str) -> HealthBook:
    health = HealthBook()
    for name in names:
        health.failed(name, COOL, NOW)
    return health


def plan(routes: dict[str, RouteSpec], model: str, health: HealthBook, seed: int = 0) -> list[str]:
    targets, _ = router(routes).plan(model, health, random.Random(seed), NOW)
    return [target.name for target in targets]


ROUTE: dict[str, RouteSpec] = {"r": ["a/m", "b/m", "c/m", "d/m"]}


def test_all_healthy_keeps_the_route_order() -> None:
    assert plan(ROUTE, "r", HealthBook()) == ["a/m", "b/m", "c/m", "d/m"]


@pytest.mark.parametrize(
    ("cooling", "order"),
    [
        (("a/m",), ["b/m", "c/m", "d/m", "a/m"]),
        (("c/m", "a/m"), ["b/m", "d/m", "a/m", "c/m"]),  # cooling ones keep their route order
        (("b/m", "c/m", "d/m"), ["a/m", "b/m", "c/m", "d/m"]),
        (("a/m", "b/m", "c/m", "d/m"), ["a/m", "b/m", "c/m", "d/m"]),  # all cooling: route order
    ],
)
def test_cooled_down_targets_are_planned_last_not_left_out(
    cooling: tuple[str, ...], order: list[str]
) -> None:
    assert plan(ROUTE, "r", cooled(*cooling)) == order


def test_a_cooldown_that_has_expired_counts_as_healthy() -> None:
    health = cooled("a/m")
    targets, _ = router(ROUTE).plan("r", health, random.Random(0), NOW + COOL.cooldown)
    assert [target.name for target in targets] == ["a/m", "b/m", "c/m", "d/m"]


def test_a_cooled_member_of_a_weighted_group_goes_after_every_healthy_target() -> None:
    routes: dict[str, RouteSpec] = {"r": [Group({"a/m": 1, "b/m": 1}), "c/m"]}
    for seed in range(20):
        assert plan(routes, "r", cooled("a/m"), seed) == ["b/m", "c/m", "a/m"]
        healthy_order = plan(routes, "r", HealthBook(), seed)
        assert sorted(healthy_order[:2]) == ["a/m", "b/m"] and healthy_order[2] == "c/m"


def test_cooled_targets_follow_the_weighted_order_among_themselves() -> None:
    routes: dict[str, RouteSpec] = {"r": [Group({"a/m": 1, "b/m": 1}), "c/m"]}
    for seed in range(20):
        healthy_order = plan(routes, "r", HealthBook(), seed)
        assert plan(routes, "r", cooled("a/m", "b/m"), seed) == ["c/m", *healthy_order[:2]]


def test_a_target_listed_twice_is_planned_once() -> None:
    assert plan({"r": ["a/m", "b/m", "a/m"]}, "r", cooled("a/m")) == ["b/m", "a/m"]


def test_a_direct_model_that_is_cooling_is_still_planned() -> None:
    assert plan({}, "a/m", cooled("a/m")) == ["a/m"]


def test_a_direct_model_is_resolved_once_and_remembered_checked() -> None:
    from asgi_llm_gateway.errors import GatewayError

    routes = router({})
    first = routes.resolve("a/m")
    assert routes.resolve("a/m") is first
    [entry] = first[0]
    assert [target.name for target in entry.targets] == ["a/m"]
    for bad, status in (("a/../m", 400), ("a/m x", 400), ("zz/m", 404), ("a/", 404)):
        for _ in range(2):  # refused every time: nothing refused is remembered
            with pytest.raises(GatewayError) as caught:
                routes.resolve(bad)
            assert caught.value.status == status


def test_the_resolved_models_memo_is_bounded() -> None:
    from asgi_llm_gateway.memo import LIMIT

    routes = router({})
    for n in range(LIMIT * 3):
        routes.resolve(f"a/m{n}")
    assert 0 < len(routes._direct_routes) <= LIMIT
    assert routes.resolve(f"a/m{LIMIT * 3 - 1}")[0][0].targets[0].model == f"m{LIMIT * 3 - 1}"


def test_a_target_name_is_provider_slash_model() -> None:
    [target] = router({}).plan("b/x-1:0", HealthBook(), random.Random(0), NOW).targets
    assert (target.provider_name, target.model, target.name) == ("b", "x-1:0", "b/x-1:0")
