"""ResponseStore: one contract suite over the memory store and the Redis store (a real redis-server on
loopback, tests/support/redis_server.py), then what only one of them has: LRU eviction in memory; the key
layout, expiry inside a chain, replicas and processes sharing one Redis, and the optional import in Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from asgi_llm_gateway.state import ResponseStore, StoredResponse
from asgi_llm_gateway.state.memory import MemoryResponseStore
from tests.support.redis_server import redis_url_fixture  # noqa: F401  (the redis_url fixture)
from tests.support.server import free_port

pytestmark = pytest.mark.anyio

Factory = Callable[..., ResponseStore]


def turn(
    id: str,
    previous: StoredResponse | None = None,
    *,
    new_input: list[dict[str, Any]] | None = None,
    output: list[dict[str, Any]] | None = None,
    owner: str | None = "alice",
    provider: str | None = "openai",
) -> StoredResponse:
    """One response continuing `previous`, as the endpoint stores it."""
    if new_input is None:
        new_input = [{"role": "user", "content": f"question {id}"}]
    if output is None:
        text = {"type": "output_text", "text": f"to {id}"}
        output = [{"type": "message", "role": "assistant", "content": [text]}]
    previous_id = previous.id if previous is not None else None
    return StoredResponse(
        id=id,
        owner=owner,
        response={
            "id": id,
            "object": "response",
            "status": "completed",
            "output": output,
            "previous_response_id": previous_id,
        },
        items=[*(previous.items if previous is not None else []), *new_input, *output],
        input_count=len(new_input),
        provider=provider,
        created_at=time.time(),
        previous_response_id=previous_id,
    )


def this_turns_input(stored: StoredResponse) -> list[dict[str, Any]]:
    """What input_items lists: the input of this request, just before the output items."""
    start = len(stored.items) - stored.input_count - len(stored.response["output"])
    return stored.items[start : start + stored.input_count]


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Makes stores of `kind`; Redis ones share this test's own key prefix (so two are two replicas)."""
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    prefix = f"test-state:{uuid.uuid4().hex}:"
    stores: list[ResponseStore] = []

    def make(ttl: float = 60, **options: Any) -> ResponseStore:
        if kind == "memory":
            store: ResponseStore = MemoryResponseStore(ttl=ttl, **options)
        else:
            from asgi_llm_gateway.state.redis import RedisResponseStore

            store = RedisResponseStore(url, prefix=prefix, ttl=ttl, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()


# -- the contract, both stores -----------------------------------------------------------------------


async def test_a_response_reads_back_with_every_field(make_store: Factory) -> None:
    store = make_store()
    assert isinstance(store, ResponseStore)
    stored = turn("resp_1", provider="claude")
    await store.put(stored)
    assert await store.get("resp_1") == stored
    anyone = turn("resp_2", owner=None, provider=None)
    await store.put(anyone)
    back = await store.get("resp_2")
    assert back == anyone and back.owner is None and back.provider is None


async def test_missing_ids_read_as_none(make_store: Factory) -> None:
    store = make_store()
    await store.put(turn("resp_1"))
    for missing in ("resp_2", "", "resp_1 ", "RESP_1", "resp_1/input_items", "ü:*?[]", "x" * 1000):
        assert await store.get(missing) is None
        assert await store.delete(missing) is False


async def test_delete_says_whether_the_response_was_there(make_store: Factory) -> None:
    store = make_store()
    await store.put(turn("resp_1"))
    await store.put(turn("resp_2"))
    assert await store.delete("resp_1") is True
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False
    assert await store.get("resp_2") is not None


async def test_put_replaces_a_response_with_the_same_id(make_store: Factory) -> None:
    store = make_store()
    await store.put(turn("resp_1"))
    again = turn("resp_1", new_input=[{"role": "user", "content": "changed"}], owner="bob")
    await store.put(again)
    assert await store.get("resp_1") == again


async def test_a_chain_reads_whole_at_every_turn(make_store: Factory) -> None:
    store = make_store()
    previous: StoredResponse | None = None
    chain: list[StoredResponse] = []
    for n in range(12):
        tool_round = [{"type": "function_call_output", "call_id": f"c{n}", "output": "x" * n}] * (n % 3)
        stored = turn(f"resp_{n}", previous, new_input=[*tool_round, {"role": "user", "content": str(n)}])
        await store.put(stored)
        chain.append(stored)
        previous = await store.get(stored.id)  # as the endpoint does: the next turn starts from the store
        assert previous == stored
    for stored in chain:
        back = await store.get(stored.id)
        assert back == stored
        assert this_turns_input(back) == this_turns_input(stored)
    assert len(chain[-1].items) == sum(stored.input_count + 1 for stored in chain)


async def test_branches_from_one_response_stay_apart(make_store: Factory) -> None:
    store = make_store()
    root = turn("resp_root")
    await store.put(root)
    left, right = turn("resp_left", root), turn("resp_right", root)
    await store.put(left)
    await store.put(right)
    left_more = turn("resp_left_2", left)
    await store.put(left_more)
    assert await store.get("resp_right") == right
    assert await store.get("resp_left_2") == left_more
    assert await store.get("resp_root") == root


async def test_continuing_a_response_that_is_gone_keeps_the_history_whole(make_store: Factory) -> None:
    store = make_store()
    ghost = turn("resp_ghost")  # never stored (or expired before this put)
    orphan = turn("resp_orphan", ghost)
    await store.put(orphan)
    assert await store.get("resp_orphan") == orphan
    assert len(orphan.items) == 4


async def test_a_response_whose_history_is_incomplete_reads_as_missing(make_store: Factory) -> None:
    store = make_store()
    first = turn("resp_a")
    second = turn("resp_b", first)
    third = turn("resp_c", second)
    for stored in (first, second, third):
        await store.put(stored)
    assert await store.delete("resp_b") is True
    assert await store.get("resp_c") is None  # never a partial history
    assert await store.get("resp_a") == first
    # continuing the broken chain starts a whole one: the caller's history is all that is left
    fourth = turn("resp_d", third)
    await store.put(fourth)
    assert await store.get("resp_d") == fourth


async def test_a_response_expires_after_its_ttl(make_store: Factory) -> None:
    store = make_store(ttl=0.3)
    await store.put(turn("resp_1"))
    assert await store.get("resp_1") is not None
    await anyio.sleep(0.5)
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False


async def test_continuing_a_chain_keeps_the_whole_chain_alive(make_store: Factory) -> None:
    store = make_store(ttl=1.0)
    first = turn("resp_a")
    await store.put(first)
    await anyio.sleep(0.6)
    second = turn("resp_b", first)
    await store.put(second)  # resp_a's clock starts again
    await anyio.sleep(0.6)  # resp_a is 1.2 s old, 0.6 s since the chain was last written
    assert await store.get("resp_b") == second
    assert await store.get("resp_a") == first
    await anyio.sleep(0.6)
    assert await store.get("resp_b") is None
    assert await store.get("resp_a") is None


async def test_json_round_trip_with_unicode_and_big_payloads(make_store: Factory) -> None:
    store = make_store()
    text = 'héllo wörld — 你好世界 — مرحبا — 🦜🔥👩‍💻 — \u0000\t\n"quotes" \\ </script> \u2028'
    big = "0123456789abcdef" * (512 * 1024)  # 8 MiB in one item
    stored = turn(
        "resp_ü_🦜",
        new_input=[
            {"role": "user", "content": [{"type": "input_text", "text": text}]},
            {"type": "function_call_output", "call_id": "call_1", "output": big},
        ],
        owner="ünïcode öwner 👤",
    )
    stored.response["metadata"] = {
        "k": text,
        "n": 2**53 + 1,
        "f": 0.1,
        "neg": -1.5e-300,
        "t": True,
        "z": None,
    }
    stored.response["nested"] = [[[[{"deep": [1, [2, [3, {}]]]}]]]]
    await store.put(stored)
    back = await store.get("resp_ü_🦜")
    assert back == stored
    assert back.items[1]["output"] == big
    following = turn("resp_next", back, new_input=[{"role": "user", "content": text * 100}])
    await store.put(following)
    assert await store.get("resp_next") == following


async def test_a_value_json_cannot_carry_fails_put_and_stores_nothing(make_store: Factory) -> None:
    store = make_store()
    bad = turn("resp_bad")
    bad.response["when"] = {1, 2}
    with pytest.raises(TypeError):
        await store.put(bad)
    assert await store.get("resp_bad") is None


async def test_the_caller_gets_a_copy_and_keeps_its_own(make_store: Factory) -> None:
    store = make_store()
    stored = turn("resp_1")
    snapshot = json.loads(json.dumps([stored.response, stored.items]))
    await store.put(stored)
    stored.items.append({"role": "user", "content": "added after put"})
    stored.response["status"] = "changed after put"
    back = await store.get("resp_1")
    assert back is not None and [back.response, back.items] == snapshot
    back.items.clear()
    back.response.clear()
    again = await store.get("resp_1")
    assert again is not None and [again.response, again.items] == snapshot


async def test_concurrent_tasks_build_chains_without_losing_a_turn(make_store: Factory) -> None:
    store = make_store()
    finals: dict[int, StoredResponse] = {}

    async def conversation(n: int) -> None:
        previous: StoredResponse | None = None
        for t in range(6):
            stored = turn(f"resp_{n}_{t}", previous, new_input=[{"role": "user", "content": f"{n}/{t}"}])
            await store.put(stored)
            previous = await store.get(stored.id)
            assert previous == stored
            await anyio.sleep(0)
        finals[n] = stored

    async with anyio.create_task_group() as group:
        for n in range(60):
            group.start_soon(conversation, n)
    for n, final in finals.items():
        back = await store.get(final.id)
        assert back == final
        assert [item["content"] for item in back.items if item.get("role") == "user"] == [
            f"{n}/{t}" for t in range(6)
        ]


async def test_concurrent_writers_on_one_response_leave_one_whole_value(make_store: Factory) -> None:
    store = make_store()
    root = turn("resp_root")
    await store.put(root)
    versions = [
        turn("resp_same", root, new_input=[{"role": "user", "content": f"v{n}" * 50}]) for n in range(40)
    ]
    async with anyio.create_task_group() as group:
        for version in versions:
            group.start_soon(store.put, version)
    assert await store.get("resp_same") in versions


async def test_a_closed_store_can_be_used_again(make_store: Factory) -> None:
    store = make_store()
    await store.put(turn("resp_1"))
    await store.aclose()
    await store.aclose()
    assert await store.get("resp_1") is not None


# -- memory only --------------------------------------------------------------------------------------


async def test_memory_evicts_the_least_recently_used() -> None:
    store = MemoryResponseStore(max_responses=3)
    for name in "abc":
        await store.put(turn(f"resp_{name}"))
    assert await store.get("resp_a") is not None  # a is now the most recent
    await store.put(turn("resp_d"))
    assert len(store) == 3
    assert await store.get("resp_b") is None
    assert {name for name in "acd" if await store.get(f"resp_{name}") is not None} == set("acd")


async def test_memory_evicts_the_least_recently_used_past_its_byte_budget() -> None:
    store = MemoryResponseStore(max_bytes=100_000)
    big = [{"role": "user", "content": "x" * 30_000}]
    for name in "abc":
        await store.put(turn(f"resp_{name}", new_input=big))
    assert 90_000 < store.size <= 100_000 and len(store) == 3
    await store.get("resp_a")
    await store.put(turn("resp_d", new_input=big))
    assert await store.get("resp_b") is None and len(store) == 3 and store.size <= 100_000
    huge = turn("resp_huge", new_input=[{"role": "user", "content": "x" * 300_000}])
    await store.put(huge)  # bigger than the budget alone: it stays, the others go
    assert len(store) == 1 and await store.get("resp_huge") == huge
    await store.delete("resp_huge")
    assert store.size == 0


async def test_memory_a_chain_in_use_is_not_evicted_and_an_evicted_ancestor_means_a_miss() -> None:
    store = MemoryResponseStore(max_responses=4)
    first = turn("resp_a")
    await store.put(first)
    await store.put(turn("resp_other_1"))
    await store.put(turn("resp_other_2"))
    second = turn("resp_b", first)
    await store.put(second)  # touches resp_a: resp_other_1 is now the oldest
    await store.put(turn("resp_other_3"))
    assert await store.get("resp_other_1") is None
    assert await store.get("resp_b") == second
    third = turn("resp_c", second)
    await store.put(third)
    for n in range(4, 7):
        await store.put(turn(f"resp_other_{n}"))  # resp_a, then resp_b go
    assert await store.get("resp_c") is None  # its history is incomplete: a miss, not a part


async def test_memory_expired_responses_at_the_old_end_are_dropped_on_put() -> None:
    store = MemoryResponseStore(ttl=0.2)
    for n in range(50):
        await store.put(turn(f"resp_{n}"))
    await anyio.sleep(0.3)
    await store.put(turn("resp_new"))
    assert len(store) == 1


async def test_memory_stores_are_independent_and_check_their_options() -> None:
    one, two = MemoryResponseStore(), MemoryResponseStore()
    await one.put(turn("resp_1"))
    assert await two.get("resp_1") is None
    with pytest.raises(ValueError):
        MemoryResponseStore(max_responses=0)
    with pytest.raises(ValueError):
        MemoryResponseStore(ttl=0)
    with pytest.raises(ValueError):
        MemoryResponseStore(max_bytes=0)


async def test_memory_a_full_store_stays_fast() -> None:
    store = MemoryResponseStore(max_responses=2_000)
    started = time.perf_counter()
    for n in range(20_000):
        await store.put(turn(f"resp_{n}"))
        await store.get(f"resp_{n - 1000}")
    assert len(store) == 2_000
    assert time.perf_counter() - started < 20  # O(1) each: ~1 s here; a scan per call would be minutes


# -- Redis only ---------------------------------------------------------------------------------------


def redis_store(url: str, **options: Any) -> Any:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    options.setdefault("prefix", f"test-state:{uuid.uuid4().hex}:")
    return RedisResponseStore(url, **options)


async def test_redis_keeps_two_strings_per_response_with_their_expiry(redis_url: str) -> None:
    store = redis_store(redis_url, ttl=100)
    try:
        first = turn("resp_a")
        second = turn("resp_b", first)
        await store.put(first)
        await store.put(second)
        client = store.client
        keys = sorted(key.decode() for key in await client.keys(store.prefix + "*"))
        assert keys == [store.prefix + kind + name for kind in ("i:", "r:") for name in ("resp_a", "resp_b")]
        for key in keys:
            assert await client.type(key) == b"string"
            assert 99_000 < await client.pttl(key) <= 100_000
        own = json.loads(await client.get(store.items_key("resp_b")))
        assert own == second.items[len(first.items) :]  # this turn only
        record = json.loads(await client.get(store.record_key("resp_b")))
        assert record["chain"] == ["resp_a"] and record["length"] == len(second.items)
        assert record["response"] == second.response and "items" not in record
    finally:
        await store.aclose()


async def test_redis_an_expiry_in_the_middle_of_a_chain_is_a_miss(redis_url: str) -> None:
    store = redis_store(redis_url)
    try:
        first = turn("resp_a")
        second = turn("resp_b", first)
        third = turn("resp_c", second)
        for stored in (first, second, third):
            await store.put(stored)
        await store.client.pexpire(store.items_key("resp_b"), 1)  # Redis expires it, or evicts it
        await anyio.sleep(0.05)
        assert await store.get("resp_c") is None
        assert await store.get("resp_a") == first
    finally:
        await store.aclose()


async def test_redis_continuing_a_chain_pushes_back_the_expiry_of_all_of_it(redis_url: str) -> None:
    store = redis_store(redis_url, ttl=100)
    try:
        first = turn("resp_a")
        await store.put(first)
        for key in (store.record_key("resp_a"), store.items_key("resp_a")):
            await store.client.pexpire(key, 5_000)
        await store.put(turn("resp_b", first))
        for key in (store.record_key("resp_a"), store.items_key("resp_a")):
            assert await store.client.pttl(key) > 99_000
    finally:
        await store.aclose()


async def test_redis_two_replicas_share_every_chain(redis_url: str) -> None:
    prefix = f"test-state:{uuid.uuid4().hex}:"
    one, two = redis_store(redis_url, prefix=prefix), redis_store(redis_url, prefix=prefix)
    try:
        assert one.client is not two.client
        assert one.client.connection_pool is not two.client.connection_pool
        first = turn("resp_a")
        await one.put(first)
        on_two = await two.get("resp_a")
        assert on_two == first
        second = turn("resp_b", on_two)
        await two.put(second)
        on_one = await one.get("resp_b")
        assert on_one == second
        third = turn("resp_c", on_one)
        await one.put(third)
        assert await two.get("resp_c") == third
        assert await two.delete("resp_a") is True
        assert await one.get("resp_a") is None
        assert await one.get("resp_c") is None
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_another_process_continues_a_chain_and_this_one_reads_it(redis_url: str) -> None:
    prefix = f"test-state:{uuid.uuid4().hex}:"
    store = redis_store(redis_url, prefix=prefix)
    script = textwrap.dedent(
        """
        import asyncio, os, sys, time
        from asgi_llm_gateway.state import StoredResponse
        from asgi_llm_gateway.state.redis import RedisResponseStore

        async def main(url, prefix):
            store = RedisResponseStore(url, prefix=prefix)
            first = await store.get("resp_a")
            assert first is not None and first.items[0]["content"] == "from the parent", first
            new = [{"role": "user", "content": f"from pid {os.getpid()}"}]
            await store.put(StoredResponse(
                id="resp_b", owner=first.owner, response={"id": "resp_b", "output": []},
                items=[*first.items, *new], input_count=1, provider="gemini", created_at=time.time(),
                previous_response_id="resp_a",
            ))
            await store.aclose()
            print(os.getpid())

        asyncio.run(main(*sys.argv[1:]))
        """
    )
    try:
        first = turn("resp_a", new_input=[{"role": "user", "content": "from the parent"}])
        await store.put(first)
        result = await anyio.run_process(
            [sys.executable, "-c", script, redis_url, prefix], check=False, cwd=os.getcwd()
        )
        assert result.returncode == 0, result.stderr.decode()
        child_pid = int(result.stdout.decode())
        assert child_pid != os.getpid()
        second = await store.get("resp_b")
        assert second is not None
        assert second.items == [*first.items, {"role": "user", "content": f"from pid {child_pid}"}]
        assert second.provider == "gemini" and second.previous_response_id == "resp_a"
    finally:
        await store.aclose()


async def test_redis_a_client_passed_in_is_used_and_left_open(redis_url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        from asgi_llm_gateway.state.redis import RedisResponseStore

        store = RedisResponseStore(client=client, prefix=f"test-state:{uuid.uuid4().hex}:")
        assert store.client is client
        await store.put(turn("resp_1"))
        await store.aclose()
        assert await client.ping() is True
        assert await store.get("resp_1") is not None
        with pytest.raises(ValueError):
            RedisResponseStore(redis_url, client=client)
    finally:
        await client.aclose()


async def test_redis_our_own_client_is_closed_by_aclose(redis_url: str) -> None:
    import redis.asyncio

    name = f"store-{uuid.uuid4().hex}"
    store = redis_store(f"{redis_url}?client_name={name}")
    observer = redis.asyncio.Redis.from_url(redis_url)

    async def connections() -> int:
        return sum(1 for client in await observer.client_list() if client["name"] == name)

    try:
        async with anyio.create_task_group() as group:  # several at once: the pool opens several
            for n in range(5):
                group.start_soon(store.put, turn(f"resp_{n}"))
        client = store.client
        assert await connections() >= 2
        await store.aclose()
        with anyio.fail_after(5):  # the server notices each close a moment later
            while await connections():  # the pool is closed, not just returned to
                await anyio.sleep(0.01)
        assert store.client is not client  # a later call opens a new one
        assert await store.get("resp_1") is not None
        assert await connections() == 1
    finally:
        await store.aclose()
        await observer.aclose()


async def test_redis_url_defaults_to_redis_url_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    from asgi_llm_gateway.state.redis import DEFAULT_URL, RedisResponseStore

    monkeypatch.delenv("REDIS_URL", raising=False)
    assert RedisResponseStore().url == DEFAULT_URL
    monkeypatch.setenv("REDIS_URL", redis_url)
    store = RedisResponseStore(prefix=f"test-state:{uuid.uuid4().hex}:")
    try:
        assert store.url == redis_url
        await store.put(turn("resp_1"))
        assert await store.get("resp_1") is not None
        assert redis_url not in repr(store)
    finally:
        await store.aclose()


async def test_redis_unreachable_fails_fast_with_a_connection_error() -> None:
    import redis.exceptions

    store = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            await store.get("resp_1")
        assert time.monotonic() - started < 5
    finally:
        await store.aclose()


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_state_package_or_the_gateway_does_not_import_redis() -> None:
    result = run_python(
        "import sys, asgi_llm_gateway, asgi_llm_gateway.state, asgi_llm_gateway.state.memory\n"
        "print(sorted(name for name in sys.modules if name == 'redis' or name.startswith('redis.')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_redis_store_without_the_redis_package_says_which_extra_to_install() -> None:
    result = run_python(
        "import sys\nsys.modules['redis'] = None\nsys.modules['redis.asyncio'] = None\n"
        "import asgi_llm_gateway.state.redis"
    )
    assert result.returncode != 0
    assert "pip install 'asgi-llm-gateway[redis]'" in result.stderr


def test_an_empty_memory_store_passed_in_is_kept() -> None:
    """Regression: Gateway took `response_store or MemoryResponseStore()`; an empty memory store has len 0,
    so a host's `MemoryResponseStore(ttl=60)` was silently replaced by a default one (30-day TTL)."""
    from asgi_llm_gateway import Gateway

    store = MemoryResponseStore(ttl=60)
    assert Gateway(response_store=store).response_store is store
