"""OpenAI Responses requests passed through natively (the Responses door with an OpenAI or Azure upstream):
the client's body with the upstream model and `stream` set, and stream events checked (in order, complete,
no error) and handed on as they are. Pure.

**Encrypted reasoning goes back only to the upstream that made it.** Reasoning items (and compaction items)
carry `encrypted_content` that only their maker can read; sent anywhere else (another provider after a
fallback, another Azure resource, another account) the request fails with `invalid_encrypted_content`. So
every `encrypted_content` the gateway relays is sealed with the name of the provider it came from
(`seal_reasoning`), and before a request goes to a provider its input is unsealed for that provider
(`unseal_reasoning`): items sealed for it get their original content back; every other reasoning or
compaction item (sealed for another provider, or never sealed by the gateway: a client's own, or a summary
the gateway wrote for a model with no encrypted reasoning) is dropped, since no upstream could use it.

The seal (`providers/sealing.py`, shared with signed thinking on chat completions) is
`gw1.<length of name>.<name>.<original>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

from ...errors import GatewayError, upstream_error
from ...sse import ServerSentEvent
from ...wire import loads
from ..base import EventRun
from ..sealing import SEAL_VERSION, seal, sealed_for, unseal
from ..streams import bad_upstream_data, stream_ended_early

__all__ = [
    "SEAL_VERSION",
    "ResponsesStreamTranslator",
    "check_response",
    "native_responses_body",
    "response_error",
    "seal",
    "seal_reasoning",
    "sealed_for",
    "unseal",
    "unseal_reasoning",
]

#: Item types whose `encrypted_content` only their maker can read.
_SEALED_TYPES = frozenset({"reasoning", "compaction"})
_FINAL = frozenset({"response.completed", "response.incomplete"})
_OPENING = frozenset({"response.created", "response.queued"})
_TEXT_DELTA = "response.output_text.delta"

J = TypeVar("J")


# -- sealing ----------------------------------------------------------------------------------------------


def _seal_item(item: Any, provider_name: str) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("encrypted_content"), str):
        return item
    return {**item, "encrypted_content": seal(item["encrypted_content"], provider_name)}


def _seal_output(response: Any, provider_name: str) -> Any:
    output = response.get("output") if isinstance(response, dict) else None
    if not isinstance(output, list):
        return response
    sealed = [_seal_item(item, provider_name) for item in output]
    if all(new is old for new, old in zip(sealed, output, strict=True)):
        return response
    return {**response, "output": sealed}


def seal_reasoning(event_or_response: J, provider_name: str) -> J:
    """A Responses stream event or `response` object with every `encrypted_content` in it sealed for
    `provider_name`: in the event's `item` (`response.output_item.added`/`.done`), in the `output` of the
    event's `response` (`response.created` … `response.completed`), or in the response's own `output`.
    Pure and copy-on-write: what has nothing to seal comes back as the same object."""
    obj: Any = event_or_response
    if not isinstance(obj, dict):
        return event_or_response
    out = obj
    if "item" in obj:
        item = _seal_item(obj["item"], provider_name)
        if item is not obj["item"]:
            out = {**out, "item": item}
    if isinstance(obj.get("response"), dict):
        response = _seal_output(obj["response"], provider_name)
        if response is not obj["response"]:
            out = {**out, "response": response}
    if isinstance(obj.get("output"), list):
        out = _seal_output(out, provider_name)
    return cast(J, out)


def unseal_reasoning(input_items: Iterable[Any], provider_name: str) -> list[Any]:
    """The input items for provider `provider_name`: reasoning and compaction items sealed for it get their
    original `encrypted_content` back; every other reasoning or compaction item is dropped (sealed for
    another provider, or not sealed by the gateway at all). Other items pass as they are. Pure."""
    out: list[Any] = []
    for item in input_items:
        if not isinstance(item, Mapping) or item.get("type") not in _SEALED_TYPES:
            out.append(item)
            continue
        value = item.get("encrypted_content")
        original = unseal(value, provider_name) if isinstance(value, str) else None
        if original is not None:
            out.append({**item, "encrypted_content": original})
    return out


def native_responses_body(
    body: Mapping[str, Any], model: str, *, stream: bool, provider_name: str
) -> dict[str, Any]:
    """The client's Responses body for the upstream: `model` replaced, `stream` set (left out when false),
    the input unsealed for `provider_name`. A shallow copy: the client's body is never changed."""
    native = {key: value for key, value in body.items() if key != "stream"}
    native["model"] = model
    if stream:
        native["stream"] = True
    else:
        native.pop("stream_options", None)  # only allowed with stream
    items = body.get("input")
    if isinstance(items, list):
        native["input"] = unseal_reasoning(items, provider_name)
    return native


# -- errors and answers -----------------------------------------------------------------------------------

# The HTTP status each error code stands for when it arrives inside a stream or a failed response.
_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 402,
    "server_error": 500,
    "vector_store_timeout": 504,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "bio_policy": 400,
    "data_residency_mismatch": 400,
    "image_content_policy_violation": 400,
    "invalid_encrypted_content": 400,
    "previous_response_not_found": 400,
}
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 402,
    "server_error": 500,
}
_CLIENT_CODE_PREFIXES = ("invalid_", "image_", "empty_", "unsupported_", "failed_to_download_")


