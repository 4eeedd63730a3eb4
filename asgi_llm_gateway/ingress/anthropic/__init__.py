"""The Anthropic Messages door's pure translation, for every upstream that is not Anthropic.

    validate_messages_request(body)  ─▶  to_chat(body)  ─▶  the pipeline (any provider)
        ─▶  from_completion(completion, model)                 a `message`
        ─▶  MessagesStreamEncoder(model) through the relay      `message_*` / `content_block_*` events
        ─▶  error_envelope(error) / error_event(error)          Anthropic's statuses, types and envelope

An Anthropic upstream gets the client's body natively instead (the endpoint's passthrough): no round trip
through chat, so thinking signatures, cache breakpoints, documents, citations and server tools stay intact.
What maps to what, and the choices made where the APIs differ, are in each module's docstring:
`_request.py` (fields, tools, reasoning), `_messages.py` (blocks), `_response.py` (stop reason, usage,
tool input), `_stream.py` (events), `_errors.py` (statuses).
"""

from ._errors import error_envelope, error_event
from ._request import DROPPED_FIELDS, reasoning_effort, to_chat
from ._response import from_completion, stop_reason, usage_of
from ._stream import MessagesStreamEncoder

__all__ = [
    "DROPPED_FIELDS",
    "MessagesStreamEncoder",
    "error_envelope",
    "error_event",
    "from_completion",
    "reasoning_effort",
    "stop_reason",
    "to_chat",
    "usage_of",
]
