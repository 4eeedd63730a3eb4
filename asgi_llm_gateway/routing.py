"""Model resolution: which provider serves a `model` string, and in what order targets are tried.

**Cache affinity.** A weighted group spreads requests over its deployments, which would spread one
conversation's turns too, and each deployment keeps its own prompt cache: every move re-writes the prefix
instead of reading it. So when `plan` is given the request, a weighted group orders its deployments by
weighted rendezvous hashing of the request's `affinity_key` instead of by chance: the same key always
prefers the same deployment (while it is healthy: a cooling one still goes last, and the key then prefers
the same second choice), different keys spread in proportion to the weights, and adding or removing a
deployment moves only the keys that preferred it. The key is, first found: `prompt_cache_key`; the
end user (`safety_identifier`, `user`, the Messages API's `metadata.user_id`); else a digest of the
prompt's start (system prompt or instructions, the tool names, the messages up to the first user turn),
which is the same for every turn of one conversation. Routes without weighted groups never compute it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import GatewayError
from .memo import remember
from .model_ids import check_model_id
from .policy import Group, HealthBook, Policy, Route, weighted_order
from .providers.base import Provider
from .wire import dumps

__all__ = ["Plan", "RouteSpec", "Router", "Target", "affine_order", "affinity_key"]

#: What a host may pass for one route: a target, a list of targets and groups, or a `Route`.
RouteSpec = str | Group | Sequence[str | Group] | Route


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream model on one provider."""

    provider_name: str
    provider: Provider
    model: str
    #: The client-facing name, `<provider>/<model>`: made once, read several times a call.
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{self.provider_name}/{self.model}")


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
        #: `<provider>/<model>` strings already checked and resolved (see `resolve`).
        self._direct_routes: dict[str, tuple[tuple[_Entry, ...], Policy | None]] = {}
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
        (`model_ids.check_model_id`): it goes into response headers and, for some providers, upstream URLs.
        A `<provider>/<model>` string that resolves is remembered, checked and all (see `memo.py`)."""
        known = self._direct_routes.get(model)
        if known is not None:
            return known
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
        return remember(self._direct_routes, model, ((_Entry((target,), None),), None))

    def plan(
        self,
        model: str,
        health: HealthBook,
        rng: random.Random,
        now: float,
        request: Mapping[str, Any] | None = None,
    ) -> Plan:
        """Targets in the order to try them: groups shuffled by weight (or, given the `request`, ordered by
        its cache affinity: see the module docstring), then cooled-down targets moved to the end, so that
        they are tried last rather than never (a route whose healthy targets all fail still gets an answer
        from one that is recovering; Envoy's panic threshold does the same)."""
        entries, policy = self.resolve(model)
        if len(entries) == 1 and entries[0].weights is None and len(entries[0].targets) == 1:
            return Plan([entries[0].targets[0]], policy)  # one target: tried whether cooling or not
        order: list[Target] = []
        key: str | None = None
        for entry in entries:
            if entry.weights is None:
                order.extend(entry.targets)
                continue
            if key is None and request is not None:
                key = affinity_key(request)
            names = (
                affine_order(entry.weights, key) if key is not None else weighted_order(entry.weights, rng)
            )
            by_name = {target.name: target for target in entry.targets}
            order.extend(by_name[name] for name in names)
        unique = list({target.name: target for target in order}.values())  # in order of first occurrence
        healthy: list[Target] = []
        cooling: list[Target] = []
        for target in unique:
            (healthy if health.healthy(target.name, now) else cooling).append(target)
        return Plan(healthy + cooling, policy)


def affinity_key(request: Mapping[str, Any]) -> str:
    """What keeps a conversation on one deployment: `prompt_cache_key`, else the end user, else a digest of
    the prompt's start (the same on every turn). Works on chat, Messages and Responses bodies."""
    cache_key = request.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return "key:" + cache_key
    metadata = request.get("metadata")
    user = request.get("safety_identifier") or request.get("user")
    if not user and isinstance(metadata, Mapping):
        user = metadata.get("user_id")
    if isinstance(user, str) and user:
        return "user:" + user
    items = request.get("messages") or request.get("input")
    head: list[Any] = []
    for item in (items if isinstance(items, list) else [items])[:_HEAD_ITEMS]:
        head.append(item)
        if isinstance(item, Mapping) and item.get("role") == "user":
            break  # system or developer messages, then the first user turn: fixed for the conversation
    tools = [_tool_name(tool) for tool in request.get("tools") or () if isinstance(tool, Mapping)]
    start = [request.get("system"), request.get("instructions"), tools, head]
    return "prompt:" + hashlib.sha256(dumps(start)).hexdigest()[:32]


#: How many leading messages (or input items) the prompt digest reads at most.
_HEAD_ITEMS = 4


def _tool_name(tool: Mapping[str, Any]) -> Any:
    function = tool.get("function")
    return function.get("name") if isinstance(function, Mapping) else tool.get("name")


def affine_order(weights: Mapping[str, float], key: str) -> list[str]:
    """The members in the order `key` prefers them: weighted rendezvous hashing (each member scores
    -ln(u)/weight, u uniform from a hash of key and member; lowest first), so a key's first choice is member
    m with probability weight(m)/total, and stays m as long as m is in the group."""

    def score(name: str) -> float:
        digest = hashlib.sha256(f"{key}\0{name}".encode()).digest()
        u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)  # in (0, 1)
        return -math.log(u) / weights[name]

    return sorted(weights, key=score)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One step of a route: a single target, or a weighted group of deployments."""

    targets: tuple[Target, ...]
    weights: Mapping[str, float] | None