def _status(error: Mapping[str, Any]) -> int:
    status = error.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 600:
        return status
    code = error.get("code")
    if isinstance(code, str):
        if code in _CODE_STATUS:
            return _CODE_STATUS[code]
        if code.startswith(_CLIENT_CODE_PREFIXES):
            return 400
    return _TYPE_STATUS.get(str(error.get("type")), 500)


def response_error(error: Any, kind: str, secrets: Iterable[str | None] = ()) -> GatewayError:
    """The `GatewayError` for an `error` event (its fields at the top or under `error`) or a failed
    response's `error` object, with the status its code has on a response."""
    if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
        error = {**error["error"], **({"status": error["status"]} if "status" in error else {})}
    if not isinstance(error, Mapping):
        error = {}
    message = error.get("message")
    code = error.get("code")
    param = error.get("param")
    return upstream_error(
        kind,
        _status(error),
        str(message) if message else "the upstream failed while generating",
        code=str(code) if code else None,
        param=param if isinstance(param, str) else None,
        secrets=secrets,
    )


def check_response(answer: Any, kind: str, provider_name: str, secrets: Iterable[str | None] = ()) -> Any:
    """A non-streamed answer: a `response` object, sealed; a failed one raises its error."""
    if not isinstance(answer, dict) or not isinstance(answer.get("output"), list):
        raise bad_upstream_data(kind, "the answer is not a response")
    if answer.get("status") == "failed":
        raise response_error(answer.get("error"), kind, secrets)
    return seal_reasoning(answer, provider_name)


# -- streams ------------------------------------------------------------------------------------------------


class ResponsesStreamTranslator:
    """An upstream's Responses SSE events → the native events themselves (a `StreamTranslator` whose "chunks"
    are the parsed `data` objects), checked and sealed.

    `error` and `response.failed` raise the error they stand for; an event that is not a JSON object or has
    no type, a first event other than `response.created`/`response.queued`, a `sequence_number` missing or
    not increasing, or a response id that changes mid-stream is a 502. `response.completed` or
    `response.incomplete` completes the stream (`done`); `end` raises when neither came. Events are handed on
    as they came, with `encrypted_content` sealed for `provider_name`; types added later pass too."""

    __slots__ = ("_done", "_kind", "_last", "_name", "_response_id", "_secrets")

    def __init__(self, kind: str, provider_name: str, *, secrets: Iterable[str | None] = ()) -> None:
        self._kind = kind
        self._name = provider_name
        self._secrets = tuple(secrets)
        self._done = False
        self._last = -1
        self._response_id: str | None = None

    @property
    def done(self) -> bool:
        """Whether `response.completed` or `response.incomplete` came: the stream is complete."""
        return self._done

    def feed(self, item: ServerSentEvent | EventRun) -> list[dict[str, Any] | EventRun]:
        if isinstance(item, EventRun):
            return self._run(item)
        data = item.data
        if self._done or not data.strip() or data.startswith("[DONE]"):
            return []  # `[DONE]` before the final event ends in `end()`'s error
        try:
            payload = loads(data)
        except ValueError:
            raise bad_upstream_data(self._kind, f"event '{item.event}' is not JSON") from None
        return self.event(payload, item.event)

    def event(self, payload: Any, name: str | None = None) -> list[dict[str, Any] | EventRun]:
        """The event to hand on for one parsed `data` object (`name` is the SSE event name, if any)."""
        if not isinstance(payload, dict):
            raise bad_upstream_data(self._kind, f"event '{name}' is not an object")
        kind = payload.get("type") or name
        if kind == "error":
            raise response_error(payload, self._kind, self._secrets)
        if kind == "response.failed":
            response = payload.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            raise response_error(error, self._kind, self._secrets)
        if not isinstance(kind, str) or kind == "message":
            raise bad_upstream_data(self._kind, "an event has no type")
        self._follow(kind, payload.get("sequence_number"))
        response = payload.get("response")
        if self._response_id is None:
            if kind not in _OPENING or not isinstance(response, dict):
                raise bad_upstream_data(self._kind, f"'{kind}' before response.created")
            self._response_id = str(response.get("id"))
        elif isinstance(response, dict) and str(response.get("id")) != self._response_id:
            raise bad_upstream_data(self._kind, f"'{kind}' is about another response")
        if kind in _FINAL:
            self._done = True
        if "type" not in payload:
            payload = {"type": kind, **payload}
        return [seal_reasoning(payload, self._name)]

    def _run(self, run: EventRun) -> list[dict[str, Any] | EventRun]:
        """Text deltas relayed as their bytes (`NativeEventsReader`), checked as their parsed events are."""
        if self._done:
            return []
        if self._response_id is None:
            raise bad_upstream_data(self._kind, f"'{_TEXT_DELTA}' before response.created")
        self._follow(_TEXT_DELTA, run.first)
        self._last = run.last  # the reader saw the run's numbers increase
        return [run]

    def _follow(self, kind: str, sequence: Any) -> None:
        """`sequence` as the number of the next `kind` event: an integer above the last one, else a 502."""
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence <= self._last:
            raise bad_upstream_data(self._kind, f"'{kind}' has no sequence_number above {self._last}")
        self._last = sequence

    def end(self) -> list[dict[str, Any] | EventRun]:
        """Called when the upstream closed the stream: a stream that never completed failed."""
        if not self._done:
            raise stream_ended_early(self._kind)
        return []
