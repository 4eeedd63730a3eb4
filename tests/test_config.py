"""The runner's TOML config: what a good file builds, and that every mistake names the file and the key."""

from __future__ import annotations

import inspect
import json
import sys
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_llm_gateway.auth import Principal
from asgi_llm_gateway.cli import CONFIG_VARIABLE, main
from asgi_llm_gateway.config import (
    KEY_VARIABLES,
    PROVIDER_TYPES,
    RESPONSE_STORE_VARIABLE,
    ConfigError,
    describe_response_store,
    from_environment,
    load_config,
    redact_url,
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
from asgi_llm_gateway.state.memory import MemoryResponseStore
from tests.support.redis_server import redis_url_fixture  # noqa: F401  (the redis_url fixture)

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
    "auto_cache": True,
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


# -- [response_store] and ASGI_LLM_GATEWAY_RESPONSE_STORE_URL ----------------------------------------------


def test_without_a_response_store_table_the_gateway_keeps_responses_in_memory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), ENV)
    assert config.response_store is None
    assert isinstance(config.gateway().response_store, MemoryResponseStore)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"max_responses": 10_000, "ttl": 30 * 24 * 3600, "max_bytes": 256 * 1024 * 1024}),
        ("ttl = 60", {"ttl": 60}),
        (
            'type = "memory"\nttl = 3600.5\nmax_responses = 100\nmax_bytes = 1_000_000',
            {"ttl": 3600.5, "max_responses": 100, "max_bytes": 1_000_000},
        ),
    ],
)
def test_response_store_memory_with_its_constructor_options(
    tmp_path: Path, text: str, expected: dict[str, Any]
) -> None:
    config = load_config(write(tmp_path, f"[response_store]\n{text}\n"), {})
    store = config.response_store
    assert isinstance(store, MemoryResponseStore)
    assert {name: getattr(store, name) for name in expected} == expected
    assert config.gateway().response_store is store


@pytest.mark.parametrize("reference", ["env:TEST_REDIS_URL", "${TEST_REDIS_URL}"])
def test_response_store_redis_reads_its_url_from_the_environment(tmp_path: Path, reference: str) -> None:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    text = f'[response_store]\ntype = "redis"\nurl = "{reference}"\nttl = 86400\nprefix = "gw-test:"\n'
    config = load_config(write(tmp_path, text), {"TEST_REDIS_URL": "redis://:pw@10.0.0.7:6380/2"})
    store = config.response_store
    assert isinstance(store, RedisResponseStore)
    assert (store.url, store.ttl, store.prefix) == ("redis://:pw@10.0.0.7:6380/2", 86400, "gw-test:")
    assert config.gateway().response_store is store


