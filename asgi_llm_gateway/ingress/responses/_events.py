"""The byte-level pieces of the Responses stream: numbered events, delta prefixes, and the open runs.

Every event is `event: <type>\ndata: <json>\n\n` with `type` first and `sequence_number` last in the JSON,
the number counting up from 0 across the whole stream. A delta event is built from a prefix made once per
part (`delta_prefix`: everything up to the text), the JSON string of the text, and the number: the only
per-chunk work besides the `dumps` of the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...wire import dumps
from ._custom import InputDecoder

__all__ = ["Call", "EventWriter", "Part", "delta_prefix"]

_SEQ = b',"sequence_number":%d}\n\n'


class EventWriter:
    """Numbers the events it writes; the stream encoder is one."""

    __slots__ = ("_seq",)

    def __init__(self) -> None:
        self._seq = 0

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        payload = dumps({"type": kind, **fields, "sequence_number": seq})
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"

    def _delta(self, prefix: bytes, text: str) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return prefix + dumps(text) + _SEQ % seq

    def _deltas(self, prefix: bytes, strings: list[bytes]) -> bytes:
        """One delta event per JSON string, numbered in turn."""
        seq = self._seq
        self._seq = seq + len(strings)
        return b"".join([prefix + string + _SEQ % number for number, string in enumerate(strings, seq)])


def delta_prefix(kind: str, fields: Mapping[str, Any]) -> bytes:
    """A delta event's bytes up to its text: `event: <kind>\\ndata: {"type":…,<fields>,"delta":`."""
    head = dumps({"type": kind, **fields})[:-1]
    return b"event: " + kind.encode() + b"\ndata: " + head + b',"delta":'


class Part:
    """An open text run, a message part or a reasoning summary; `prefix` is its delta event up to the text."""

    __slots__ = ("index", "kind", "prefix", "texts")

    def __init__(self, kind: str, index: int, prefix: bytes) -> None:
        self.kind = kind
        self.index = index  # content_index, or summary_index for reasoning
        self.prefix = prefix
        self.texts: list[str] = []


class Call:
    """An open tool call: its item (arguments or input still empty), the upstream's id for it, its delta
    prefix; for a custom tool's call, the decoder of its input and the input streamed so far."""

    __slots__ = ("arguments", "decoder", "index", "item", "prefix", "streamed", "upstream_id")

    def __init__(
        self, item: dict[str, Any], index: int, upstream_id: Any, prefix: bytes, decoder: InputDecoder | None
    ) -> None:
        self.item = item
        self.index = index
        self.upstream_id = upstream_id
        self.prefix = prefix
        self.decoder = decoder
        self.arguments: list[str] = []
        self.streamed: list[str] = []
