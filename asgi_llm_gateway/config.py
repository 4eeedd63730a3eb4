"""The standalone runner's configuration: a TOML file (or the environment alone) → a `Gateway`.

    [providers.claude]                 # the name clients use: model = "claude/<model id>"
    type = "anthropic"                 # see PROVIDER_TYPES
    api_key = "env:ANTHROPIC_API_KEY"  # "env:NAME" or "${NAME}" reads the environment; never commit keys
    base_url = "https://api.anthropic.com"
    timeout = 60
    models = ["claude-sonnet-4-5"]     # listed by GET /v1/models

    [routes]
    smart = ["claude/claude-sonnet-4-5", "openai/gpt-4.1"]   # tried in order

    [auth]
    keys = { "env:GATEWAY_KEY_ALICE" = "alice" }             # client key → principal name

    [policy]                           # retries, timeouts, cooldown (asgi_llm_gateway.policy.Policy)
    max_attempts = 3

    [response_store]                   # where /v1/responses keeps conversations (default: memory)
    type = "redis"                     # see RESPONSE_STORE_TYPES; "redis" needs the [redis] extra
    url = "env:REDIS_URL"              # every replica pointed at one Redis continues every chain
    ttl = 604800                       # seconds; the other options are the store class's own

    [limits]                           # asgi_llm_gateway.limits.LimitsHook (default backend: memory)
    backend = "redis"                  # see LIMITS_BACKENDS; "redis" needs the [redis] extra
    redis_url = "env:REDIS_URL"        # every replica pointed at one Redis enforces one limit
    timeout = 0.25                     # the other options are the backend's (lease_ttl, prefix, hash_tag)
    fail_open = true                   # Redis down or slow: admit unchecked (false: 503)
    max_output_tokens = 4096           # reserved for requests without a bound; or { "openai/o3*" = 100000 }
    [[limits.rules]]                   # asgi_llm_gateway.limits.Rule: kind, amount, per, period, models, …
    kind = "requests"
    amount = 60

    [[budgets]]                        # a spend rule: amount in the prices' currency
    amount = "100.00"
    per = "team"                       # from the keys' metadata: keys = [{ …, metadata = { team = "red" } }]
    period = "month"

    [prices]                           # usage records carry their cost; budgets are charged it
    currency = "USD"
    defaults = true                    # the host's first, then asgi_llm_gateway.pricing.DEFAULT_PRICES
    [prices.models."openai/gpt-5"]     # per 1M tokens: input, output, cached_input, cache_write, reasoning
    input = 1.25
    output = 10.0

    [request_policy]                   # asgi_llm_gateway.rewrite.RequestPolicy, on every request
    max_output_tokens = 8192           # caps max_tokens / max_completion_tokens / max_output_tokens
    force_user = true                  # the upstream's end-user field is the key's principal name

    [observability]                    # the runner's --log-requests, --metrics, --otel (flags win)
    logs = true                        # one JSON line per request (and per failed attempt) on stderr
    include_content = false            # true: prompts and error messages in those lines too
    metrics = "/metrics"               # Prometheus scrape path beside the gateway (true: /metrics)
    otel = true                        # OTLP/HTTP traces and metrics, set by the OTEL_* variables

Routes may also hold weighted groups, `pool = [{ group = { "a/m" = 3, "b/m" = 1 } }, "c/m"]`, or be a table
`{ targets = [...], policy = { ... } }`; a provider table may have a `policy = { ... }` of its own.

Without a config file, `ASGI_LLM_GATEWAY_RESPONSE_STORE_URL=redis://…` selects the Redis store.

Every error names the file, the key and what is wrong.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias, Union
from urllib.parse import urlsplit

from .auth import AuthHook, Principal, api_keys
from .gateway import Gateway
from .limits import LimitsHook, Rule
from .observability.runner import DEFAULT_METRICS_PATH, Observability, check_metrics_path
from .pipeline.hooks import Hooks
from .policy import Group, Policy, Route
from .pricing import DEFAULT_PRICES, Price
from .providers import PROVIDER_CLASSES, EchoProvider
from .providers.base import Provider
from .rewrite import RequestPolicy
from .state import ResponseStore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "KEY_VARIABLES",
    "LIMITS_BACKENDS",
    "PROVIDER_TYPES",
    "RESPONSE_STORE_TYPES",
    "RESPONSE_STORE_VARIABLE",
    "ConfigError",
    "GatewayConfig",
    "describe_limits",
    "describe_response_store",
    "from_environment",
    "load_config",
    "redact_url",
]

#: A provider table's `type` → its class (asgi_llm_gateway.providers.PROVIDER_CLASSES). The options a table
#: accepts are the class's constructor parameters that TOML can express (see `_options`).
PROVIDER_TYPES: Mapping[str, type[Provider]] = PROVIDER_CLASSES


def _key_variables(provider: type[Provider]) -> tuple[str, ...]:
    variables: Callable[[], tuple[str, ...]] | None = getattr(provider, "key_variables", None)
    return variables() if variables is not None else ()


#: Providers served without a config file, each under its `type`, when one of its key variables is set:
#: type → the environment variables that may hold its key, in the order the provider reads them.
KEY_VARIABLES: Mapping[str, tuple[str, ...]] = {
    kind: variables for kind, provider in PROVIDER_TYPES.items() if (variables := _key_variables(provider))
}

#: `[response_store]`'s `type` → its class, as "module:name": imported only when chosen (the Redis store
#: needs the `[redis]` extra, named like its type). Its options are the class's constructor parameters, as for
#: providers.
RESPONSE_STORE_TYPES: Mapping[str, str] = {
    "memory": "asgi_llm_gateway.state.memory:MemoryResponseStore",
    "redis": "asgi_llm_gateway.state.redis:RedisResponseStore",
}
#: Without a config file: the Redis URL that makes the runner keep /v1/responses state in that Redis.
RESPONSE_STORE_VARIABLE = "ASGI_LLM_GATEWAY_RESPONSE_STORE_URL"
#: Options a store type cannot do without, and the URL schemes its `url` may have (checked here: the store
#: itself reads the URL only when it first connects, long after start-up).
_STORE_REQUIRED: Mapping[str, tuple[str, ...]] = {"redis": ("url",)}
_STORE_SCHEMES: Mapping[str, tuple[str, ...]] = {"redis": ("redis", "rediss", "unix")}

#: A `password=` query parameter, as redis-py reads it (`redact_url` hides it).
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&]password=)[^&#]*")
_ENV_REFERENCE = re.compile(r"^(?:env:(?P<a>[A-Za-z_][A-Za-z0-9_]*)|\$\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)\})$")
#: Keys of a provider table that are not constructor options (`policy` is taken out before, in `_parse`).
_TABLE_KEYS = ("type", "policy")
#: What an option must be, where a plainer word than the annotation's says it better.
_EXPECTED = {"timeout": "a number of seconds", "ttl": "a number of seconds", "models": "a list of model ids"}


class ConfigError(Exception):
    """A configuration problem; the message names the file and the key."""


@dataclass
class GatewayConfig:
    """What the runner needs: the gateway's arguments and where to listen."""

    providers: dict[str, Provider]
    routes: dict[str, Route] = field(default_factory=dict)
    auth: AuthHook | None = None
    policy: Policy | None = None
    provider_policies: dict[str, Policy] = field(default_factory=dict)
    max_body_size: int | None = None
    host: str | None = None
    port: int | None = None
    #: None: the gateway's default (a `MemoryResponseStore`). The gateway closes it on shutdown.
    response_store: ResponseStore | None = None
    #: `[limits]` and `[[budgets]]` as one hook; None without them.
    limits: LimitsHook | None = None
    #: `[prices]`: what usage costs (`UsageRecord.cost`, and the budgets); None: the limits' default prices,
    #: and no cost in usage records.
    prices: dict[str, Price] | None = None
    #: `[request_policy]`: each request rewritten before routing; None without the table.
    rewrite: RequestPolicy | None = None
    #: `[observability]`: what the runner builds beside the gateway (see `observability.runner`).
    observability: Observability = field(default_factory=Observability)

    def gateway(self, hooks: Sequence[Hooks] = ()) -> Gateway:
        """The gateway; `hooks` (the runner's observability) run after the limits."""
        options: dict[str, Any] = {}
        chain = [*([self.limits] if self.limits is not None else []), *hooks]
        if chain:
            options["hooks"] = chain
        if self.max_body_size is not None:
            options["max_body_size"] = self.max_body_size
        if self.policy is not None:
            options["policy"] = self.policy
        return Gateway(
            providers=self.providers,
            routes=self.routes,
            auth=self.auth,
            provider_policies=self.provider_policies,
            response_store=self.response_store,
            prices=self.prices,
            rewrite=self.rewrite,
            **options,
        )