def test_response_store_redis_takes_unix_and_tls_urls(tmp_path: Path) -> None:
    for url in ("rediss://cache.internal:6380/0", "unix:///run/redis/redis.sock?db=1"):
        config = load_config(write(tmp_path, f'[response_store]\ntype = "redis"\nurl = "{url}"\n'), {})
        assert getattr(config.response_store, "url", None) == url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("response_store = 'redis'", "response_store: expected a table"),
        (
            "[response_store]\ntype = 'disk'",
            "response_store.type: unknown store type 'disk'; one of ['memory'",
        ),
        ("[response_store]\ntype = 1", "response_store.type: unknown store type 1"),
        ("[response_store]\ntype = 'redis'", "response_store.url: required for a 'redis' store"),
        ("[response_store]\ntype = 'redis'\nurl = 6379", "response_store.url: expected a string"),
        (
            "[response_store]\ntype = 'redis'\nurl = 'localhost:6379'",
            "response_store.url: expected a URL starting with redis://, rediss://, unix://",
        ),
        (
            "[response_store]\ntype = 'redis'\nurl = 'env:TEST_UNSET_REDIS_URL'",
            "response_store.url: environment variable TEST_UNSET_REDIS_URL is not set",
        ),
        ("[response_store]\nttl = 'a week'", "response_store.ttl: expected a number of seconds"),
        ("[response_store]\nttl = 0", "response_store.ttl: expected a positive number"),
        (
            "[response_store]\ntype = 'redis'\nurl = 'redis://h'\nttl = -1",
            "response_store.ttl: expected a pos",
        ),
        ("[response_store]\nmax_responses = 1.5", "response_store.max_responses: expected an integer"),
        ("[response_store]\nmax_bytes = 0", "response_store.max_bytes: expected a positive number"),
        ("[response_store]\nttl = true", "response_store.ttl: expected a number of seconds"),
        (
            "[response_store]\nprefix = 'gw:'",
            "response_store.prefix: unknown option for a 'memory' store; one of ['max_bytes'",
        ),
        (
            "[response_store]\ntype = 'redis'\nurl = 'redis://h'\nmax_bytes = 5",
            "response_store.max_bytes: unknown option for a 'redis' store",
        ),
        (  # a host's client object is no TOML option
            "[response_store]\ntype = 'redis'\nurl = 'redis://h'\nclient = 'redis://h'",
            "response_store.client: unknown option for a 'redis' store",
        ),
        (
            "[response_store]\ntype = 'redis'\nurl = 'redis://h'\nprefix = 1",
            "response_store.prefix: expected a",
        ),
    ],
)
def test_response_store_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_response_store_a_wrong_url_is_named_without_its_password(tmp_path: Path) -> None:
    path = write(tmp_path, "[response_store]\ntype = 'redis'\nurl = 'http://:hunter2@cache:6379'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "response_store.url: expected a URL" in str(caught.value)
    assert "http://:***@cache:6379" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.fixture
def without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the `redis` package were not installed (the [redis] extra left out)."""
    for name in [name for name in sys.modules if name == "redis" or name.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "redis", None)
    for module in (
        "asgi_llm_gateway._redis",
        "asgi_llm_gateway.state.redis",
        "asgi_llm_gateway.limits.redis",
    ):
        monkeypatch.delitem(sys.modules, module, raising=False)


@pytest.mark.usefixtures("without_redis")
def test_response_store_redis_without_the_redis_package_says_which_extra_to_install(tmp_path: Path) -> None:
    path = write(tmp_path, "[response_store]\ntype = 'redis'\nurl = 'redis://cache:6379/0'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}: response_store.type: ")
    assert "pip install 'asgi-llm-gateway[redis]'" in str(caught.value)
    with pytest.raises(
        ConfigError, match=r"ASGI_LLM_GATEWAY_RESPONSE_STORE_URL: .*asgi-llm-gateway\[redis\]"
    ):
        from_environment({RESPONSE_STORE_VARIABLE: "redis://cache:6379/0"})
    assert isinstance(
        load_config(write(tmp_path, "[response_store]\nttl = 5\n"), {}).response_store, MemoryResponseStore
    )


def test_no_config_file_keeps_responses_in_the_redis_named_by_the_environment() -> None:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    assert RESPONSE_STORE_VARIABLE == "ASGI_LLM_GATEWAY_RESPONSE_STORE_URL"
    store = from_environment({RESPONSE_STORE_VARIABLE: "redis://:pw@cache:6379/1"}).gateway().response_store
    assert isinstance(store, RedisResponseStore) and store.url == "redis://:pw@cache:6379/1"
    for unset in ({}, {RESPONSE_STORE_VARIABLE: ""}):
        config = from_environment(unset)
        assert config.response_store is None
        assert isinstance(config.gateway().response_store, MemoryResponseStore)


def test_no_config_file_a_wrong_store_url_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        from_environment({RESPONSE_STORE_VARIABLE: "memcached://:pw@cache:11211"})
    assert str(caught.value) == (
        "environment: ASGI_LLM_GATEWAY_RESPONSE_STORE_URL: expected a URL starting with redis://, rediss://, "
        "unix://, not 'memcached://:***@cache:11211'"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:secret@cache:6379/0", "redis://default:***@cache:6379/0"),
        ("rediss://user:p@ss:w0rd@cache/0", "rediss://user:***@cache/0"),  # an unescaped @ in it
        ("redis://cache:6379/0?password=secret&db=2", "redis://cache:6379/0?password=***&db=2"),
        ("unix://user:secret@/run/redis.sock?db=1", "unix://user:***@/run/redis.sock?db=1"),
        ("unix:///run/redis.sock?password=secret", "unix:///run/redis.sock?password=***"),
        ("redis://user@cache:6379/0", "redis://user@cache:6379/0"),  # a user name alone is no secret
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://:secret@[::1", "***"),  # unreadable: nothing of it shown
    ],
)
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_describe_response_store_names_its_type_and_where_without_the_password() -> None:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    assert describe_response_store(MemoryResponseStore()) == "memory"
    store = RedisResponseStore("redis://:secret@cache:6379/0")
    assert describe_response_store(store) == "redis (redis://:***@cache:6379/0)"


def test_runner_check_names_the_response_store_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_REDIS_URL", "redis://:hunter2@cache:6379/0")
    path = write(tmp_path, '[response_store]\ntype = "redis"\nurl = "env:TEST_REDIS_URL"\n')
    assert main(["--config", str(path), "--check"]) == 0
    err = capsys.readouterr().err
    assert (
        f"{path}: OK: providers echo (no client keys required), response store redis (redis://:***@cache:6379/0)"
        in err
    )
    assert "hunter2" not in err
    monkeypatch.setenv(CONFIG_VARIABLE, "")
    monkeypatch.setenv(RESPONSE_STORE_VARIABLE, "redis://:hunter2@cache:6379/1")
    assert main(["--check"]) == 0
    err = capsys.readouterr().err
    assert "environment: OK: " in err and "response store redis (redis://:***@cache:6379/1)" in err
    assert "hunter2" not in err


@pytest.mark.anyio
async def test_the_configured_redis_store_is_closed_at_lifespan_shutdown(
    tmp_path: Path, redis_url: str
) -> None:
    """What uvicorn does to the runner's app on SIGTERM: lifespan shutdown closes the store's connections."""
    import redis.asyncio

    name = f"config-test-{uuid.uuid4().hex}"
    path = write(tmp_path, f'[response_store]\ntype = "redis"\nurl = "{redis_url}?client_name={name}"\n')
    gateway = load_config(path, {}).gateway()
    observer = redis.asyncio.Redis.from_url(redis_url)

    async def connections() -> int:
        return sum(1 for client in await observer.client_list() if client["name"] == name)

    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages[0]["type"] == "lifespan.shutdown":  # the app serves between startup and shutdown
            assert await gateway.response_store.get("resp_absent") is None
            assert await connections() == 1
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    try:
        await gateway({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert [message["type"] for message in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        with anyio.fail_after(5):  # the server notices the close a moment later
            while await connections():
                await anyio.sleep(0.01)
    finally:
        await gateway.aclose()
        await observer.aclose()


def test_the_replicas_example_keeps_responses_in_the_redis_of_redis_url() -> None:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    path = Path(__file__).resolve().parents[1] / "examples" / "standalone" / "replicas.toml"
    environ = {"REDIS_URL": "redis://:pw@redis.internal:6379/0", "GATEWAY_KEY_ALICE": "sk-gw-alice"}
    store = load_config(path, environ).gateway().response_store
    assert isinstance(store, RedisResponseStore)
    assert (store.url, store.ttl) == ("redis://:pw@redis.internal:6379/0", 604800)


# -- [limits], [[budgets]], [prices] -----------------------------------------------------------------------

LIMITS = """
[auth]
keys = [{ key = "k1", name = "alice", metadata = { team = "red" } }]

[limits]
backend = "redis"
redis_url = "env:TEST_REDIS_URL"
timeout = 0.5
fail_open = false
lease_ttl = 60
hash_tag = "limits"
max_output_tokens = { "openai/o3*" = 100000, "*" = 2048 }

[[limits.rules]]
kind = "requests"
amount = 60
per = "principal"
period = 60
models = ["openai/*"]

[[limits.rules]]
kind = "concurrent"
amount = 4
per = "team"

[[budgets]]
amount = "100.00"
per = "team"
period = "month"

[prices]
currency = "USD"

[prices.models."echo/*"]
input = 1.25
cached_input = "0.125"
output = 10
"""


def test_limits_budgets_and_prices_build_one_hook_and_the_gateways_prices(tmp_path: Path) -> None:
    from decimal import Decimal

    from asgi_llm_gateway.limits import LimitsHook, Rule
    from asgi_llm_gateway.limits.redis import RedisLimiter
    from asgi_llm_gateway.pricing import DEFAULT_PRICES, Price

    config = load_config(write(tmp_path, LIMITS), {"TEST_REDIS_URL": "redis://:pw@cache:6379/2"})
    hook = config.limits
    assert isinstance(hook, LimitsHook) and isinstance(hook.limiter, RedisLimiter)
    limiter = hook.limiter
    assert (limiter.url, limiter.timeout, limiter.lease_ttl) == ("redis://:pw@cache:6379/2", 0.5, 60)
    assert limiter.prefix == "asgi-llm-gateway:limits:{limits}:"
    assert hook.rules == (
        Rule("requests", 60, per="principal", period=60, models=("openai/*",)),
        Rule("concurrent", 4, per="team"),
        Rule("spend", "100.00", per="team", period="month"),
    )
    assert hook.fail_open is False and hook.max_output_tokens == {"openai/o3*": 100000, "*": 2048}
    assert config.prices is not None and hook.prices is config.prices
    assert next(iter(config.prices)) == "echo/*"  # the host's first: they match before the defaults
    assert config.prices["echo/*"] == Price("1.25", "10", cached_input="0.125")
    assert set(DEFAULT_PRICES) < set(config.prices)  # defaults = true by default
    gateway = config.gateway()
    assert gateway.prices is config.prices
    assert gateway.hooks is not None and hook in gateway.hooks.hooks
    assert config.prices["echo/*"].input == Decimal("1.25")
    principal = gateway_principal(gateway, "k1")
    assert principal == Principal("alice", metadata={"team": "red"})


def gateway_principal(gateway: Any, key: str) -> Any:
    from starlette.requests import Request

    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {key}".encode())]}
    return anyio.run(gateway.auth, Request(scope))


def test_budgets_alone_limit_in_memory_and_prices_alone_cost_without_limits(tmp_path: Path) -> None:
    from asgi_llm_gateway.limits import MemoryLimiter
    from asgi_llm_gateway.pricing import DEFAULT_PRICES

    config = load_config(write(tmp_path, '[[budgets]]\namount = 5\nper = "principal"\nperiod = 86400\n'), {})
    assert config.limits is not None and isinstance(config.limits.limiter, MemoryLimiter)
    assert config.limits.prices is DEFAULT_PRICES and config.prices is None
    assert config.gateway().prices is None
    config = load_config(
        write(tmp_path, "[prices]\ndefaults = false\n[prices.models.m]\ninput = 1\noutput = 2\n"), {}
    )
    assert config.limits is None and config.prices is not None and list(config.prices) == ["m"]
    assert config.gateway().prices == config.prices


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\n", "limits: no [[limits.rules]] and no [[budgets]] (remove [limits])"),
        ("[limits]\nbackend = 'etcd'\n[[budgets]]\namount = 1\n", "limits.backend: unknown backend 'etcd'"),
        ("[limits]\nrules = 3\n", "limits.rules: expected a list of tables ([[limits.rules]])"),
        ("[[limits.rules]]\namount = 3\n", "limits.rules[0].kind: required"),
        ("[[limits.rules]]\nkind = 'requests'\n", "limits.rules[0].amount: required"),
        ("[[limits.rules]]\nkind = 'bananas'\namount = 3\n", "limits.rules[0]: Rule kind must be one of"),
        (
            "[[limits.rules]]\nkind = 'requests'\namount = 3\nevery = 5\n",
            "limits.rules[0].every: unknown key",
        ),
        (
            "[[limits.rules]]\nkind = 'requests'\namount = 1.5\n",
            "limits.rules[0]: a requests rule counts whole",
        ),
        ("[[limits.rules]]\nkind = 'requests'\namount = true\n", "limits.rules[0].amount: expected a number"),
        (
            "[[limits.rules]]\nkind = 'requests'\namount = 3\nperiod = 'day'\n",
            "limits.rules[0]: period 'day'",
        ),
        (
            "[[limits.rules]]\nkind = 'tokens'\namount = 3\nmodels = 'a/*'\n",
            "limits.rules[0].models: expected a",
        ),
        ("[[budgets]]\namount = '-1'\n", "budgets[0]: Rule amount must be positive"),
        ("[[budgets]]\namount = 1\nkind = 'requests'\n", "budgets[0].kind: unknown key"),
        ("[[budgets]]\namount = 1\nperiod = 'week'\n", "budgets[0]: period 'week'"),
        ("budgets = 3\n", "budgets: expected a list of tables"),
        (
            "[[budgets]]\namount = 1\n[[budgets]]\namount = 2\n",
            "limits: two rules of one kind share a bucket",
        ),
        (
            "[limits]\nfail_open = 'yes'\n[[budgets]]\namount = 1\n",
            "limits.fail_open: expected true or false",
        ),
        ("[limits]\ntimeout = 0\nbackend = 'redis'\n[[budgets]]\namount = 1\n", "limits.timeout: expected a"),
        ("[limits]\nlease_ttl = 'long'\n[[budgets]]\namount = 1\n", "limits.lease_ttl: expected"),
        ("[limits]\nclock = 3\n[[budgets]]\namount = 1\n", "limits.clock: unknown option"),
        ("[limits]\nmax_output_tokens = 0\n[[budgets]]\namount = 1\n", "limits.max_output_tokens: expected"),
        (
            "[limits]\nmax_output_tokens = { a = 'x' }\n[[budgets]]\namount = 1\n",
            "limits.max_output_tokens: expected positive integers by model pattern",
        ),
        (
            "[limits]\nbackend = 'redis'\nredis_url = 'http://:hunter2@x'\n[[budgets]]\namount = 1\n",
            "limits.redis_url: expected a URL starting with redis://",
        ),
        ("[prices]\ncurrency = 'EUR'\n", "prices.currency: the default prices are in USD"),
        ("[prices]\nextra = 1\n", "prices.extra: unknown key"),
        ("[prices.models.m]\ninput = 1\n", "prices.models.m.output: required"),
        (
            "[prices.models.m]\ninput = 1\noutput = -2\n",
            "prices.models.m: Price.output must be a non-negative",
        ),
        ("[prices.models.m]\ninput = 1\noutput = 2\nbatch = 1\n", "prices.models.m.batch: unknown key"),
        ("[prices.models.m]\ninput = true\noutput = 2\n", "prices.models.m.input: expected a number"),
        ("[prices]\nmodels = { m = 3 }\n", "prices.models.m: expected a table of prices"),
        (
            "[auth]\nkeys = [{ key = 'k', metadata = { team = 3 } }]\n",
            "auth.keys[0].metadata: expected a table",
        ),
    ],
)
def test_limits_and_prices_mistakes_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "hunter2" not in str(caught.value)


def test_runner_check_names_the_limits_without_the_redis_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_REDIS_URL", "redis://:hunter2@cache:6379/2")
    path = write(tmp_path, LIMITS)
    assert main(["--config", str(path), "--check"]) == 0
    err = capsys.readouterr().err
    assert (
        "response store memory, limits (1 requests, 1 concurrent, 1 spend) in redis "
        "(redis://:***@cache:6379/2), fail-closed" in err
    )
    assert "hunter2" not in err
    assert main(["--config", str(write(tmp_path, "[[budgets]]\namount = 1\n")), "--check"]) == 0
    assert "limits (1 spend) in memory, fail-open" in capsys.readouterr().err
    assert main(["--config", str(write(tmp_path, "")), "--check"]) == 0
    assert "response store memory, no limits" in capsys.readouterr().err


@pytest.mark.usefixtures("without_redis")
def test_redis_limits_without_the_redis_package_say_which_extra_to_install(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nbackend = 'redis'\n[[budgets]]\namount = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == (
        f"{path}: limits.backend: a 'redis' limits backend needs the `redis` package: "
        "pip install 'asgi-llm-gateway[redis]'"
    )


def test_the_limits_example_builds_redis_limits_budgets_and_prices() -> None:
    from asgi_llm_gateway.limits.redis import RedisLimiter

    path = Path(__file__).resolve().parents[1] / "examples" / "standalone" / "limits.toml"
    environ = {
        "REDIS_URL": "redis://:pw@redis.internal:6379/0",
        "GATEWAY_KEY_ALICE": "sk-gw-alice",
        "GATEWAY_KEY_BOB": "sk-gw-bob",
    }
    config = load_config(path, environ)
    assert config.limits is not None and isinstance(config.limits.limiter, RedisLimiter)
    assert config.limits.limiter.url == "redis://:pw@redis.internal:6379/0"
    kinds = [rule.kind for rule in config.limits.rules]
    assert kinds == ["requests", "tokens", "concurrent", "requests", "spend", "spend"]
    assert config.prices is not None and config.gateway().prices is config.prices


def test_request_policy_rewrites_every_request(tmp_path: Path) -> None:
    from asgi_llm_gateway.rewrite import RequestPolicy

    config = load_config(
        write(tmp_path, "[request_policy]\nmax_output_tokens = 100\nforce_user = true\n"), {}
    )
    assert config.rewrite == RequestPolicy(max_output_tokens=100, force_user=True)
    assert config.gateway().rewrite is config.rewrite
    assert load_config(write(tmp_path, ""), {}).gateway().rewrite is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[request_policy]\nmax_output_tokens = 0\n",
            "request_policy.max_output_tokens: expected a positive integer",
        ),
        ("[request_policy]\nforce_user = 'yes'\n", "request_policy.force_user: expected true or false"),
        (
            "[request_policy]\ncap = 3\n",
            "request_policy.cap: unknown key; one of max_output_tokens, force_user",
        ),
    ],
)
def test_request_policy_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}: {message}"


# -- [observability] and the runner's --log-requests, --metrics, --otel ------------------------------------


def test_observability_table_builds_the_runners_settings(tmp_path: Path) -> None:
    from asgi_llm_gateway.observability.runner import Observability

    text = '[observability]\nlogs = true\ninclude_content = true\nmetrics = "/ops/metrics"\notel = true\n'
    config = load_config(write(tmp_path, text), {})
    assert config.observability == Observability(
        logs=True, include_content=True, metrics="/ops/metrics", otel=True
    )
    assert load_config(write(tmp_path, "[observability]\nmetrics = true\n"), {}).observability.metrics == (
        "/metrics"
    )
    assert (
        load_config(write(tmp_path, "[observability]\nmetrics = false\n"), {}).observability.metrics is None
    )
    assert load_config(write(tmp_path, ""), {}).observability == Observability()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[observability]\nlogs = 'yes'\n", "observability.logs: expected true or false"),
        ("[observability]\notel = 1\n", "observability.otel: expected true or false"),
        ("[observability]\nmetrics = 9090\n", 'observability.metrics: expected a path like "/metrics"'),
        (
            "[observability]\nmetrics = 'metrics'\n",
            "observability.metrics: 'metrics' must be an absolute path like /metrics, not ending in '/'",
        ),
        (
            "[observability]\nmetrics = '/a/../b'\n",
            "observability.metrics: '/a/../b' must be an absolute path like /metrics, not ending in '/'",
        ),
        (
            "[observability]\ntraces = true\n",
            "observability.traces: unknown key; one of logs, include_content, metrics, otel",
        ),
    ],
)
def test_observability_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert refusal(tmp_path, text) == f"{tmp_path / 'gateway.toml'}: {message}"


def refusal(tmp_path: Path, text: str) -> str:
    """The `ConfigError` a file holding `text` is refused with."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {})
    return str(caught.value)


def test_check_names_what_is_observed_with_the_flags_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[observability]\nlogs = true\nmetrics = "/m"\n')
    assert main(["--config", str(path), "--check"]) == 0
    assert capsys.readouterr().err.rstrip().endswith("no limits, request logs, Prometheus metrics on /m")
    assert main(["--config", str(path), "--check", "--no-log-requests", "--metrics", "--otel"]) == 0
    err = capsys.readouterr().err
    assert "no limits, Prometheus metrics on /metrics, OpenTelemetry to " in err and "request logs" not in err
    assert main(["--config", str(write(tmp_path, "")), "--check"]) == 0
    assert capsys.readouterr().err.rstrip().endswith("no limits, no request logs, metrics or traces")


def test_metrics_flag_refuses_a_path_that_is_not_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--check", "--metrics", "metrics/"])
    assert exited.value.code == 2
    assert "--metrics: 'metrics/' must be an absolute path like /metrics" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path", ["/v1", "/models", "/v1/models", "/v1/chat", "/responses/abc", "/healthz", "/"]
)
def test_metrics_never_hide_a_gateway_path(tmp_path: Path, path: str) -> None:
    from prometheus_client import CollectorRegistry

    from asgi_llm_gateway.observability.runner import Observability, ObservabilityError, observe

    config = load_config(write(tmp_path, ""), {})
    observed = observe(Observability(metrics=path), CollectorRegistry())
    with pytest.raises(ObservabilityError, match="would hide the gateway's own paths"):
        observed.app(config.gateway(observed.hooks))


