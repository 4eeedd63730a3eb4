"""Model resolution: which provider serves a `model` string, and in what order targets are tried."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .errors import GatewayError
from .model_ids import check_model_id
from .policy import Group, HealthBook, Policy, Route, weighted_order
from .providers.base import Provider

__all__ = ["Plan", "RouteSpec", "Router", "Target"]

#: What a host may pass for one route: a target, a list of targets and groups, or a `Route`.
RouteSpec = str | Group | Sequence[str | Group] | Route


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream model on one provider."""

    provider_name: str
    provider: Provider
    model: str

    @property
    def name(self) -> str:
        """The client-facing name, `<provider>/<model>`."""
        return f"{self.provider_name}/{self.model}"


class Plan(NamedTuple):
    """The targets to try, in order, and the route's own policy (None: each provider's)."""

    targets: list[Target]
    policy: Policy | None


class Router:
    """Resolves `"<provider>/<model>"` strings and route aliases to the targets to try, in order.

    Routes are checked when the gateway is built, so a typo in a host's configuration fails at start-up,
    not on the first request.
    """

    def __init__(self, providers: Mapping[str, Provider], routes: Mapping[str, RouteSpec]) -> None:
        self.providers = providers
        self.routes: dict[str, tuple[tuple[_Entry, ...], Policy | None]] = {}
        for alias, spec in routes.items():
            route = spec if isinstance(spec, Route) else Route(spec)
            entries = tuple(self._entry(alias, item) for item in route.targets)
            self.routes[alias] = (entries, route.policy)

    def _entry(self, alias: str, item: str | Group) -> _Entry:
        names = [item] if isinstance(item, str) else list(item.weights)
        targets = []
        for name in names:
            target = self._direct(name)
            if target is None:
                raise ValueError(
                    f"route {alias!r}: target {name!r} must be '<provider>/<model>' with a provider "
                    f"among {sorted(self.providers)}"
                )
            targets.append(target)
        return _Entry(tuple(targets), item.weights if isinstance(item, Group) else None)

    def _direct(self, model: str) -> Target | None:
        provider_name, sep, upstream_model = model.partition("/")
        provider = self.providers.get(provider_name)
        if not sep or not upstream_model or provider is None or not provider.serves(upstream_model):
            return None
        return Target(provider_name, provider, upstream_model)

    def resolve(self, model: str) -> tuple[tuple[_Entry, ...], Policy | None]:
        """The entries for `model` and the route's own policy; 404 `model_not_found` when there are none.

        Every client-supplied model string passes here first, so this is where it is checked
        (`model_ids.check_model_id`): it goes into response headers and, for some providers, upstream URLs."""
        check_model_id(model)
        route = self.routes.get(model)
        if route is not None:
            return route
        target = self._direct(model)
        if target is None:
            raise GatewayError(
                f"The model '{model}' does not exist. Use '<provider>/<model>' with a provider among "
                f"{sorted(self.providers)}, or a route alias; GET /v1/models lists them.",
                status=404,
                param="model",
                code="model_not_found",
            )
        return (_Entry((target,), None),), None

    def plan(self, model: str, health: HealthBook, rng: random.Random, now: float) -> Plan:
        """Targets in the order to try them: groups shuffled by weight, then cooled-down targets moved to the
        end, so that they are tried last rather than never (a route whose healthy targets all fail still
        gets an answer from one that is recovering; Envoy's panic threshold does the same)."""
        entries, policy = self.resolve(model)
        order: list[Target] = []
        for entry in entries:
            if entry.weights is None:
                order.extend(entry.targets)
            else:
                by_name = {target.name: target for target in entry.targets}
                order.extend(by_name[name] for name in weighted_order(entry.weights, rng))
        unique = list({target.name: target for target in order}.values())  # in order of first occurrence
        healthy: list[Target] = []
        cooling: list[Target] = []
        for target in unique:
            (healthy if health.healthy(target.name, now) else cooling).append(target)
        return Plan(healthy + cooling, policy)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One step of a route: a single target, or a weighted group of deployments."""

    targets: tuple[Target, ...]
    weights: Mapping[str, float] | None
