"""Text deltas recognised by their bytes, for the chat door of a translated provider.

In a burst, most of an Anthropic, Gemini or Bedrock stream is text deltas that differ only in their text: a
JSON string that the chat door's content chunk would hold as it is. A provider's chat reader recognises
those events by their exact bytes (`text_runs`), the translator checks that its state allows them, and
`content_run` writes the chunks around the upstream's own strings: one `VerbatimChunk` for a run of them,
instead of one parse, one dict and one encode per event. Every other event is parsed as usual.

A string is only taken when it is a JSON string by JSON's grammar (`TEXT`) and valid UTF-8, so what the
client gets is valid JSON with the same text, if not the same escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ..wire import ChunkBuilder
from .base import VerbatimChunk

__all__ = ["JSON_STRING", "TEXT", "TextRun", "content_run", "text_runs", "valid_utf8"]

#: The inside of a JSON string: runs of anything but a quote, a backslash or a raw control character, between
#: JSON's escapes; a `\u` escape is no surrogate half, or a high and a low half together (orjson refuses a
#: lone half). Written as "unrolled" runs rather than one alternation per character: 2-4x faster to match.
_PLAIN = rb'[^"\\\x00-\x1f]*'
_ESCAPE = (
    rb'\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4}'
    rb"|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)
_INSIDE = _PLAIN + b"(?:" + _ESCAPE + _PLAIN + b")*"
#: A JSON string.
JSON_STRING = b'"' + _INSIDE + b'"'
#: A JSON string that is not empty: an empty text delta makes no chunk, so it is left to the parse.
TEXT = b'"(?!")' + _INSIDE + b'"'

Item = TypeVar("Item")
Out = TypeVar("Out")


class TextRun:
    """Consecutive text deltas of one block (or candidate) `index`, each the JSON string (quotes included)
    the upstream wrote. `last` is the run's last event as the reader had it, for a translator that reads
    something else from it later (Gemini's cumulative usage)."""

    __slots__ = ("index", "last", "strings")

    def __init__(self, index: int, strings: list[bytes], last: object = None) -> None:
        self.index = index
        self.strings = strings
        self.last = last


def text_runs(
    parts: Iterable[Item],
    text_of: Callable[[Item], tuple[int, bytes] | None],
    other: Callable[[Item], Iterable[Out]],
) -> Iterator[Out | TextRun]:
    """`parts` in order, with every run of consecutive ones that `text_of` recognises as a text delta of the
    same index (giving the index and the JSON string) as one `TextRun`; any other part becomes what `other`
    makes of it (its events, say). When `parts` fails part-way (a bad frame), what came before still comes
    out first."""
    run: TextRun | None = None
    try:
        for part in parts:
            text = text_of(part)
            if text is None or not valid_utf8(text[1]):  # not UTF-8: the usual path says what it is
                if run is not None:
                    yield run
                    run = None
                yield from other(part)
                continue
            index, string = text
            if run is not None:
                if run.index == index:
                    run.strings.append(string)
                    run.last = part
                    continue
                yield run
            run = TextRun(index, [string], part)
    except Exception:
        if run is not None:
            yield run
        raise
    if run is not None:
        yield run


def content_run(builder: ChunkBuilder, strings: list[bytes], index: int = 0) -> VerbatimChunk:
    """The content chunks of choice `index` that hold `strings` (a `TextRun`'s), as `builder` writes them:
    one framed `VerbatimChunk` for the chat door."""
    return VerbatimChunk.framed(builder.content_frame(index), strings, None, builder.model, index, False)


def valid_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 (the patterns check JSON's grammar byte by byte only)."""
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
