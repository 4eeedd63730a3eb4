"""The Responses API door's pure translation, for every upstream that does not speak Responses.

    validate_responses_request(body)
        ─▶ input_items(body)                         the request's input as typed items
        ─▶ to_chat(body, history + items)            the canonical chat request, the built-in tools dropped,
                                                     custom tools emulated as one-string functions
        ─▶ the pipeline (any provider)
        ─▶ to_response(completion, …)                a `response`
        ─▶ ResponsesStreamEncoder(skeleton(…))       `response.*` events through the relay
        ─▶ output_items(response)                    what the response adds to the conversation

The gateway keeps a conversation as a list of Responses items (the input of each request, then the output
of its response), so `previous_response_id` chains work on any provider and across providers; an OpenAI
upstream gets the items natively instead (the endpoint's passthrough). What maps to what, and the choices
made where the APIs differ, are in each module's docstring: `_request.py` (fields), `_items.py` (items and
parts), `_tools.py` (tools, `additional_tools`, namespaces, tool_choice), `_custom.py` (freeform custom
tools), `_response.py` (output, status, usage, ids, errors), `_stream.py` (events).
"""

from ._items import input_items
from ._request import to_chat
from ._response import failure_error, output_items, skeleton, to_response, usage_of
from ._stream import ResponsesStreamEncoder
from ._tools import ToolName, flat_name, offered_tools, tool_names

__all__ = [
    "ResponsesStreamEncoder",
    "ToolName",
    "failure_error",
    "flat_name",
    "input_items",
    "offered_tools",
    "output_items",
    "skeleton",
    "to_chat",
    "to_response",
    "tool_names",
    "usage_of",
]
