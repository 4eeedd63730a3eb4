"""What a provider is: the contract the gateway calls, and the one shape of a stream translator.

A provider takes the validated OpenAI request dict (read-only: fallback targets share it) and the upstream
model id, and returns a `chat.completion` dict, or an async iterator of `chat.completion.chunk` dicts. If it
knows the usage of a stream it ends with a usage chunk (`choices: []`); the gateway forwards that chunk only
to clients that asked for it. The gateway sets `model` on what it returns.

The gateway reads streams through `stream_batches()`: the chunks that are ready together, which it writes
to the client in one send. Its default takes `stream()` one chunk at a time, so a provider only has to write
`stream()`; the HTTP providers (`http.py`) group the chunks of each upstream read. The chat door reads them
through `chat_batches()`, where an upstream that already writes the client's format (the OpenAI family) may
hand plain content chunks over as the bytes it sent (`VerbatimChunk`), to be relayed without re-encoding,
and a translating provider may write runs of text deltas around the upstream's own strings (`runs.py`).

Each provider's translation is pure (request dict → native body, native answer → completion) plus one
`StreamTranslator` per stream; `HTTPProvider` in `http.py` is the only place that touches the network.

Optional capabilities, for the Anthropic Messages door: a provider that `speaks_messages` for a model takes
native Messages requests as they are (`messages`, `messages_batches`, `count_message_tokens`); any provider
with a counting API counts a chat request's input tokens (`count_tokens`). For the OpenAI Responses door: a
provider that `speaks_responses` for a model takes native Responses requests (`responses`,
`responses_batches`). For the embeddings door: a provider that `embeds` a model serves `embed` (the
request and answer shapes are in `embeddings.py`). The defaults say "not here".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast

from ..errors import GatewayError
from ..wire import TextFrame, dumps, loads

__all__ = [
    "ChatItem",
    "Chunk",
    "EventRun",
    "Provider",
    "Request",
    "StreamTranslator",
    "TextFrame",
    "Translator",
    "VerbatimChunk",
    "aclose_iterator",
    "model_member",
]

Request = Mapping[str, Any]
Chunk = dict[str, Any]
T = TypeVar("T")
Item = TypeVar("Item", contravariant=True)
Out = TypeVar("Out")


class Translator(Protocol[Item, Out]):
    """A provider's native stream items (SSE events, event-stream frames, JSON objects) → chunks: canonical
    ones (`StreamTranslator`), or for the chat door's own reader `ChatItem`s.

    `feed` translates one item; `done` turns true once the upstream said the stream is complete (reading
    stops there); `end` gives the last chunks when the items run out, and raises a `GatewayError` when the
    stream was cut short: a cut stream is never a success."""

    @property
    def done(self) -> bool: ...

    def feed(self, item: Item) -> list[Out]: ...

    def end(self) -> list[Out]: ...


class VerbatimChunk:
    """A content chunk already in the chat door's bytes: one choice, text only, no finish, no usage. Either
    an OpenAI-compatible upstream wrote it so, or a translator wrote it around the JSON string of a text
    delta (`runs.py`). The door relays its bytes with only `model` (and `usage: null`) changed, instead of
    parsing, normalising and encoding it again; the stream's other chunks stay `Chunk` dicts.

    A run of such chunks may come as its `frame` and strings (`framed`): then the door writes its own bytes
    around the strings, and `data` is joined only if something asks for it."""

    __slots__ = ("_data", "count", "frame", "index", "model", "pads", "texts", "usage_null")

    def __init__(
        self,
        data: bytes | None,
        model: str,
        index: int,
        usage_null: bool,
        count: int = 1,
        texts: list[bytes] | None = None,
        *,
        frame: TextFrame | None = None,
        pads: list[bytes] | None = None,
    ) -> None:
        #: None for a framed run until something asks for `data`.
        self._data = data
        #: How many events `data` holds.
        self.count = count
        #: The upstream's `model`, as the chunk names it.
        self.model = model
        #: The choice's index.
        self.index = index
        #: Whether the chunk carries `"usage": null` (OpenAI writes it when usage was asked for).
        self.usage_null = usage_null
        #: Each event's text, as the JSON string in it, when the reader knows where it is: the other doors
        #: write their own events around these (`MessagesStreamEncoder`, `ResponsesStreamEncoder`).
        self.texts = texts
        #: What every event shares around `texts` (and `pads`), when the chunk is a framed run.
        self.frame = frame
        #: Each event's pad, when the frame has one.
        self.pads = pads

    @classmethod
    def framed(
        cls,
        frame: TextFrame,
        texts: list[bytes],
        pads: list[bytes] | None,
        model: str,
        index: int,
        usage_null: bool,
    ) -> VerbatimChunk:
        """A run of events that are `frame` around each of `texts` (and `pads`)."""
        return cls(None, model, index, usage_null, len(texts), texts, frame=frame, pads=pads)

    @property
    def data(self) -> bytes:
        """The event's data: one JSON object (parsed once, or the same bytes as a parsed one but its text).
        With `count` > 1, the data of that many such events of one read, joined by `\n\ndata: `."""
        data = self._data
        if data is None:
            assert self.frame is not None and self.texts is not None
            data = self._data = self.frame.write(self.texts, self.pads, b"\n\ndata: ")
        return data

    def text_strings(self) -> list[bytes] | None:
        """`texts` without the empty strings (an empty text makes no delta on any door); None when the
        reader did not know them."""
        texts = self.texts
        return None if texts is None else [text for text in texts if text != b'""']

    def chunks(self) -> list[Chunk]:
        """The events as canonical chunks, parsed: for a reader that has no use for the bytes."""
        return [loads(data) for data in self.data.split(b"\n\ndata: ")]


class EventRun:
    """Consecutive native stream events of one read, relayed as the bytes the upstream sent (each with its
    blank line): a run of text deltas the provider's reader recognised by their bytes. `first` and `last`
    are their sequence numbers; the door sends `data` as it is."""

    __slots__ = ("count", "data", "first", "last")

    def __init__(self, data: bytes, count: int, first: int, last: int) -> None:
        self.data = data
        self.count = count
        self.first = first
        self.last = last


def model_member(model: str) -> bytes:
    """`"model":"<model>"` as compact JSON writes it: what the chat door looks for in a `VerbatimChunk`."""
    return b'"model":' + dumps(model)


#: The usual translator: native items → canonical chunks.
StreamTranslator = Translator[Item, Chunk]

#: What `chat_batches` gives: canonical chunks, and content chunks already in the chat door's bytes.
ChatItem = Chunk | VerbatimChunk


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

    def chat_batches(self, request: Request, model: str) -> AsyncIterator[list[ChatItem]]:
        """The chat door's stream: `stream_batches()`, unless the upstream writes chunks in the client's own
        format and the provider can pass plain content chunks on as they came (`VerbatimChunk`)."""
        # lists of chunks are lists of ChatItems to a reader, and the door only reads them
        return cast("AsyncIterator[list[ChatItem]]", self.stream_batches(request, model))

    async def list_models(self) -> list[str]:
        """Upstream model ids this provider serves (without the provider prefix); empty when unknown."""
        return []

    def serves(self, model: str) -> bool:
        """Whether `model` may be sent to this provider. Most upstreams decide that themselves."""
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections. Safe to call more than once."""

    # -- optional: the Anthropic Messages door ---------------------------------------------------------

    def speaks_messages(self, model: str) -> bool:
        """Whether this provider serves Anthropic Messages requests natively for `model` (no translation)."""
        return False

    async def messages(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> dict[str, Any]:
        """A native Anthropic Messages request (validated, as the client sent it; `model` is the upstream id
        to use instead of body["model"]; `beta` the client's anthropic-beta values) → the native `message`
        dict. Only where `speaks_messages(model)`; the default raises."""
        raise _not_native(self.kind, model)

    def messages_batches(
        self, body: Mapping[str, Any], model: str, beta: Sequence[str]
    ) -> AsyncIterator[list[dict[str, Any] | bytes]]:
        """The same, streamed: non-empty lists of native Anthropic stream events, each the parsed `data`
        object (it has its "type": message_start, content_block_start, …, message_stop; `ping` may be
        dropped), or text delta events already as SSE bytes, as the upstream wrote them (relayed as they
        are). An upstream `error` event, a cut or garbage stream raises `GatewayError` (as every stream
        here does). Only where `speaks_messages(model)`; the default raises when called."""
        raise _not_native(self.kind, model)

    async def count_message_tokens(self, body: Mapping[str, Any], model: str, beta: Sequence[str]) -> int:
        """Input tokens of a native Messages request, counted by the upstream (only where
        `speaks_messages(model)`; the default raises)."""
        raise _not_native(self.kind, model)

    async def count_tokens(self, request: Request, model: str) -> int | None:
        """Input tokens of a canonical (OpenAI chat) request, counted by the upstream's own counting API,
        system prompt and tools included; None when the upstream has no counting API (the default)."""
        return None

    # -- optional: the OpenAI Responses door -----------------------------------------------------------

    def speaks_responses(self, model: str) -> bool:
        """Whether this provider serves OpenAI Responses requests natively for `model` (no translation)."""
        return False

    async def responses(self, body: Mapping[str, Any], model: str) -> dict[str, Any]:
        """A native Responses request (validated; `model` is the upstream id to use instead of
        body["model"]; the caller has already expanded any `previous_response_id` into `input` and set
        `store: false`, so the upstream keeps no state) → the native `response` dict. Only where
        `speaks_responses(model)`; the default raises."""
        raise _not_native(self.kind, model, "OpenAI Responses", "responses_not_native")

    def responses_batches(
        self, body: Mapping[str, Any], model: str
    ) -> AsyncIterator[list[dict[str, Any] | EventRun]]:
        """The same, streamed: non-empty lists of native Responses stream events, each the parsed `data`
        object (it has its "type" and "sequence_number"), or an `EventRun` of text deltas relayed as their
        bytes. The stream ends after `response.completed` or
        `response.incomplete`; `response.failed` or an `error` event raises the `GatewayError` it stands
        for, and a cut or garbage stream raises too (never a silent end). Only where
        `speaks_responses(model)`; the default raises when called."""
        raise _not_native(self.kind, model, "OpenAI Responses", "responses_not_native")

    # -- optional: the embeddings door -----------------------------------------------------------------

    def embeds(self, model: str) -> bool:
        """Whether this provider serves embeddings for `model`; routing skips the targets that do not."""
        return False

    async def list_embedding_models(self) -> list[str]:
        """Upstream embedding model ids that `list_models` leaves out (for `/v1/models`); empty by default,
        where the upstream lists them together or cannot tell them apart."""
        return []

    async def embed(self, request: Mapping[str, Any], model: str) -> dict[str, Any]:
        """An embeddings request (`embeddings.EmbeddingRequest`: the validated body, `input` always a list) →
        OpenAI's embeddings answer with float vectors in input order and `usage`. Only where
        `embeds(model)`; the default raises."""
        raise _not_native(self.kind, model, "embeddings", "embeddings_not_supported")


def _not_native(
    kind: str, model: str, api: str = "Anthropic Messages", code: str = "messages_not_native"
) -> GatewayError:
    """A native call on a provider that does not speak that API for `model`: the caller should have asked
    `speaks_messages`/`speaks_responses` first, so this is the gateway's fault, never the client's."""
    return GatewayError(
        f"{kind}: no native {api} API for model '{model}'", status=500, type="server_error", code=code
    )


async def aclose_iterator(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator that has `aclose` (generators do; a plain iterator has nothing to close)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
