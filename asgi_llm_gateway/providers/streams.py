"""Stream plumbing shared by every HTTP provider: upstream reads → batches of chunks, and the errors a
broken stream becomes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

from ..errors import GatewayError
from .base import Translator, aclose_iterator

__all__ = ["bad_upstream_data", "one_by_one", "stream_ended_early", "translate_reads"]

T = TypeVar("T")
Out = TypeVar("Out")


async def translate_reads(
    reads: AsyncIterator[Iterable[T]], translator: Translator[T, Out]
) -> AsyncIterator[list[Out]]:
    """One list of chunks per upstream read that produced any, from the read's items (events or frames).

    A read that fails part-way still hands over what it translated before the failure is raised: the client
    gets every chunk the upstream sent before it. Stops after the read in which the translator turns `done`
    (the upstream said the stream is complete), closing `reads`, which releases the connection at once. When
    the reads run out instead, `translator.end()` gives the last chunks, or raises when the stream was cut
    short."""
    feed = translator.feed
    try:
        async for items in reads:
            batch: list[Out] = []
            try:
                for item in items:
                    batch.extend(feed(item))
            except Exception:
                if batch:
                    yield batch
                raise
            if batch:
                yield batch
            if translator.done:
                return
    finally:
        await aclose_iterator(reads)
    last = translator.end()
    if last:
        yield last


async def one_by_one(batches: AsyncIterator[list[T]]) -> AsyncIterator[T]:
    """Flatten a stream of batches; closing the result closes the source (and its upstream connection)."""
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await aclose_iterator(batches)


def stream_ended_early(kind: str) -> GatewayError:
    """The upstream closed a stream before saying it was complete: never report that as success."""
    return GatewayError(
        f"{kind}: upstream stream ended before it was complete", status=502, code="upstream_stream_incomplete"
    )


def bad_upstream_data(kind: str, detail: str) -> GatewayError:
    return GatewayError(
        f"{kind}: upstream sent malformed data ({detail})", status=502, code="upstream_bad_response"
    )
