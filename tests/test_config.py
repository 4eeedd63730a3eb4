"""The runner's TOML config: what a good file builds, and that every mistake names the file and the key."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from asgi_llm_gateway.auth import Principal
from asgi_llm_gateway.config import (
    KEY_VARIABLES,
    PROVIDER_TYPES,
    ConfigError,
    from_environment,
    load_config,
)
from asgi_llm_gateway.policy import Group, Policy
from asgi_llm_gateway.providers import (
    AnthropicProvider,
    EchoProvider,
    GeminiProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
)
from asgi_llm_gateway.providers.http import HTTPProvider

GOOD = """
[providers.claude]
type = "anthropic"
api_key = "env:TEST_ANTHROPIC_KEY"
models = ["claude-sonnet-4-5"]
timeout = 30
policy = { max_attempts = 2, cooldown = 5 }

[providers.local]
type = "openai-compatible"
base_url = "http://127.0.0.1:11434/v1"

[providers.openai]
api_key = "${TEST_OPENAI_KEY}"

[routes]
smart = ["claude/claude-sonnet-4-5", "openai/gpt-4.1"]
pool = [{ group = { "openai/gpt-4.1" = 3, "local/llama3" = 1 } }]
careful = { targets = ["openai/gpt-4.1"], policy = { fallback_on = ["context_length_exceeded"] } }

[auth]
keys = [{ key = "env:TEST_GATEWAY_KEY", name = "alice", models = ["smart"] }]

[policy]
max_attempts = 4

