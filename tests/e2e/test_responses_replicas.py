"""Two gateway replicas, one Redis: a Responses chain started on one continues on the other.

Everything real: one `redis-server` (tests/support/redis_server.py: skips locally without it, fails under
CI), two `asgi-llm-gateway` processes started as the README's quick start starts the runner (the console
script, `--config`, a port) with the same TOML config, whose `[response_store]` points at that Redis, and
one OpenAI fake on loopback behind both, so that a test sees what reached the upstream. The client is the
official `openai` SDK, its base URL one replica or the other. The same config with the memory store shows
that without the shared store a chain does not cross replicas.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes import openai as fake_openai
from tests.support.redis_server import redis_url_fixture  # noqa: F401  (the redis_url fixture)
from tests.support.server import ServedProcess, free_port, runner_script, serve, serve_process

KEY_ONE = "sk-gw-replicas-one"
KEY_TWO = "sk-gw-replicas-two"
MODEL = "openai/gpt-4.1"

CONFIG = """
[providers.openai]
type = "openai"
api_key = "env:UPSTREAM_KEY"
base_url = "{upstream}/v1"

[auth]
keys = {{ "env:KEY_ONE" = "one", "env:KEY_TWO" = "two" }}

[policy]
max_attempts = 1

[response_store]
{store}
"""
REDIS_STORE = 'type = "redis"\nurl = "${{REDIS_URL}}"\nprefix = "{prefix}"'
MEMORY_STORE = 'type = "memory"'


@dataclass
class Replicas:
    """Two runner processes with one config, and the upstream fake behind both."""

    a: ServedProcess
    b: ServedProcess
    upstream: fake_openai.FakeOpenAI

    def client(self, replica: ServedProcess, key: str = KEY_ONE) -> openai.OpenAI:
        return openai.OpenAI(base_url=replica.url + "/v1", api_key=key, max_retries=0, timeout=10)

    def last_upstream_body(self) -> dict[str, Any]:
        request = self.upstream.requests[-1]
        assert request["path"] == "/v1/responses"
        body: dict[str, Any] = request["body"]
        return body


def _environment(redis_url: str) -> dict[str, str]:
    """Only what the runner needs: keys or a config path in the developer's shell must not leak in."""
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {
        **kept,
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "KEY_ONE": KEY_ONE,
        "KEY_TWO": KEY_TWO,
        "UPSTREAM_KEY": fake_openai.KEY,
    }


@contextmanager
def runner(config: Path, env: dict[str, str], logs: Path) -> Iterator[ServedProcess]:
    """`asgi-llm-gateway --config <file> --host 127.0.0.1 --port <free port>`, until it answers /healthz."""
    port = free_port()
    command = [runner_script(), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with serve_process(command, port, logs / f"runner-{port}.log", env) as served:
        yield served


@contextmanager
def replicas(directory: Path, redis_url: str, store: str) -> Iterator[Replicas]:
    """The upstream fake, then two runners reading one config file with `store` as `[response_store]`."""
    upstream = fake_openai.FakeOpenAI()
    with ExitStack() as stack:
        upstream_url = stack.enter_context(serve(upstream.app()))
        config = directory / "gateway.toml"
        config.write_text(CONFIG.format(upstream=upstream_url, store=store))
        env = _environment(redis_url)
        a = stack.enter_context(runner(config, env, directory))
        b = stack.enter_context(runner(config, env, directory))
        yield Replicas(a, b, upstream)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Replicas]:
    """Two replicas sharing the test session's Redis, under a key prefix of their own."""
    store = REDIS_STORE.format(prefix=f"replicas-{uuid.uuid4().hex}:")
    with replicas(tmp_path_factory.mktemp("replicas"), redis_url, store) as pair:
        yield pair


def texts(items: list[dict[str, Any]]) -> list[str]:
    """The text of each message among upstream input items, whoever said it, in order."""
    found: list[str] = []
    for item in items:
        content = item.get("content")
        if isinstance(content, str):
            found.append(content)
        elif isinstance(content, list):
            found += [part["text"] for part in content if "text" in part]
    return found


def assert_not_found(caught: pytest.ExceptionInfo[openai.NotFoundError], param: str | None = None) -> None:
    body = caught.value.body
    code = "previous_response_not_found" if param == "previous_response_id" else "response_not_found"
    assert isinstance(body, dict) and body["code"] == code and body["param"] == param


# -- a chain across replicas ----------------------------------------------------------------------------


def test_a_chain_started_on_one_replica_continues_on_the_other(shared: Replicas) -> None:
    with shared.client(shared.a) as a, shared.client(shared.b) as b:
        first = a.responses.create(model=MODEL, instructions="Be brief.", input="My name is Ada.")
        assert first.status == "completed" and first.output_text == "My name is Ada."

        second = b.responses.create(model=MODEL, previous_response_id=first.id, input="What is my name?")
        assert second.status == "completed" and second.output_text == "What is my name?"
        upstream = shared.last_upstream_body()  # what replica B sent: the whole conversation, kept by A
        assert texts(upstream["input"]) == ["My name is Ada.", "My name is Ada.", "What is my name?"]
        assert [item.get("role") for item in upstream["input"]] == ["user", "assistant", "user"]
        assert upstream["store"] is False and "previous_response_id" not in upstream

        third = a.responses.create(model=MODEL, previous_response_id=second.id, input="And my age?")
        assert texts(shared.last_upstream_body()["input"]) == [
            "My name is Ada.",
            "My name is Ada.",
            "What is my name?",
            "What is my name?",
            "And my age?",
        ]

        retrieved = b.responses.retrieve(third.id)  # made on A, read on B
        assert (retrieved.id, retrieved.output_text) == (third.id, "And my age?")
        [item] = b.responses.input_items.list(second.id).data  # this request's input only
        assert item.type == "message" and item.role == "user"
        assert [part.text for part in item.content if part.type == "input_text"] == ["What is my name?"]


