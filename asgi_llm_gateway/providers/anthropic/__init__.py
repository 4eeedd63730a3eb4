"""Anthropic Messages API (`POST {base_url}/v1/messages`) behind the OpenAI chat-completions contract.

The translation is pure (`to_native`, `to_completion`, `StreamTranslator`); `AnthropicProvider` only adds
HTTP. What maps to what, and the choices made where the APIs differ: docs/providers/anthropic.md.
"""

from ._errors import error_message
from ._request import NativeRequest, to_native, tool_use_id
from ._response import to_completion, usage_of
from ._stream import StreamTranslator
from .provider import AnthropicProvider

__all__ = [
    "AnthropicProvider",
    "NativeRequest",
    "StreamTranslator",
    "error_message",
    "to_completion",
    "to_native",
    "tool_use_id",
    "usage_of",
]
