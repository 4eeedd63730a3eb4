"""`watched`: the client's disconnect cancels the block, quietly, in both of its ways: through an anyio scope
(`shielded=True`, what hooks and streams need) and through asyncio's own timeout (`shielded=False`, a plain
call with no hook). Everything else that ends the block ends it as it would without the watch."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from asgi_llm_gateway.watch import Lookout, watched

pytestmark = pytest.mark.anyio

BOTH = pytest.mark.parametrize("shielded", [True, False], ids=["anyio-scope", "asyncio-timeout"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    """An ASGI `receive` whose `http.disconnect` comes when `leave` is set."""

    def __init__(self) -> None:
        self.leave = asyncio.Event()

    async def receive(self) -> MutableMapping[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}


@BOTH
async def test_a_disconnect_ends_the_block_quietly_and_leaves_no_cancellation(
    shielded: bool,
) -> None:
    client, reached = Client(), []
    async with watched(client.receive, shielded=shielded):
        client.leave.set()
        await asyncio.sleep(5)
        reached.append("after the sleep")  # pragma: no cover - the disconnect cancels the sleep
    assert reached == []
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # the task awaits normally afterwards: no cancellation is left pending


@BOTH
async def test_a_block_that_ends_first_stops_its_helpers(shielded: bool) -> None:
    client, started = Client(), asyncio.Event()
    helpers: list[asyncio.Task[Any]] = []

    async def helper() -> None:
        task = asyncio.current_task()
        assert task is not None
        helpers.append(task)
        started.set()
        await asyncio.sleep(5)

    async with watched(client.receive, shielded=shielded) as spawn:
        spawn(helper)
        await started.wait()
    await asyncio.sleep(0)
    assert all(task.cancelled() for task in helpers) and helpers


@BOTH
@pytest.mark.parametrize("error", [ValueError("bad"), TimeoutError("the call's own deadline")])
async def test_an_error_of_the_block_comes_out_unchanged(shielded: bool, error: Exception) -> None:
    client = Client()
    with pytest.raises(type(error)) as caught:
        async with watched(client.receive, shielded=shielded):
            raise error
    assert caught.value is error


@BOTH
async def test_a_cancellation_from_outside_is_not_swallowed(shielded: bool) -> None:
    client, inside = Client(), asyncio.Event()

    async def request() -> None:
        async with watched(client.receive, shielded=shielded):
            inside.set()
            await asyncio.sleep(5)

    task = asyncio.ensure_future(request())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@BOTH
async def test_a_disconnect_during_the_call_deadline_is_the_disconnect(shielded: bool) -> None:
    """The call's own deadline (an inner `asyncio.timeout`) must not turn the client's leaving into a
    `TimeoutError`, nor the other way round."""
    client = Client()
    async with watched(client.receive, shielded=shielded):
        async with asyncio.timeout(5):  # type: ignore[attr-defined,unused-ignore]
            client.leave.set()
            await asyncio.sleep(5)
    with pytest.raises(TimeoutError):
        async with watched(Client().receive, shielded=shielded):
            async with asyncio.timeout(0.01):  # type: ignore[attr-defined,unused-ignore]
                await asyncio.sleep(5)


async def test_a_shield_inside_an_anyio_watch_finishes_before_the_disconnect_lands() -> None:
    """Why hooks and streams keep the anyio scope: a shielded section (a limits admission, a settlement, a
    stream's cleanup) runs to its end though the client left in the middle of it."""
    client, done = Client(), []
    async with watched(client.receive, shielded=True):
        with anyio.CancelScope(shield=True):
            client.leave.set()
            await asyncio.sleep(0.05)
            done.append("shielded work")
        await asyncio.sleep(5)
    assert done == ["shielded work"]


# -- the lookout: a plain call's watch starts only once the call has lasted ---------------------------------


class CountingClient(Client):
    def __init__(self) -> None:
        super().__init__()
        self.receives = 0

    async def receive(self) -> MutableMapping[str, Any]:
        self.receives += 1
        return await super().receive()


async def test_a_block_shorter_than_the_lookout_delay_is_never_watched() -> None:
    lookout, client = Lookout(delay=0.05), CountingClient()
    for _ in range(3):
        async with watched(client.receive, shielded=False, lookout=lookout):
            await asyncio.sleep(0)
    await asyncio.sleep(0.15)  # past the delay: the calls that ended are not watched afterwards
    assert client.receives == 0 and lookout._waiting == {}
    assert lookout._timer is None  # nothing waits: the timer is not re-armed


@pytest.mark.parametrize("leave_after", [0.0, 0.08], ids=["left-at-once", "left-after-the-delay"])
async def test_a_block_that_lasts_is_watched_and_a_disconnect_ends_it_within_twice_the_delay(
    leave_after: float,
) -> None:
    lookout, client, reached = Lookout(delay=0.05), CountingClient(), []
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def leave() -> None:
        await asyncio.sleep(leave_after)
        client.leave.set()

    leaving = asyncio.create_task(leave())
    async with watched(client.receive, shielded=False, lookout=lookout):
        await asyncio.sleep(5)
        reached.append("after the sleep")  # pragma: no cover - the disconnect cancels the sleep
    ended = loop.time() - started
    await leaving
    assert reached == [] and client.receives == 1
    assert ended < max(leave_after, 2 * lookout.delay) + 0.5
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


def test_one_lookout_serves_one_loop_after_another() -> None:
    """A gateway may be served by one event loop after another (tests, a host that restarts its loop): the
    lookout re-arms its timer on the loop of the latest call, even when the last loop closed with it armed."""
    lookout = Lookout(delay=0.02)

    async def a_call(seconds: float) -> int:
        client = CountingClient()
        async with watched(client.receive, shielded=False, lookout=lookout):
            await asyncio.sleep(seconds)
        return client.receives

    assert asyncio.run(a_call(0)) == 0  # the loop closes with the lookout's timer still armed
    assert lookout._timer is not None
    assert asyncio.run(a_call(0.1)) == 1
