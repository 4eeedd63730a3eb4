"""OpenAI and the OpenAI-compatible family: one implementation, a table of per-provider quirks.

"Compatible" means similar: several of these upstreams reject fields they do not know, rename some, or
answer in slightly different shapes. Each provider is a `Quirks` row (`_quirks.py`); the translation
(`_request.py`, `_response.py`, `_stream.py`) reads the row and never branches on the provider's name.

Fields the gateway's schema does not know are forwarded, except to an upstream whose row has a whitelist
(`Quirks.fields`: today only Mistral's, which answers unknown fields with 422).

What each `Quirks` field does, how tool calls are put into OpenAI's exact shape and why usage chunks are
split: docs/providers/openai.md. OpenAI and Azure also take Responses API requests natively
(`_responses.py`: passthrough, checked streams, and encrypted reasoning sealed for the provider that made it).
"""

from ..base import Request
from ._quirks import COMPATIBLE, DEEPSEEK, GROQ, MISTRAL, OPENAI, XAI, Quirks
from ._request import short_tool_id, to_native
from ._response import normalize_chunk, to_completion
from ._responses import ResponsesStreamTranslator, seal_reasoning, sealed_for, unseal_reasoning
from ._stream import StreamTranslator, split_usage
from .provider import (
    AzureOpenAIProvider,
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    XAIProvider,
)

__all__ = [
    "COMPATIBLE",
    "DEEPSEEK",
    "GROQ",
    "MISTRAL",
    "OPENAI",
    "XAI",
    "AzureOpenAIProvider",
    "DeepSeekProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Quirks",
    "Request",
    "ResponsesStreamTranslator",
    "StreamTranslator",
    "XAIProvider",
    "normalize_chunk",
    "seal_reasoning",
    "sealed_for",
    "short_tool_id",
    "split_usage",
    "to_completion",
    "to_native",
    "unseal_reasoning",
]
