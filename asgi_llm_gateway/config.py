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

Routes may also hold weighted groups, `pool = [{ group = { "a/m" = 3, "b/m" = 1 } }, "c/m"]`, or be a table
`{ targets = [...], policy = { ... } }`; a provider table may have a `policy = { ... }` of its own.

Every error names the file, the key and what is wrong.
"""

from __future__ import annotations

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

from .auth import AuthHook, Principal, api_keys
from .gateway import Gateway
from .policy import Group, Policy, Route
from .providers import PROVIDER_CLASSES, EchoProvider
from .providers.base import Provider

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "KEY_VARIABLES",
    "PROVIDER_TYPES",
    "ConfigError",
    "GatewayConfig",
    "from_environment",
    "load_config",
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

_ENV_REFERENCE = re.compile(r"^(?:env:(?P<a>[A-Za-z_][A-Za-z0-9_]*)|\$\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)\})$")
#: Keys of a provider table that are not constructor options (`policy` is taken out before, in `_parse`).
_TABLE_KEYS = ("type", "policy")
#: What an option must be, where a plainer word than the annotation's says it better.
_EXPECTED = {"timeout": "a number of seconds", "models": "a list of model ids"}


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

    def gateway(self) -> Gateway:
        options: dict[str, Any] = {}
        if self.max_body_size is not None:
            options["max_body_size"] = self.max_body_size
        if self.policy is not None:
            options["policy"] = self.policy
        return Gateway(
            providers=self.providers,
            routes=self.routes,
            auth=self.auth,
            provider_policies=self.provider_policies,
            **options,
        )


def from_environment(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """No config file: `echo`, plus every provider whose key is set in the environment."""
    environ = os.environ if environ is None else environ
    providers: dict[str, Provider] = {"echo": EchoProvider()}
    for kind, variables in KEY_VARIABLES.items():
        key = next((environ[name] for name in variables if environ.get(name)), None)
        if key:
            factory: Callable[..., Provider] = PROVIDER_TYPES[kind]
            providers[kind] = factory(api_key=key)
    return GatewayConfig(providers=providers)


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
    unknown = set(data) - {"providers", "routes", "auth", "server", "policy"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {sorted(unknown)}; "
            "expected providers, routes, auth, server, policy"
        )
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
    )
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
    factory: Callable[..., Provider] = PROVIDER_TYPES[kind]
    accepted = _options(PROVIDER_TYPES[kind])
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key in _TABLE_KEYS:
            continue
        if key not in accepted:
            raise ConfigError(
                f"{source}: {where}.{key}: unknown option for a {kind!r} provider; "
                f"one of {sorted([*accepted, *_TABLE_KEYS])}"
            )
        options[key] = _resolve(value, source, f"{where}.{key}", environ)
        shapes = accepted[key]
        if shapes is not None and not any(_fits(shape, options[key]) for shape in shapes):
            expected = _EXPECTED.get(key) or " or ".join(_describe(shape) for shape in shapes)
            raise ConfigError(f"{source}: {where}.{key}: expected {expected}")
    if kind == "openai-compatible" and not options.get("base_url"):
        raise ConfigError(f"{source}: {where}.base_url: required for an 'openai-compatible' provider")
    try:
        return factory(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


# -- a provider's options, from its constructor --------------------------------------------------------------

#: What TOML can give an option: a scalar type, or ("list"/"table", item type).
_Shape: TypeAlias = "type | tuple[str, type]"
_SCALARS: Mapping[type, tuple[str, str]] = {
    str: ("a string", "strings"),
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
}


@cache
def _options(provider: type[Provider]) -> Mapping[str, tuple[_Shape, ...] | None]:
    """Option name → the shapes TOML may give it (None: unchecked), from the keyword parameters of the
    provider's constructor, following `**options` up the classes. A parameter no TOML value can fill (a
    `client: httpx.AsyncClient`) is not an option."""
    options: dict[str, tuple[_Shape, ...] | None] = {}
    for cls in provider.__mro__:
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
                    f"{source}: {where}: expected a table with 'key', 'name' and optional 'models'"
                )
            models = entry.get("models")
            if models is not None and not (
                isinstance(models, list) and all(isinstance(m, str) for m in models)
            ):
                raise ConfigError(f"{source}: {where}.models: expected a list of model patterns")
            principals[_resolve(entry["key"], source, f"{where}.key", environ)] = Principal(
                name=str(entry.get("name", f"key-{index}")),
                allowed_models=tuple(models) if models is not None else None,
            )
    else:
        raise ConfigError(f"{source}: auth.keys: expected a table of key = name, or a list of tables")
    if not principals:
        raise ConfigError(f"{source}: auth.keys: no keys given (remove [auth] to run without client keys)")
    return api_keys(principals)
