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
Such a call's watcher is started only once the call has lasted (`Lookout`, one timer per gateway): a short
answer never pays for the task.
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

__all__ = ["Lookout", "Spawn", "watched"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
#: Starts a helper task for the rest of the request.
Helper = Callable[[], Coroutine[Any, Any, None]]
Spawn = Callable[[Helper], None]


class Lookout:
    """Starts the disconnect watch of a gateway's plain calls once they have run for `delay` seconds, from
    one loop timer for all of them: a call that ends sooner (most short answers) never pays for a watcher
    task (its creation, its first step, its cancellation: ~10 µs of a ~240 µs call at c=64), and a client
    that leaves a call is noticed within twice `delay`, long before a model's answer would have come.

    The timer is armed while calls are waiting, on the loop of the latest call: a gateway may be served by
    one loop after another (tests, a host that restarts its loop), and a closed loop's timer never fires."""

    __slots__ = ("_loop", "_timer", "_waiting", "delay")

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        #: The calls waiting for their watch: what starts it, by a key of their own, in order of arrival.
        self._waiting: dict[object, tuple[float, Callable[[], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wait(self, key: object, start: Callable[[], None]) -> None:
        """Call `start` once the call `key` has run for `delay` seconds, unless `done(key)` comes first."""
        loop = asyncio.get_running_loop()
        self._waiting[key] = (loop.time(), start)
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self.delay, self._tick)

    def done(self, key: object) -> None:
        self._waiting.pop(key, None)

    def _tick(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        due = loop.time() - self.delay
        for key, (since, start) in list(self._waiting.items()):
            if since > due:
                break  # in order of arrival: the rest came later still
            del self._waiting[key]
            start()
        if self._waiting:
            self._timer = loop.call_later(self.delay, self._tick)


class watched:
    """Run the block so that the client's disconnect cancels it (quietly: the block just ends); yields
    `spawn` for more helper tasks. Every helper is cancelled when the block ends.

    `shielded`: the block may enter anyio shields (`anyio.CancelScope(shield=True)`), which only an anyio
    scope's cancellation respects. Say False only for a block that enters none. `lookout`: with a block that
    is not `shielded`, start the watch only once the block has run for the lookout's delay (see `Lookout`)."""

    __slots__ = ("_group", "_lookout", "_receive", "_scope", "_shielded", "_tasks", "_timeout")

    def __init__(self, receive: Receive, *, shielded: bool = True, lookout: Lookout | None = None) -> None:
        self._receive = receive
        self._shielded = shielded
        self._lookout = lookout
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
            if self._lookout is None:
                self._watch()
            else:
                self._lookout.wait(self, self._watch)
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
        if self._lookout is not None:
            self._lookout.done(self)
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

    def _watch(self) -> None:
        """Start the watcher of a block under `_timeout`: a disconnect expires it with a deadline in the past
        (loop time 0), which cancels the task at once."""
        timeout = self._timeout
        self._spawn(lambda: _cancel_on_disconnect(self._receive, lambda: timeout.reschedule(0)))

    def _spawn(self, helper: Helper) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(helper()))

    def _start_in_group(self, helper: Helper) -> None:
        assert self._group is not None
        self._group.start_soon(helper)


async def _cancel_on_disconnect(receive: Receive, cancel: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel()