def test_a_streamed_continuation_on_the_other_replica(shared: Replicas) -> None:
    with shared.client(shared.a) as a, shared.client(shared.b) as b:
        first = a.responses.create(model=MODEL, input="Remember the word tangerine.")
        with b.responses.stream(
            model=MODEL, previous_response_id=first.id, input="Which word was it?"
        ) as stream:
            kinds = [event.type for event in stream]
            streamed = stream.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert streamed.output_text == "Which word was it?"
        upstream = shared.last_upstream_body()
        assert upstream["stream"] is True
        assert texts(upstream["input"]) == [
            "Remember the word tangerine.",
            "Remember the word tangerine.",
            "Which word was it?",
        ]

        stored = a.responses.retrieve(streamed.id)  # streamed on B, stored in Redis, read on A
        assert (stored.id, stored.output_text) == (streamed.id, "Which word was it?")
        after = a.responses.create(model=MODEL, previous_response_id=streamed.id, input="Spell it.")
        assert after.status == "completed"
        assert texts(shared.last_upstream_body()["input"])[:3] == texts(upstream["input"])


def test_another_key_cannot_see_the_chain_on_any_replica(shared: Replicas) -> None:
    with (
        shared.client(shared.a) as a,
        shared.client(shared.b, KEY_TWO) as stranger,
        shared.client(shared.b) as owner_on_b,
    ):
        mine = a.responses.create(model=MODEL, input="For key one only.")
        with pytest.raises(openai.NotFoundError) as caught:
            stranger.responses.retrieve(mine.id)
        assert_not_found(caught)
        with pytest.raises(openai.NotFoundError) as caught:
            stranger.responses.input_items.list(mine.id)
        assert_not_found(caught)
        calls = len(shared.upstream.requests)
        with pytest.raises(openai.NotFoundError) as caught:
            stranger.responses.create(model=MODEL, previous_response_id=mine.id, input="Tell me.")
        assert_not_found(caught, "previous_response_id")
        assert len(shared.upstream.requests) == calls  # refused before any upstream call
        with pytest.raises(openai.NotFoundError) as caught:
            stranger.responses.delete(mine.id)
        assert_not_found(caught)

        assert owner_on_b.responses.retrieve(mine.id).output_text == "For key one only."  # still there


def test_a_delete_on_one_replica_is_seen_by_the_other(shared: Replicas) -> None:
    with shared.client(shared.a) as a, shared.client(shared.b) as b:
        first = a.responses.create(model=MODEL, input="Short-lived.")
        second = a.responses.create(model=MODEL, previous_response_id=first.id, input="Continued.")
        assert b.responses.retrieve(first.id).id == first.id

        b.responses.delete(first.id)

        with pytest.raises(openai.NotFoundError) as caught:
            a.responses.retrieve(first.id)
        assert_not_found(caught)
        with pytest.raises(openai.NotFoundError) as caught:
            a.responses.create(model=MODEL, previous_response_id=first.id, input="Go on.")
        assert_not_found(caught, "previous_response_id")
        with pytest.raises(openai.NotFoundError) as caught:  # its history is gone: the continuation too
            a.responses.retrieve(second.id)
        assert_not_found(caught)
        with pytest.raises(openai.NotFoundError) as caught:
            a.responses.delete(first.id)
        assert_not_found(caught)


# -- without the shared store; the runner's own lines ---------------------------------------------------


def test_with_the_memory_store_a_chain_stays_on_its_replica(tmp_path: Path, redis_url: str) -> None:
    """The same setup with `type = "memory"`: what makes the tests above pass is the shared store."""
    with replicas(tmp_path, redis_url, MEMORY_STORE) as pair:
        with pair.client(pair.a) as a, pair.client(pair.b) as b:
            first = a.responses.create(model=MODEL, input="Kept by A alone.")
            with pytest.raises(openai.NotFoundError) as caught:
                b.responses.create(model=MODEL, previous_response_id=first.id, input="B, continue.")
            assert_not_found(caught, "previous_response_id")
            with pytest.raises(openai.NotFoundError) as caught:
                b.responses.retrieve(first.id)
            assert_not_found(caught)
            again = a.responses.create(model=MODEL, previous_response_id=first.id, input="A, continue.")
            assert again.status == "completed"  # the id was good: only the other replica lacks it
        for replica in (pair.a, pair.b):
            assert "response store memory" in replica.output()


def test_each_replica_names_its_store_and_stops_cleanly(tmp_path: Path, redis_url: str) -> None:
    store = REDIS_STORE.format(prefix=f"replicas-{uuid.uuid4().hex}:")
    with replicas(tmp_path, redis_url, store) as pair:
        with pair.client(pair.a) as a, pair.client(pair.b) as b:  # each replica connects to Redis
            first = a.responses.create(model=MODEL, input="Before the stop.")
            assert b.responses.retrieve(first.id).id == first.id
        for replica in (pair.a, pair.b):
            assert replica.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
            output = replica.output()
            assert f"response store redis ({redis_url})" in output and f"at {replica.url}/v1" in output
            assert "Traceback" not in output and "failed" not in output
