"""What a provider is: the contract the gateway calls, and the one shape of a stream translator.

A provider takes the validated OpenAI request dict (read-only: fallback targets share it) and the upstream
model id, and returns a `chat.completion` dict, or an async iterator of `chat.completion.chunk` dicts. If it
knows the usage of a stream it ends with a usage chunk (`choices: []`); the gateway forwards that chunk only
to clients that asked for it. The gateway sets `model` on what it returns.

The gateway reads streams through `stream_batches()`: the chunks that are ready together, which it writes
to the client in one send. Its default takes `stream()` one chunk at a time, so a provider only has to write
`stream()`; the HTTP providers (`http.py`) group the chunks of each upstream read.

Each provider's translation is pure (request dict → native body, native answer → completion) plus one
`StreamTranslator` per stream; `HTTPProvider` in `http.py` is the only place that touches the network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["Chunk", "Provider", "Request", "StreamTranslator", "aclose_iterator"]

Request = Mapping[str, Any]
Chunk = dict[str, Any]
T = TypeVar("T")
Item = TypeVar("Item", contravariant=True)


class StreamTranslator(Protocol[Item]):
    """A provider's native stream items (SSE events, event-stream frames, JSON objects) → chunks.

    `feed` translates one item; `done` turns true once the upstream said the stream is complete (reading
    stops there); `end` gives the last chunks when the items run out, and raises a `GatewayError` when the
    stream was cut short: a cut stream is never a success."""

    @property
    def done(self) -> bool: ...

    def feed(self, item: Item) -> list[Chunk]: ...

    def end(self) -> list[Chunk]: ...


class Provider(ABC):
    """A chat-completions backend. Subclass it to plug any model into the gateway."""

    #: Shown in error messages and usage records.
    kind: ClassVar[str] = "provider"

    @abstractmethod
    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        """Serve a non-streaming request; returns a `chat.completion` dict."""

    @abstractmethod
    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        """Serve a streaming request; yields `chat.completion.chunk` dicts."""

    async def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[Chunk]]:
        """The same chunks as `stream()`, in non-empty lists of those ready at the same time. Override it
        (and derive `stream()` with `one_by_one`) when chunks arrive in groups."""
        chunks = self.stream(request, model)
        try:
            async for chunk in chunks:
                yield [chunk]
        finally:
            await aclose_iterator(chunks)

    async def list_models(self) -> list[str]:
        """Upstream model ids this provider serves (without the provider prefix); empty when unknown."""
        return []

    def serves(self, model: str) -> bool:
        """Whether `model` may be sent to this provider. Most upstreams decide that themselves."""
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections. Safe to call more than once."""


async def aclose_iterator(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator that has `aclose` (generators do; a plain iterator has nothing to close)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