def test_metrics_are_served_beside_the_gateway_not_by_it(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from asgi_llm_gateway.mount import PathPrefixDispatcher
    from asgi_llm_gateway.observability import PrometheusHook
    from asgi_llm_gateway.observability.runner import Observability, observe

    config = load_config(write(tmp_path, ""), {})
    observed = observe(Observability(metrics="/v1metrics"), CollectorRegistry())
    [hook] = observed.hooks
    assert isinstance(hook, PrometheusHook)
    gateway = config.gateway(observed.hooks)
    app = observed.app(gateway)
    assert isinstance(app, PathPrefixDispatcher) and app.app is gateway and app.prefix == "/v1metrics"
    assert "/metrics" not in gateway.routes and "/v1metrics" not in gateway.routes
    assert observe(Observability()).app(gateway) is gateway


def test_metrics_need_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--metrics", "--workers", "2"]) == 2
    assert "metrics need one worker" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "hidden", "message"),
    [
        (
            ["--metrics"],
            "prometheus_client",
            "metrics need prometheus_client (prometheus_client is missing): pip ",
        ),
        (
            ["--otel"],
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
            "--otel needs the OpenTelemetry SDK and its OTLP/HTTP exporter "
            "(opentelemetry.exporter.otlp.proto.http.trace_exporter is missing): "
            "pip install 'asgi-llm-gateway[otel-exporter]'",
        ),
    ],
)
def test_a_switch_without_its_package_exits_2_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    hidden: str,
    message: str,
) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the runner must not serve without the package")

    monkeypatch.setitem(sys.modules, hidden, None)  # `import` raises ImportError naming it
    monkeypatch.setattr(uvicorn, "run", never)
    for workers in ("1", "2"):
        if workers == "2" and flags == ["--metrics"]:
            continue  # metrics refuse several workers first
        assert main([*flags, "--workers", workers]) == 2
        assert message in capsys.readouterr().err


def test_the_runner_freezes_its_start_up_heap_and_raises_the_young_gc_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner owns its process, so it sets the collector up for a server (`cli._tune_gc`); the older
    generations' thresholds stay CPython's."""
    import gc

    import uvicorn

    from asgi_llm_gateway.cli import GC_GEN0_THRESHOLD

    seen: dict[str, object] = {}

    def run(app: object, **options: object) -> None:
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()

    monkeypatch.setattr(uvicorn, "run", run)
    before = gc.get_threshold()
    try:
        assert main([]) == 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    assert seen["threshold"] == (GC_GEN0_THRESHOLD, *before[1:])
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