def from_environment(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """No config file: `echo`, plus every provider whose key is set in the environment; /v1/responses state
    in the Redis named by `ASGI_LLM_GATEWAY_RESPONSE_STORE_URL` when it is set, else in memory."""
    environ = os.environ if environ is None else environ
    providers: dict[str, Provider] = {"echo": EchoProvider()}
    for kind, variables in KEY_VARIABLES.items():
        key = next((environ[name] for name in variables if environ.get(name)), None)
        if key:
            factory: Callable[..., Provider] = PROVIDER_TYPES[kind]
            providers[kind] = factory(api_key=key)
    store = None
    url = environ.get(RESPONSE_STORE_VARIABLE)
    if url:
        source, where = "environment", RESPONSE_STORE_VARIABLE
        store_class = _store_class("redis", source, where)
        _check_url("redis", url, source, where)
        store = _build(store_class, {"url": url}, source, where)
    return GatewayConfig(providers=providers, response_store=store)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and check a TOML config file."""
    environ = os.environ if environ is None else environ
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _parse(data, source, environ)


def _parse(data: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> GatewayConfig:
    sections = (
        "providers",
        "routes",
        "auth",
        "server",
        "policy",
        "response_store",
        "limits",
        "budgets",
        "prices",
        "request_policy",
        "observability",
    )
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}; expected {', '.join(sections)}")
    providers_table = _table(data, "providers", source)
    providers: dict[str, Provider] = {}
    provider_policies: dict[str, Policy] = {}
    for name in providers_table:
        table = dict(_table(providers_table, name, source, f"providers.{name}"))
        if "policy" in table:
            provider_policies[name] = _policy(table.pop("policy"), source, f"providers.{name}.policy")
        providers[name] = _provider(name, table, source, environ)
    if not providers:
        providers = {"echo": EchoProvider()}
    routes = {
        alias: _route(spec, source, f"routes.{alias}")
        for alias, spec in _table(data, "routes", source).items()
    }
    config = GatewayConfig(
        providers=providers,
        routes=routes,
        auth=_auth(data, source, environ),
        policy=_policy(data["policy"], source, "policy") if "policy" in data else None,
        provider_policies=provider_policies,
        response_store=_response_store(data, source, environ),
    )
    config.prices = _prices(data, source)
    config.limits = _limits(data, config.prices, source, environ)
    config.rewrite = _request_policy(data, source)
    config.observability = _observability(data, source)
    server = _table(data, "server", source)
    for key, value in server.items():
        if key in ("host",) and isinstance(value, str):
            config.host = value
        elif key in ("port", "max_body_size") and isinstance(value, int) and value > 0:
            setattr(config, key, value)
        else:
            raise ConfigError(f"{source}: server.{key}: unknown key or wrong type")
    try:
        config.gateway()  # checks routes against providers
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def _policy(value: Any, source: str, where: str) -> Policy:
    """A `Policy` from a table of its fields (see asgi_llm_gateway.policy.Policy)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where}: expected a table")
    known = {f.name: f for f in fields(Policy)}
    options: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            raise ConfigError(f"{source}: {where}.{key}: unknown policy option; one of {sorted(known)}")
        if key == "fallback_on":
            if not isinstance(item, list) or not all(isinstance(code, str) for code in item):
                raise ConfigError(f"{source}: {where}.fallback_on: expected a list of error codes")
            item = frozenset(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ConfigError(f"{source}: {where}.{key}: expected a number")
        options[key] = item
    try:
        return Policy(**options)
    except ValueError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


def _route(spec: Any, source: str, where: str) -> Route:
    """A route: `"p/m"`, a list of targets and `{ group = { "p/m" = weight } }` tables, or a table with
    `targets` and `policy`."""
    policy = None
    if isinstance(spec, dict) and "targets" in spec:
        unknown = set(spec) - {"targets", "policy"}
        if unknown:
            raise ConfigError(
                f"{source}: {where}.{sorted(unknown)[0]}: unknown key; expected targets, policy"
            )
        if "policy" in spec:
            policy = _policy(spec["policy"], source, f"{where}.policy")
        spec = spec["targets"]
    items = [spec] if isinstance(spec, (str, dict)) else spec
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: {where}: expected a target string or a list of targets")
    targets: list[str | Group] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            targets.append(item)
        elif isinstance(item, dict) and set(item) == {"group"} and isinstance(item["group"], dict):
            try:
                targets.append(Group(dict(item["group"])))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{source}: {where}[{index}].group: {exc}") from None
        else:
            raise ConfigError(
                f"{source}: {where}[{index}]: expected a target string or {{ group = {{ ... }} }}"
            )
    return Route(targets, policy)


def _table(data: Mapping[str, Any], key: str, source: str, where: str | None = None) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where or key}: expected a table")
    return value


