"""Helper tasks that live exactly as long as one request: the disconnect watcher and a stream's idle timer.

On asyncio they are bare tasks: an anyio task group costs about 40 µs per request under uvloop (measured), a
bare task about 4 µs, and every request pays it. Elsewhere (trio) an anyio task group does the same job.
`watched` is a class rather than a generator context manager: it is on every request's path, and the
generator's machinery cost as much as the scope it managed.

What the disconnect cancels depends on what the block may do. A block that may enter anyio shields (hooks
that settle or admit, a response store, a stream's cleanup) runs under an anyio cancel scope, whose
cancellation waits for a shield to end. A block that enters none (a plain call with no hook, the default) is
cancelled by asyncio itself, through an `asyncio.timeout` that the disconnect expires: the same delivery the
call's deadline already uses, without the scope's per-task bookkeeping (a plain call: 939k → 923k
instructions in `bench/instructions.py`, 306 → 302 µs of CPU at c=64 over ten `bench/compare.py` rounds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .deadline import NATIVE_TIMEOUT
from .transport import on_asyncio

__all__ = ["Spawn", "watched"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
#: Starts a helper task for the rest of the request.
Helper = Callable[[], Coroutine[Any, Any, None]]
Spawn = Callable[[Helper], None]


class watched:
    """Run the block so that the client's disconnect cancels it (quietly: the block just ends); yields
    `spawn` for more helper tasks. Every helper is cancelled when the block ends.

    `shielded`: the block may enter anyio shields (`anyio.CancelScope(shield=True)`), which only an anyio
    scope's cancellation respects. Say False only for a block that enters none."""

    __slots__ = ("_group", "_receive", "_scope", "_shielded", "_tasks", "_timeout")

    def __init__(self, receive: Receive, *, shielded: bool = True) -> None:
        self._receive = receive
        self._shielded = shielded
        self._tasks: list[asyncio.Task[None]] = []
        self._scope: anyio.CancelScope | None = None
        self._timeout: Any = None  # asyncio.Timeout, from Python 3.11
        self._group: TaskGroup | None = None

    async def __aenter__(self) -> Spawn:
        if not on_asyncio():
            group = self._group = anyio.create_task_group()
            await group.__aenter__()
            group.start_soon(_cancel_on_disconnect, self._receive, group.cancel_scope.cancel)
            return self._start_in_group
        if not self._shielded and NATIVE_TIMEOUT:
            timeout = self._timeout = asyncio.timeout(None)  # type: ignore[attr-defined,unused-ignore]
            await timeout.__aenter__()
            # A deadline in the past (loop time 0) expires it at once: the task is cancelled.
            self._spawn(lambda: _cancel_on_disconnect(self._receive, lambda: timeout.reschedule(0)))
            return self._spawn
        scope = self._scope = anyio.CancelScope()
        scope.__enter__()
        self._spawn(lambda: _cancel_on_disconnect(self._receive, scope.cancel))
        return self._spawn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        group = self._group
        if group is not None:
            group.cancel_scope.cancel()
            return await group.__aexit__(exc_type, exc, tb)
        for task in self._tasks:
            task.cancel()
        timeout = self._timeout
        if timeout is not None:
            try:
                return await timeout.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
            except TimeoutError:  # raised for its own expiry only: the client left, and the block just ends
                return True
        assert self._scope is not None
        return self._scope.__exit__(exc_type, exc, tb)

    def _spawn(self, helper: Helper) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(helper()))

    def _start_in_group(self, helper: Helper) -> None:
        assert self._group is not None
        self._group.start_soon(helper)


async def _cancel_on_disconnect(receive: Receive, cancel: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel()
