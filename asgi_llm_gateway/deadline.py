"""`Deadline`: a time limit on a block, on asyncio's own timer when there is one.

Every call runs under one (the total timeout of a plain call, the first-chunk timeout of a stream). anyio's
`fail_after` is a cancel scope built by a generator context manager, with a task-state lookup on entry;
`asyncio.timeout` (Python 3.11+) is one timer handle. Using it here, with the disconnect watch made a class,
took 57k of 997k instructions off a plain call (bench/instructions.py). Under trio, or on Python 3.10,
anyio's scope does the job. Either way the block ends in `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Any

import anyio

from .transport import on_asyncio

__all__ = ["NATIVE_TIMEOUT", "Deadline"]

#: Whether asyncio has its own timeout scope (`asyncio.timeout`, Python 3.11+).
NATIVE_TIMEOUT = sys.version_info >= (3, 11)


class Deadline:
    """`async with Deadline(seconds):` cancels the block and raises `TimeoutError` once `seconds` pass."""

    __slots__ = ("_inner", "_native", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._native = False
        self._inner: Any = None

    async def __aenter__(self) -> None:
        if NATIVE_TIMEOUT and on_asyncio():
            self._native = True
            self._inner = asyncio.timeout(self._seconds)  # type: ignore[attr-defined,unused-ignore]
            await self._inner.__aenter__()
        else:
            self._inner = anyio.fail_after(self._seconds)
            self._inner.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._native:
            return await self._inner.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
        return self._inner.__exit__(exc_type, exc, tb)  # type: ignore[no-any-return]