def _resolve(value: Any, source: str, where: str, environ: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    match = _ENV_REFERENCE.match(value)
    if match is None:
        return value
    variable = match.group("a") or match.group("b")
    if variable not in environ:
        raise ConfigError(f"{source}: {where}: environment variable {variable} is not set")
    return environ[variable]


def _provider(name: str, table: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> Provider:
    where = f"providers.{name}"
    if "/" in name:
        raise ConfigError(f"{source}: {where}: a provider name cannot contain '/'")
    kind = table.get("type", name)
    if not isinstance(kind, str) or kind not in PROVIDER_TYPES:
        raise ConfigError(
            f"{source}: {where}.type: unknown provider type {kind!r}; one of {sorted(PROVIDER_TYPES)}"
        )
    what = f"a {kind!r} provider"
    options = _constructor_options(PROVIDER_TYPES[kind], what, table, _TABLE_KEYS, source, where, environ)
    if kind == "openai-compatible" and not options.get("base_url"):
        raise ConfigError(f"{source}: {where}.base_url: required for an 'openai-compatible' provider")
    provider: Provider = _build(PROVIDER_TYPES[kind], options, source, where)
    return provider


def _constructor_options(
    cls: type,
    what: str,
    table: Mapping[str, Any],
    table_keys: tuple[str, ...],
    source: str,
    where: str,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """The keyword arguments for `cls` (described to the user as `what`) from a table: environment
    references resolved, each value checked against the constructor's annotation; `table_keys` are the
    table's own keys, not options."""
    accepted = _options(cls)
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in table_keys:
            continue
        if key not in accepted:
            raise ConfigError(
                f"{source}: {where}.{key}: unknown option for {what}; "
                f"one of {sorted([*accepted, *table_keys])}"
            )
        options[key] = _resolve(value, source, f"{where}.{key}", environ)
        shapes = accepted[key]
        if shapes is not None and not any(_fits(shape, options[key]) for shape in shapes):
            expected = _EXPECTED.get(key) or " or ".join(_describe(shape) for shape in shapes)
            raise ConfigError(f"{source}: {where}.{key}: expected {expected}")
    return options


def _build(cls: Callable[..., Any], options: Mapping[str, Any], source: str, where: str) -> Any:
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


# -- the response store ------------------------------------------------------------------------------------


def _response_store(data: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> ResponseStore | None:
    """The `[response_store]` table's store; None without the table (the gateway's default, in memory)."""
    where = "response_store"
    if where not in data:
        return None
    table = _table(data, where, source)
    kind = table.get("type", "memory")
    if not isinstance(kind, str) or kind not in RESPONSE_STORE_TYPES:
        raise ConfigError(
            f"{source}: {where}.type: unknown store type {kind!r}; one of {sorted(RESPONSE_STORE_TYPES)}"
        )
    store_class = _store_class(kind, source, f"{where}.type")
    options = _constructor_options(store_class, f"a {kind!r} store", table, ("type",), source, where, environ)
    for key in _STORE_REQUIRED.get(kind, ()):
        if key not in options:
            raise ConfigError(f"{source}: {where}.{key}: required for a {kind!r} store")
    for key, value in options.items():
        if key == "url":
            _check_url(kind, value, source, f"{where}.url")
        elif isinstance(value, (int, float)) and not value > 0:  # sizes and seconds
            raise ConfigError(f"{source}: {where}.{key}: expected a positive number")
    store: ResponseStore = _build(store_class, options, source, where)
    return store


def _store_class(kind: str, source: str, where: str) -> type:
    return _imported(RESPONSE_STORE_TYPES[kind], kind, "store", source, where)


def _imported(path: str, kind: str, what: str, source: str, where: str) -> type:
    """The class at `path` ("module:name") of a `kind` (named like the extra it needs) of `what`."""
    module, _, name = path.partition(":")
    try:
        found: type = getattr(importlib.import_module(module), name)
    except ImportError:
        raise ConfigError(
            f"{source}: {where}: a {kind!r} {what} needs the `{kind}` package: "
            f"pip install 'asgi-llm-gateway[{kind}]'"
        ) from None
    return found


def _check_url(kind: str, url: str, source: str, where: str) -> None:
    schemes = _STORE_SCHEMES.get(kind, ())
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # a malformed address, "redis://[::1"
        scheme = ""
    if scheme not in schemes:
        shown = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(f"{source}: {where}: expected a URL starting with {shown}, not {redact_url(url)!r}")


def redact_url(url: str) -> str:
    """`url` with its password hidden, for logs: `redis://:secret@host` → `redis://:***@host`; a
    `password=` query parameter (which redis-py also reads) likewise."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "***"
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        url = url.replace(netloc, f"{userinfo.partition(':')[0]}:***@{host}", 1)
    return _QUERY_PASSWORD.sub(r"\g<name>***", url)


def describe_response_store(store: ResponseStore) -> str:
    """The store as the runner's start-up line names it: its `type` in RESPONSE_STORE_TYPES and its URL
    (password hidden) if it has one."""
    return _described(store, RESPONSE_STORE_TYPES)


def _described(built: object, kinds: Mapping[str, str]) -> str:
    """`built` named by its kind in `kinds` (else its class), with its URL (password hidden) if it has one."""
    path = f"{type(built).__module__}:{type(built).__qualname__}"
    kind = next((kind for kind, where in kinds.items() if where == path), type(built).__name__)
    url = getattr(built, "url", None)
    return f"{kind} ({redact_url(url)})" if isinstance(url, str) else kind


# -- limits, budgets and prices ----------------------------------------------------------------------------

#: `[limits]`'s `backend` → its limiter class, as "module:name" (the Redis one needs the `[redis]` extra).
LIMITS_BACKENDS: Mapping[str, str] = {
    "memory": "asgi_llm_gateway.limits.memory:MemoryLimiter",
    "redis": "asgi_llm_gateway.limits.redis:RedisLimiter",
}
#: `[limits]` keys that configure the hook; every other key (but `backend`, `rules`) is the limiter's option.
_HOOK_OPTIONS = ("fail_open", "warn_every", "max_output_tokens")
#: A rule's keys (`[[limits.rules]]`; a `[[budgets]]` entry is a spend rule: it has no `kind`).
_RULE_KEYS = ("kind", "amount", "per", "period", "models", "principals", "name")
#: A `[prices.models."<pattern>"]` table's keys (`Price`'s fields but the currency, which `[prices]` sets).
_PRICE_KEYS = ("input", "output", "cached_input", "cache_write", "reasoning")


def _limits(
    data: Mapping[str, Any], prices: Mapping[str, Price] | None, source: str, environ: Mapping[str, str]
) -> LimitsHook | None:
    """The `LimitsHook` of `[limits]` (its `[[limits.rules]]`) and `[[budgets]]`; None without either."""
    if "limits" not in data and "budgets" not in data:
        return None
    table = dict(_table(data, "limits", source))
    rules = [
        _rule(entry, None, source, f"limits.rules[{index}]")
        for index, entry in enumerate(_entries(table.pop("rules", []), source, "limits.rules"))
    ]
    rules += [
        _rule(entry, "spend", source, f"budgets[{index}]")
        for index, entry in enumerate(_entries(data.get("budgets", []), source, "budgets"))
    ]
    if not rules:
        raise ConfigError(f"{source}: limits: no [[limits.rules]] and no [[budgets]] (remove [limits])")
    kind = table.pop("backend", "memory")
    if not isinstance(kind, str) or kind not in LIMITS_BACKENDS:
        raise ConfigError(
            f"{source}: limits.backend: unknown backend {kind!r}; one of {sorted(LIMITS_BACKENDS)}"
        )
    hook_options = {key: table.pop(key) for key in _HOOK_OPTIONS if key in table}
    if "redis_url" in table:  # the [limits] table's name for it: `url` alone would not say which
        table["url"] = table.pop("redis_url")
    limiter_class = _imported(LIMITS_BACKENDS[kind], kind, "limits backend", source, "limits.backend")
    what = f"a {kind!r} limits backend"
    options = _constructor_options(limiter_class, what, table, (), source, "limits", environ)
    for key, value in options.items():
        if key == "url":
            _check_url("redis", value, source, "limits.redis_url")
        elif isinstance(value, (int, float)) and not value > 0:
            raise ConfigError(f"{source}: limits.{key}: expected a positive number")
    limiter = _build(limiter_class, options, source, "limits")
    hook_options.update(_hook_options(hook_options, source))
    try:
        return LimitsHook(limiter, rules, prices=prices, **hook_options)
    except ValueError as exc:
        raise ConfigError(f"{source}: limits: {exc}") from None


def _entries(value: Any, source: str, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise ConfigError(f"{source}: {where}: expected a list of tables ([[{where}]])")
    return value


def _rule(entry: Mapping[str, Any], kind: str | None, source: str, where: str) -> Rule:
    """One `Rule` from its table; `kind` is given for a budget (always spend)."""
    _check_keys(entry, _RULE_KEYS if kind is None else _RULE_KEYS[1:], source, where)
    _require(entry, ("kind", "amount") if kind is None else ("amount",), source, where)
    options = dict(entry)
    if kind is not None:
        options["kind"] = kind
    amount = options["amount"]
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        raise ConfigError(f'{source}: {where}.amount: expected a number (money as a string: "100.00")')
    period = options.get("period")
    if period is not None and (isinstance(period, bool) or not isinstance(period, (int, float, str))):
        raise ConfigError(f'{source}: {where}.period: expected seconds, "day" or "month"')
    for key in ("per", "name", "kind"):
        if key in options and not isinstance(options[key], str):
            raise ConfigError(f"{source}: {where}.{key}: expected a string")
    for key in ("models", "principals"):
        if key in options:
            patterns = options[key]
            if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise ConfigError(f"{source}: {where}.{key}: expected a list of glob patterns")
            options[key] = tuple(patterns)
    try:
        return Rule(**options)
    except ValueError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


def _hook_options(options: Mapping[str, Any], source: str) -> dict[str, Any]:
    """`[limits]`'s hook options, checked."""
    checked: dict[str, Any] = {}
    for key, value in options.items():
        where = f"limits.{key}"
        if key == "fail_open":
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {where}: expected true or false")
        elif key == "warn_every":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{source}: {where}: expected a positive number of seconds")
        elif isinstance(value, dict):
            if not all(_positive_int(maximum) for maximum in value.values()):
                raise ConfigError(f"{source}: {where}: expected positive integers by model pattern")
        elif not _positive_int(value):
            raise ConfigError(
                f"{source}: {where}: expected a positive integer, or a table of model pattern = integer"
            )
        checked[key] = value
    return checked


def _check_keys(table: Mapping[str, Any], keys: Sequence[str], source: str, where: str) -> None:
    unknown = set(table) - set(keys)
    if unknown:
        raise ConfigError(f"{source}: {where}.{sorted(unknown)[0]}: unknown key; one of {', '.join(keys)}")


def _require(table: Mapping[str, Any], keys: Sequence[str], source: str, where: str) -> None:
    for key in keys:
        if key not in table:
            raise ConfigError(f"{source}: {where}.{key}: required")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _prices(data: Mapping[str, Any], source: str) -> dict[str, Price] | None:
    """`[prices]`: the host's prices by model pattern (first in the file, first to match), then the
    defaults unless `defaults = false`; None without the table."""
    if "prices" not in data:
        return None
    table = _table(data, "prices", source)
    unknown = set(table) - {"currency", "defaults", "models"}
    if unknown:
        raise ConfigError(
            f"{source}: prices.{sorted(unknown)[0]}: unknown key; one of currency, defaults, models"
        )
    currency = table.get("currency", "USD")
    if not isinstance(currency, str) or not currency:
        raise ConfigError(f'{source}: prices.currency: expected a currency code, e.g. "USD"')
    defaults = table.get("defaults", True)
    if not isinstance(defaults, bool):
        raise ConfigError(f"{source}: prices.defaults: expected true or false")
    if defaults and currency != "USD":
        raise ConfigError(
            f"{source}: prices.currency: the default prices are in USD; with {currency!r}, set defaults = "
            "false"
        )
    prices: dict[str, Price] = {}
    for pattern, entry in _table(table, "models", source, "prices.models").items():
        where = f"prices.models.{pattern}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: {where}: expected a table of prices per million tokens")
        unknown = set(entry) - set(_PRICE_KEYS)
        if unknown:
            raise ConfigError(
                f"{source}: {where}.{sorted(unknown)[0]}: unknown key; one of {', '.join(_PRICE_KEYS)}"
            )
        for key in ("input", "output"):
            if key not in entry:
                raise ConfigError(f"{source}: {where}.{key}: required")
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ConfigError(f"{source}: {where}.{key}: expected a number (per million tokens)")
        try:
            prices[pattern] = Price(**entry, currency=currency)
        except ValueError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None
    if defaults:
        prices.update({pattern: price for pattern, price in DEFAULT_PRICES.items() if pattern not in prices})
    return prices


def _request_policy(data: Mapping[str, Any], source: str) -> RequestPolicy | None:
    """`[request_policy]`: `max_output_tokens` caps every request's output, `force_user` names the principal
    to the upstream (see `asgi_llm_gateway.rewrite`)."""
    if "request_policy" not in data:
        return None
    table = _table(data, "request_policy", source)
    _check_keys(table, ("max_output_tokens", "force_user"), source, "request_policy")
    if "max_output_tokens" in table and not _positive_int(table["max_output_tokens"]):
        raise ConfigError(f"{source}: request_policy.max_output_tokens: expected a positive integer")
    if not isinstance(table.get("force_user", False), bool):
        raise ConfigError(f"{source}: request_policy.force_user: expected true or false")
    return RequestPolicy(**table)


_OBSERVABILITY_SWITCHES = ("logs", "include_content", "otel")


def _observability(data: Mapping[str, Any], source: str) -> Observability:
    """`[observability]`: `logs`, `include_content` and `otel` are true or false; `metrics` is the scrape
    path (true: /metrics, false: none)."""
    table = _table(data, "observability", source)
    _check_keys(table, ("logs", "include_content", "metrics", "otel"), source, "observability")
    for key in _OBSERVABILITY_SWITCHES:
        if not isinstance(table.get(key, False), bool):
            raise ConfigError(f"{source}: observability.{key}: expected true or false")
    metrics = table.get("metrics", False)
    if metrics is True:
        metrics = DEFAULT_METRICS_PATH
    elif metrics is False:
        metrics = None
    elif not isinstance(metrics, str):
        raise ConfigError(f'{source}: observability.metrics: expected a path like "{DEFAULT_METRICS_PATH}"')
    elif problem := check_metrics_path(metrics):
        raise ConfigError(f"{source}: observability.metrics: {problem}")
    switches = {key: table[key] for key in _OBSERVABILITY_SWITCHES if key in table}
    return Observability(metrics=metrics, **switches)


def describe_limits(hook: LimitsHook) -> str:
    """The limits as the runner's start-up line names them: the rules by kind, and where they are kept
    (a Redis URL with its password hidden)."""
    counts: dict[str, int] = {}
    for rule in hook.rules:
        counts[rule.kind] = counts.get(rule.kind, 0) + 1
    kinds = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    fails = "fail-open" if hook.fail_open else "fail-closed"
    return f"limits ({kinds}) in {_described(hook.limiter, LIMITS_BACKENDS)}, {fails}"


# -- a provider's (or store's) options, from its constructor -------------------------------------------

#: What TOML can give an option: a scalar type, or ("list"/"table", item type).
_Shape: TypeAlias = "type | tuple[str, type]"
_SCALARS: Mapping[type, tuple[str, str]] = {
    str: ("a string", "strings"),
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
}


@cache
def _options(built: type) -> Mapping[str, tuple[_Shape, ...] | None]:
    """Option name → the shapes TOML may give it (None: unchecked), from the keyword parameters of the
    constructor of a provider (or store), following `**options` up the classes. A parameter no TOML value
    can fill (a `client: httpx.AsyncClient`) is not an option."""
    options: dict[str, tuple[_Shape, ...] | None] = {}
    for cls in built.__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init, eval_str=True).parameters.values())[1:]  # after self
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                shapes = _shapes(parameter.annotation)
                if shapes != () and parameter.name not in options:
                    options[parameter.name] = shapes
        if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
            break
    return options


def _shapes(annotation: Any) -> tuple[_Shape, ...] | None:
    """The TOML shapes an annotation allows: () when none (a class TOML cannot build), None when the
    annotation says nothing checkable (missing, `Any`, a construct this reader does not know)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is collections.abc.Callable:  # a clock, a factory: code, not configuration
        return ()
    if origin is Union or origin is types.UnionType:
        parts = [_shapes(argument) for argument in arguments if argument is not type(None)]
        if any(part is None for part in parts):
            return None
        return tuple(shape for part in parts for shape in part or ())
    if annotation in _SCALARS:
        return (annotation,)
    if isinstance(origin, type) and arguments and arguments[-1] in _SCALARS:
        if issubclass(origin, Mapping):
            return (("table", arguments[-1]),)
        if issubclass(origin, Sequence) and not issubclass(origin, str):
            return (("list", arguments[-1]),)
    if origin is None and isinstance(annotation, type) and annotation is not object:
        return ()
    return None


def _fits(shape: _Shape, value: Any) -> bool:
    if isinstance(shape, tuple):
        container, item = shape
        if container == "table":
            return isinstance(value, dict) and all(_fits(item, v) for v in value.values())
        return isinstance(value, list) and all(_fits(item, v) for v in value)
    if shape is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if shape is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, shape)


def _describe(shape: _Shape) -> str:
    if isinstance(shape, tuple):
        container, item = shape
        return f"a {container} of {_SCALARS[item][1]}"
    return _SCALARS[shape][0]


def _auth(data: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> AuthHook | None:
    table = _table(data, "auth", source)
    if not table:
        return None
    unknown = set(table) - {"keys"}
    if unknown:
        raise ConfigError(f"{source}: auth.{sorted(unknown)[0]}: unknown key; expected 'keys'")
    keys = table.get("keys")
    principals: dict[str, Any] = {}
    if isinstance(keys, dict):
        for key, name in keys.items():
            if not isinstance(name, str):
                raise ConfigError(f"{source}: auth.keys: each key maps to a principal name (a string)")
            principals[_resolve(key, source, "auth.keys", environ)] = name
    elif isinstance(keys, list):
        for index, entry in enumerate(keys):
            where = f"auth.keys[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise ConfigError(
                    f"{source}: {where}: expected a table with 'key', 'name' and optional 'models' and "
                    "'metadata'"
                )
            models = entry.get("models")
            if models is not None and not (
                isinstance(models, list) and all(isinstance(m, str) for m in models)
            ):
                raise ConfigError(f"{source}: {where}.models: expected a list of model patterns")
            metadata = entry.get("metadata", {})
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise ConfigError(f'{source}: {where}.metadata: expected a table of strings (team = "red")')
            principals[_resolve(entry["key"], source, f"{where}.key", environ)] = Principal(
                name=str(entry.get("name", f"key-{index}")),
                allowed_models=tuple(models) if models is not None else None,
                metadata=metadata,
            )
    else:
        raise ConfigError(f"{source}: auth.keys: expected a table of key = name, or a list of tables")
    if not principals:
        raise ConfigError(f"{source}: auth.keys: no keys given (remove [auth] to run without client keys)")
    return api_keys(principals)
