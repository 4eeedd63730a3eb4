"""Google Gemini (the Gemini Developer API): `generateContent` and `streamGenerateContent?alt=sse`.

The translation is pure (`to_native`, `to_completion`, `StreamTranslator`); `GeminiProvider` only does
I/O. What maps to what, and the choices made where the APIs differ: docs/providers/gemini.md.
"""

from ._ids import DUMMY_THOUGHT_SIGNATURE, decode_tool_call_id, encode_tool_call_id
from ._request import to_native
from ._response import to_completion
from ._schema import sanitize_json_schema, to_openapi_schema
from ._stream import StreamDecoder, StreamTranslator
from .provider import GeminiProvider

__all__ = [
    "DUMMY_THOUGHT_SIGNATURE",
    "GeminiProvider",
    "StreamDecoder",
    "StreamTranslator",
    "decode_tool_call_id",
    "encode_tool_call_id",
    "sanitize_json_schema",
    "to_completion",
    "to_native",
    "to_openapi_schema",
]
