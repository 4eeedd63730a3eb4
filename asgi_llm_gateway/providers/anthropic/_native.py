"""Anthropic Messages requests passed through natively, for the Messages door: the client's body with the
upstream model and `stream` set, and stream events checked (complete, in order, no error) and handed on as
they are. Pure. Bedrock's InvokeModel speaks the same events, so its passthrough uses `NativeEvents` too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...sse import ServerSentEvent
from ...wire import loads
from ..runs import TextRun
from ..streams import bad_upstream_data, stream_ended_early
from ._errors import KIND, event_error
from ._stream import MESSAGE_EVENTS, text_delta_frame

__all__ = [
    "COUNT_FIELDS",
    "SYSTEM_TURNS_BETA",
    "SYSTEM_TURNS_VERSION",
    "NativeEvents",
    "NativeStreamTranslator",
    "beta_values",
    "count_body",
    "input_tokens",
    "native_body",
    "native_headers",
]

# What `POST /v1/messages/count_tokens` takes (the SDK's `MessageCountTokensParams`, beta ones included).
# The rest of a create request (`max_tokens`, `stream`, sampling, `metadata`, ...) is refused there.
COUNT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "context_management",
        "mcp_servers",
    }
)


#: The first `anthropic-version` that takes `role: "system"` turns inside `messages` (SDK 2.0's default;
#: before it, the docs said there is no system role for input messages).
SYSTEM_TURNS_VERSION = "2026-10-21"
#: The beta that allows them under older versions; Claude Code sends it with its system turns.
SYSTEM_TURNS_BETA = "mid-conversation-system-2026-04-07"


def native_body(body: Mapping[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    """The client's Messages body for the upstream: `model` replaced, `stream` set (left out when false).
    A shallow copy: the client's body is never changed (fallback targets share it)."""
    native = {key: value for key, value in body.items() if key != "stream"}
    native["model"] = model
    if stream:
        native["stream"] = True
    return native


def count_body(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The `count_tokens` body for a Messages request: only the fields that endpoint accepts."""
    counted = {key: value for key, value in body.items() if key in COUNT_FIELDS}
    counted["model"] = model
    return counted


def beta_values(beta: Iterable[str]) -> list[str]:
    """anthropic-beta values, trimmed, without blanks or repeats (a value may still hold a comma list)."""
    values = (value.strip() for item in beta for value in item.split(","))
    return list(dict.fromkeys(value for value in values if value))


def input_tokens(answer: Any, key: str, kind: str = KIND) -> int:
    """The token count `answer[key]` of a counting API; anything else is a 502."""
    count = answer.get(key) if isinstance(answer, Mapping) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad_upstream_data(kind, f"the token count has no '{key}'")
    return count


class NativeEvents:
    """Native Messages stream events as they pass: an `error` event raises the error it stands for, a content
    event before `message_start` or an event that is no object is a 502, `ping` is dropped, and
    `message_stop` completes the stream (`end` raises when it never came). Events are handed on unchanged;
    types added later pass too (Anthropic asks clients to skip what they do not know)."""

    def __init__(self, *, kind: str = KIND, secrets: Iterable[str | None] = ()) -> None:
        self._kind = kind
        self._secrets = tuple(secrets)
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """Whether `message_stop` came: the stream is complete."""
        return self._done

    def event(self, payload: Any, name: str | None = None) -> list[dict[str, Any] | bytes]:
        """The event to hand on for one parsed `data` object (`name` is the SSE event name, if any)."""
        if not isinstance(payload, dict):
            raise bad_upstream_data(self._kind, f"event '{name}' is not an object")
        kind = payload.get("type") or name
        if kind == "error" or name == "error":
            raise event_error(payload, self._secrets, kind=self._kind)
        if self._done or kind == "ping":
            return []
        if not isinstance(kind, str):
            raise bad_upstream_data(self._kind, "an event has no type")
        if kind == "message_start":
            self._started = True
        elif not self._started and kind in MESSAGE_EVENTS:
            raise bad_upstream_data(self._kind, f"'{kind}' before message_start")
        elif kind == "message_stop":
            self._done = True
        return [payload if "type" in payload else {"type": kind, **payload}]

    def text_run(self, run: TextRun) -> list[dict[str, Any] | bytes]:
        """A run of text deltas (`TextDeltaReader`), checked as their parsed events are, as the bytes the
        upstream sent: the reader took only events written exactly so around each string."""
        if self._done:
            return []
        if not self._started:
            raise bad_upstream_data(self._kind, "'content_block_delta' before message_start")
        return [text_delta_frame(run.index).write(run.strings, None, b"")]

    def end(self) -> list[dict[str, Any] | bytes]:
        """Called when the upstream closed the stream: a stream that never said `message_stop` failed."""
        if not self._done:
            raise stream_ended_early(self._kind)
        return []


class NativeStreamTranslator:
    """Anthropic's SSE events → the native events themselves (a `StreamTranslator` whose "chunks" are the
    parsed `data` objects), checked by `NativeEvents`."""

    def __init__(self, *, secrets: Iterable[str | None] = ()) -> None:
        self._events = NativeEvents(secrets=secrets)

    @property
    def done(self) -> bool:
        return self._events.done

    def feed(self, item: ServerSentEvent | TextRun) -> list[dict[str, Any] | bytes]:
        if isinstance(item, TextRun):
            return self._events.text_run(item)
        if item.event == "ping" or self._events.done:
            return []
        try:
            payload = loads(item.data)
        except ValueError:
            raise bad_upstream_data(KIND, f"event '{item.event}' is not JSON") from None
        return self._events.event(payload, item.event)

    def end(self) -> list[dict[str, Any] | bytes]:
        return self._events.end()


def native_headers(body: Mapping[str, Any], beta: Sequence[str], version: str) -> dict[str, str] | None:
    """Per-request headers: the client's anthropic-beta values, passed on as they are, and a newer
    `anthropic-version` than the provider's `version` when the body has `system` turns that need it: the
    client sent them under that version (with the beta that allows them, the provider's version does)."""
    headers: dict[str, str] = {}
    values = beta_values(beta)
    if values:
        headers["anthropic-beta"] = ",".join(values)
    if version < SYSTEM_TURNS_VERSION and SYSTEM_TURNS_BETA not in values and _has_system_turns(body):
        headers["anthropic-version"] = SYSTEM_TURNS_VERSION
    return headers or None


def _has_system_turns(body: Mapping[str, Any]) -> bool:
    messages = body.get("messages")
    return isinstance(messages, list) and any(
        isinstance(message, Mapping) and message.get("role") == "system" for message in messages
    )
