"""A `streamGenerateContent?alt=sse` body → `chat.completion.chunk` dicts: `StreamDecoder` reads the body's
framing into JSON payloads, `StreamTranslator` turns those into chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...sse import SSEDecoder
from ...wire import ChunkBuilder, loads, tool_call_delta
from ..base import Chunk
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, payload_error
from ._response import check_prompt_feedback, finish_reason, logprobs_of, parts_of, usage_of

__all__ = ["StreamDecoder", "StreamTranslator"]


@dataclass
class _ChoiceState:
    tool_calls: int = 0
    finish_reason: str | None = None


class StreamTranslator:
    """Turns the `GenerateContentResponse` payloads of one stream into `chat.completion.chunk` dicts.

    Gemini sends text as deltas and every function call whole, so each call is one tool-call fragment.
    Finish chunks wait for the end of the stream, because usage (and occasionally a trailing part) may
    arrive after a candidate's `finishReason`. An error payload (Google fails after the 200 this way) is
    raised; `secrets` are kept out of its message. Thought signatures are bound to `scope` (`_ids.py`).
    """

    def __init__(
        self, model: str, *, scope: str, created: int | None = None, secrets: Iterable[str | None] = ()
    ) -> None:
        self.model = model
        self.scope = scope
        self.created = created
        self._secrets = tuple(secrets)
        self._builder: ChunkBuilder | None = None
        self._response_id: str | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._usage_metadata: Any = None  # the last payload's: Gemini's counts are cumulative

    @property
    def done(self) -> bool:
        """Always false: Gemini says nothing before the body ends, so the stream is read to its end."""
        return False

    def feed(self, item: Any) -> list[Chunk]:
        """Chunks for one upstream payload (a `GenerateContentResponse`, or Google's error object)."""
        if not isinstance(item, dict):
            raise bad_upstream_data(KIND, "an event that is not a JSON object")
        if "error" in item:
            raise payload_error(item, self._secrets)
        check_prompt_feedback(item)
        if self._builder is None:
            self._response_id = item.get("responseId")
            chunk_id = f"chatcmpl-{self._response_id}" if self._response_id else None
            self._builder = ChunkBuilder(self.model, id=chunk_id, created=self.created)
        metadata = item.get("usageMetadata")
        if metadata:
            self._usage_metadata = metadata  # read once, at the end: the last one wins
        chunks: list[Chunk] = []
        for position, candidate in enumerate(item.get("candidates") or ()):
            chunks += self._candidate(self._builder, candidate, candidate.get("index", position))
        return chunks

    def _candidate(self, builder: ChunkBuilder, candidate: Mapping[str, Any], index: int) -> list[Chunk]:
        """Chunks for one candidate of one payload: role (first time), reasoning, text, tool calls."""
        chunks: list[Chunk] = []
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
            chunks.append(builder.role(index))
        parts = parts_of(candidate, self._response_id, index, state.tool_calls, self.scope)
        if parts.reasoning:
            chunks.append(builder.chunk({"reasoning_content": "".join(parts.reasoning)}, index=index))
        if parts.text:
            chunks.append(builder.chunk({"content": "".join(parts.text)}, index=index))
            if "logprobsResult" in candidate:
                chunks[-1]["choices"][0]["logprobs"] = logprobs_of(candidate["logprobsResult"])
        for call_id, name, arguments in parts.calls:
            delta = tool_call_delta(state.tool_calls, id=call_id, name=name, arguments=arguments)
            chunks.append(builder.chunk({"tool_calls": [delta]}, index=index))
            state.tool_calls += 1
        if candidate.get("finishReason"):
            state.finish_reason = candidate["finishReason"]
            # Raises now for a failed answer: better mid-stream than a truncated "success".
            finish_reason(state.finish_reason, state.tool_calls > 0, candidate.get("finishMessage"))
        return chunks

    def end(self) -> list[Chunk]:
        """The finish chunk of every choice and the usage chunk; the stream must have been complete."""
        if self._builder is None or not self._choices:
            raise stream_ended_early(KIND)
        if any(state.finish_reason is None for state in self._choices.values()):
            raise stream_ended_early(KIND)
        chunks = [
            self._builder.finish(finish_reason(state.finish_reason, state.tool_calls > 0), index)
            for index, state in sorted(self._choices.items())
        ]
        usage = usage_of(self._usage_metadata)
        if usage is not None:
            chunks.append(self._builder.usage(usage))
        return chunks


# -- the body's framing ----------------------------------------------------------------------------------

_MAX_RAW_ERROR = 64 * 1024


class StreamDecoder:
    """The JSON payloads of a `streamGenerateContent?alt=sse` body.

    Events are `data:` lines (decoded by the shared SSE decoder), but when Google fails after the 200 it
    writes a bare, possibly multi-line JSON error object without `data:`. The SSE decoder hands over those
    lines (they are no SSE field); they are collected here until they parse, so the error is reported
    instead of silently dropped.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder(on_other_line=self._raw_line)
        self._raw: list[str] = []
        self._bare: list[Any] = []  # bare JSON objects completed by the last read

    async def reads(self, body: AsyncIterator[bytes]) -> AsyncIterator[list[Any]]:
        """The payloads of each read of `body` that completed any, then those the body's end completes:
        what `translate_reads` takes, so it drives the translator with nothing in between."""
        async for data in body:
            payloads = self.feed(data)
            if payloads:
                yield payloads
        last = self.end()
        if last:
            yield last

    def feed(self, chunk: bytes) -> list[Any]:
        payloads = [self._parse(event.data) for event in self._sse.feed(chunk)]
        if self._bare:
            payloads += self._bare
            self._bare = []
        return payloads

    def end(self) -> list[Any]:
        payloads = [self._parse(event.data) for event in self._sse.flush()] + self._bare
        if self._raw:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        return payloads

    def _raw_line(self, line: str) -> None:
        self._raw.append(line)
        text = "\n".join(self._raw)
        if len(text) > _MAX_RAW_ERROR:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        try:
            payload = loads(text)
        except ValueError:
            return  # not complete yet
        self._raw = []
        self._bare.append(payload)

    @staticmethod
    def _parse(data: str) -> Any:
        try:
            return loads(data)
        except ValueError:
            raise bad_upstream_data(KIND, "an event that is not JSON") from None