[server]
port = 9000
"""
ENV = {"TEST_ANTHROPIC_KEY": "sk-ant-test", "TEST_OPENAI_KEY": "sk-openai-test", "TEST_GATEWAY_KEY": "sk-gw"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_a_full_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), ENV)
    claude = config.providers["claude"]
    assert isinstance(claude, AnthropicProvider) and claude.api_key == "sk-ant-test"
    assert isinstance(config.providers["local"], OpenAICompatibleProvider)
    openai_provider = config.providers["openai"]
    assert isinstance(openai_provider, OpenAIProvider) and openai_provider.api_key == "sk-openai-test"
    assert config.provider_policies == {"claude": Policy(max_attempts=2, cooldown=5)}
    assert config.policy == Policy(max_attempts=4)
    assert config.routes["pool"].targets == (Group({"openai/gpt-4.1": 3, "local/llama3": 1}),)
    careful = config.routes["careful"].policy
    assert careful is not None and careful.fallback_on == frozenset({"context_length_exceeded"})
    assert config.port == 9000
    gateway = config.gateway()
    assert set(gateway.router.routes) == {"smart", "pool", "careful"}
    assert gateway.policy_for("claude").max_attempts == 2
    assert gateway.policy_for("openai").max_attempts == 4


@pytest.mark.anyio
async def test_auth_keys_from_the_environment(tmp_path: Path) -> None:
    from starlette.requests import Request

    config = load_config(write(tmp_path, GOOD), ENV)
    assert config.auth is not None
    scope = {"type": "http", "headers": [(b"authorization", b"Bearer sk-gw")]}
    principal = await config.auth(Request(scope))
    assert principal == Principal("alice", allowed_models=("smart",))
    assert (
        await config.auth(Request({"type": "http", "headers": [(b"authorization", b"Bearer nope")]})) is None
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[providers.x]\ntype = 'nope'", "providers.x.type: unknown provider type 'nope'"),
        (
            "[providers.x]\ntype = 'openai'\napi_key = 'env:MISSING_VAR_X'",
            "providers.x.api_key: environment variable MISSING_VAR_X is not set",
        ),
        ("[providers.x]\ntype = 'openai'\ncolour = 'red'", "providers.x.colour: unknown option"),
        ("[providers.x]\ntype = 'openai-compatible'", "providers.x.base_url: required"),
        ("[providers.x]\ntype = 'openai'\ntimeout = 'soon'", "providers.x.timeout: expected a number"),
        (
            "[providers.x]\ntype = 'openai'\nmodels = 'gpt-4.1'",
            "providers.x.models: expected a list of model",
        ),
        ("[providers.x]\ntype = 'openai'\nbase_url = 5", "providers.x.base_url: expected a string"),
        ("[providers.x]\ntype = 'openai'\nheaders = { a = 1 }", "providers.x.headers: expected a table of"),
        (
            "[providers.x]\ntype = 'anthropic'\ndefault_max_tokens = 1.5",
            "default_max_tokens: expected an integer",
        ),
        ("[providers.x]\ntype = 'gemini'\napi_version = 1", "providers.x.api_version: expected a string"),
        ("[providers.x]\ntype = ['openai']", "providers.x.type: unknown provider type"),
        ("[providers.x]\ntype = 'echo'\napi_key = 'k'", "providers.x.api_key: unknown option for a 'echo'"),
        ("[routes]\nsmart = ['nobody/model']", "route 'smart': target 'nobody/model'"),
        ("[routes]\nsmart = [1]", "routes.smart[0]: expected a target string"),
        ("[routes]\npool = [{ group = { 'echo/a' = -1 } }]", "routes.pool[0].group: a group needs"),
        ("[policy]\nmax_atempts = 2", "policy.max_atempts: unknown policy option"),
        ("[policy]\nmax_attempts = 0", "policy: max_attempts must be at least 1"),
        ("[auth]\nkeys = 'sk'", "auth.keys: expected a table"),
        ("[server]\nport = 'x'", "server.port: unknown key or wrong type"),
        ("[extra]\nx = 1", "unknown section(s) ['extra']"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_no_config_serves_echo_and_providers_with_keys_in_the_environment() -> None:
    config = from_environment({"OPENAI_API_KEY": "sk-x", "GROQ_API_KEY": ""})
    assert list(config.providers) == ["echo", "openai"]
    assert isinstance(config.providers["echo"], EchoProvider)


def test_no_config_passes_the_given_environment_to_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = from_environment({"OPENAI_API_KEY": "sk-given"}).providers["openai"]
    assert isinstance(provider, OpenAIProvider) and provider.api_key == "sk-given"


# -- what the provider classes declare is what the config accepts ---------------------------------------


def test_toml_type_names_are_the_provider_kinds() -> None:
    assert list(PROVIDER_TYPES) == [
        "openai",
        "azure",
        "anthropic",
        "gemini",
        "bedrock",
        "mistral",
        "groq",
        "deepseek",
        "xai",
        "openai-compatible",
        "echo",
    ]
    assert all(provider.kind == kind for kind, provider in PROVIDER_TYPES.items())


def test_toml_accepts_gemini_api_version(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[providers.gemini]\napi_key = 'g'\napi_version = 'v1'\n"), {})
    gemini = config.providers["gemini"]
    assert isinstance(gemini, GeminiProvider) and gemini.api_version == "v1"
    assert gemini.url("gemini-2.5-flash", "generateContent").endswith(
        "/v1/models/gemini-2.5-flash:generateContent"
    )


def test_toml_accepts_anthropic_version_and_default_max_tokens(tmp_path: Path) -> None:
    text = "[providers.claude]\ntype = 'anthropic'\nversion = '2023-01-01'\ndefault_max_tokens = 8192\n"
    claude = load_config(write(tmp_path, text), {}).providers["claude"]
    assert isinstance(claude, AnthropicProvider)
    assert claude.version == "2023-01-01" and claude.default_max_tokens == 8192
    assert claude.auth_headers()["anthropic-version"] == "2023-01-01"


def test_environment_serves_gemini_from_google_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    config = from_environment({"GOOGLE_API_KEY": "g-key"})
    assert list(config.providers) == ["echo", "gemini"]
    gemini = config.providers["gemini"]
    assert isinstance(gemini, GeminiProvider) and gemini.api_key == "g-key"
    both = from_environment({"GOOGLE_API_KEY": "g-key", "GEMINI_API_KEY": "gemini-key"}).providers["gemini"]
    assert isinstance(both, GeminiProvider) and both.api_key == "gemini-key"  # the order Google's SDKs use


@pytest.mark.parametrize(
    ("kind", "variable"),
    [(kind, variable) for kind, variables in KEY_VARIABLES.items() for variable in variables],
)
def test_environment_serves_each_provider_from_each_of_its_key_variables(kind: str, variable: str) -> None:
    provider = from_environment({variable: "k-test"}).providers[kind]
    assert isinstance(provider, HTTPProvider) and provider.api_key == "k-test"


def test_every_provider_with_a_key_variable_is_served_from_the_environment() -> None:
    with_keys = [
        kind
        for kind, provider in PROVIDER_TYPES.items()
        if issubclass(provider, HTTPProvider) and provider.key_variables()
    ]
    assert list(KEY_VARIABLES) == with_keys
    assert "gemini" in with_keys and "openai-compatible" not in with_keys


#: A value each constructor option can take in a test; a new option gets a line here.
SAMPLES: dict[str, Any] = {
    "api_key": "sk-test",
    "base_url": "http://127.0.0.1:9/v1",
    "timeout": 5,
    "models": ["m-1"],
    "headers": {"x-test": "1"},
    "api_version": "v1",
    "version": "2023-06-01",
    "default_max_tokens": 1024,
    "region": "us-east-1",
    "aws_access_key_id": "AKIATEST",
    "aws_secret_access_key": "secret",
    "aws_session_token": "token",
    "profile": "default",
}
NOT_FROM_TOML = {"client"}  # a host's httpx.AsyncClient


def constructor_options(provider: type) -> list[str]:
    """Every keyword the class's constructor takes, following `**options` to the parent's."""
    names: list[str] = []
    for cls in provider.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = list(inspect.signature(vars(cls)["__init__"]).parameters.values())[1:]
        names += [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return [name for name in dict.fromkeys(names) if name not in NOT_FROM_TOML]
    raise AssertionError(f"{provider.__name__}: no constructor without **options")


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers and lists of strings are written alike


@pytest.mark.parametrize("kind", list(PROVIDER_TYPES))
def test_toml_accepts_every_constructor_option_and_rejects_a_typo(tmp_path: Path, kind: str) -> None:
    options = constructor_options(PROVIDER_TYPES[kind])
    assert options and set(options) <= set(SAMPLES), f"{kind}: add a sample for {set(options) - set(SAMPLES)}"
    lines = ["[providers.p]", f"type = {json.dumps(kind)}", "policy = { max_attempts = 2 }"]
    lines += [f"{name} = {toml_value(SAMPLES[name])}" for name in options]
    config = load_config(write(tmp_path, "\n".join(lines)), {})
    assert isinstance(config.providers["p"], PROVIDER_TYPES[kind])
    assert config.provider_policies["p"] == Policy(max_attempts=2)

    typo = f"{options[0]}s"
    with pytest.raises(ConfigError, match=rf"providers\.p\.{typo}: unknown option for a '{kind}' provider"):
        load_config(write(tmp_path, "\n".join([*lines, f"{typo} = 1"])), {})
