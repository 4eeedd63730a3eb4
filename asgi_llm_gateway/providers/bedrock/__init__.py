"""Amazon Bedrock Runtime: Converse and ConverseStream behind the OpenAI chat-completions contract.

The translation is pure (`to_native`, `to_completion`, `StreamTranslator`); `BedrockProvider` adds
authentication (`_sigv4`) and HTTP. What maps to what, and the choices made where the APIs differ:
docs/providers/bedrock.md.
"""

from ._errors import bedrock_error
from ._names import model_family, tool_name, tool_use_id
from ._request import NativeRequest, to_native
from ._response import to_completion, usage_of
from ._stream import StreamTranslator, frame_event
from .provider import BedrockProvider

__all__ = [
    "BedrockProvider",
    "NativeRequest",
    "StreamTranslator",
    "bedrock_error",
    "frame_event",
    "model_family",
    "to_completion",
    "to_native",
    "tool_name",
    "tool_use_id",
    "usage_of",
]
