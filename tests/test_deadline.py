"""`Deadline`: asyncio's own timer where there is one, anyio's scope elsewhere; the same behaviour."""

from __future__ import annotations

import anyio
import pytest

from asgi_llm_gateway.deadline import Deadline

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_block_that_outlives_its_deadline_ends_in_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        async with Deadline(0.01):
            await anyio.sleep(5)


async def test_a_block_within_its_deadline_is_left_alone_and_nothing_fires_later() -> None:
    async with Deadline(0.05):
        await anyio.sleep(0)
    await anyio.sleep(0.1)  # a timer left behind would cancel this


async def test_an_outer_cancellation_stays_a_cancellation_not_a_timeout() -> None:
    """The client leaving (the watcher's scope) inside a call's deadline is not the call timing out."""
    with anyio.CancelScope() as scope:
        async with Deadline(5):
            scope.cancel()
            await anyio.sleep(5)
        pytest.fail("the block went on after its scope was cancelled")  # pragma: no cover
    assert scope.cancelled_caught


async def test_a_deadline_inside_a_shield_still_fires() -> None:
    with anyio.CancelScope(shield=True):
        with pytest.raises(TimeoutError):
            async with Deadline(0.01):
                await anyio.sleep(5)
