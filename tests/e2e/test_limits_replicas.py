"""Two gateway replicas, one Redis: one limit enforced together, and a Redis that dies mid-run.

Everything real: a `redis-server` (tests/support/redis_server.py: skips locally without it, fails under CI),
two `asgi-llm-gateway` processes started as the README's quick start starts the runner (the console script,
`--config`, a port) with one TOML config whose `[limits]` keep their state in that Redis, and the official
`openai` SDK as the client, its base URL one replica or the other. The echo provider answers: the limits
are the subject, not the upstream.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.test_responses_replicas import KEY_ONE, KEY_TWO, _environment, runner
from tests.support.limits import redis_pid
from tests.support.redis_server import redis_url_fixture, running_redis  # noqa: F401  (the redis_url fixture)
from tests.support.server import ServedProcess

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]

CONFIG = """
[providers.echo]
type = "echo"

[auth]
keys = {{ "env:KEY_ONE" = "one", "env:KEY_TWO" = "two" }}

[limits]
backend = "redis"
redis_url = "env:REDIS_URL"
prefix = "{prefix}"
timeout = 1
fail_open = {fail_open}

[[limits.rules]]
kind = "requests"
amount = {amount}
per = "principal"
period = 3600
"""


@contextmanager
def replicas(directory: Path, redis_url: str, amount: int, fail_open: bool) -> Iterator[list[ServedProcess]]:
    """Two runners reading one config file whose limits live in the Redis at `redis_url`."""
    config = directory / "gateway.toml"
    prefix = f"limits-replicas-{uuid.uuid4().hex}:"
    config.write_text(CONFIG.format(prefix=prefix, amount=amount, fail_open=str(fail_open).lower()))
    env = _environment(redis_url)
    with ExitStack() as stack:
        yield [stack.enter_context(runner(config, env, directory)) for _ in range(2)]


def client(replica: ServedProcess, key: str = KEY_ONE) -> openai.OpenAI:
    return openai.OpenAI(base_url=replica.url + "/v1", api_key=key, max_retries=0, timeout=10)


def status_of(replica: ServedProcess, key: str = KEY_ONE) -> int:
    """One chat call's HTTP status (what the SDK raised, or 200)."""
    with client(replica, key) as sdk:
        try:
            sdk.chat.completions.create(model="echo/echo-1", messages=HELLO)
        except openai.APIStatusError as error:
            return error.status_code
    return 200


def test_two_replicas_enforce_one_limit_together(tmp_path: Path, redis_url: str) -> None:
    with replicas(tmp_path, redis_url, amount=10, fail_open=True) as (a, b):
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(status_of, [a, b] * 20))
        assert sorted(statuses) == [200] * 10 + [429] * 30  # one bucket, whichever replica answered
        assert {status_of(a), status_of(b)} == {429}
        assert status_of(a, KEY_TWO) == status_of(b, KEY_TWO) == 200  # another key, another bucket
        with client(b) as sdk, pytest.raises(openai.RateLimitError) as caught:
            sdk.chat.completions.create(model="echo/echo-1", messages=HELLO)
        headers = caught.value.response.headers
        assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == (
            "10",
            "0",
        )
        assert caught.value.code == "rate_limit_exceeded"
    for replica in (a, b):
        assert "limits (1 requests) in redis (redis://127.0.0.1:" in replica.output()


@pytest.mark.parametrize("fail_open", [True, False])
def test_redis_killed_mid_run_fails_as_configured_without_a_hang_or_a_500(
    tmp_path: Path, fail_open: bool
) -> None:
    with running_redis() as url, replicas(tmp_path, url, amount=1000, fail_open=fail_open) as (a, b):
        with client(a) as sdk:
            answer = sdk.chat.completions.with_raw_response.create(model="echo/echo-1", messages=HELLO)
        assert answer.headers["x-ratelimit-limit-requests"] == "1000"
        os.kill(anyio.run(redis_pid, url), signal.SIGKILL)  # the redis-server this test started
        for replica in (a, b, a, b):
            with client(replica) as sdk:
                if fail_open:  # admitted unchecked: no limits to tell
                    answer = sdk.chat.completions.with_raw_response.create(
                        model="echo/echo-1", messages=HELLO
                    )
                    assert answer.http_response.status_code == 200
                    assert "x-ratelimit-limit-requests" not in answer.headers
                else:
                    with pytest.raises(openai.APIStatusError) as caught:
                        sdk.chat.completions.create(model="echo/echo-1", messages=HELLO)
                    assert caught.value.status_code == 503 and caught.value.code == "limits_unavailable"
                    assert caught.value.response.headers["retry-after"] == "1"
        for replica in (a, b):
            assert "limits unavailable" in replica.output()
            assert ("fail_open=True" if fail_open else "fail_open=False") in replica.output()
            assert "Traceback" not in replica.output()
