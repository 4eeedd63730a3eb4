"""The runner's TOML config: what a good file builds, and that every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from asgi_llm_gateway.auth import Principal
from asgi_llm_gateway.config import ConfigError, from_environment, load_config
from asgi_llm_gateway.policy import Group, Policy
from asgi_llm_gateway.providers import (
    AnthropicProvider,
    EchoProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
)

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
