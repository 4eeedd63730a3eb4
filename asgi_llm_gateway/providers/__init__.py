"""Every provider the gateway ships. Each module translates one upstream's native API.

Gemini's and Bedrock's modules load when their class is first asked for (`from asgi_llm_gateway.providers
import GeminiProvider`, or `PROVIDER_CLASSES["gemini"]`): a gateway that uses neither does not pay for their
code in memory (about 0.7 MB) or import time. The others are imported here: the Messages door shares the
Anthropic provider's helpers, and the OpenAI family is the usual upstream.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .anthropic import AnthropicProvider
from .base import Provider
from .echo import EchoProvider
from .http import HTTPProvider
from .openai import (
    AzureOpenAIProvider,
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    XAIProvider,
)

if TYPE_CHECKING:
    from .bedrock import BedrockProvider
    from .gemini import GeminiProvider

#: Provider classes whose module is imported on first use: class name → (module, the class's `kind`).
_LAZY: Mapping[str, tuple[str, str]] = {
    "GeminiProvider": (".gemini", "gemini"),
    "BedrockProvider": (".bedrock", "bedrock"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name][0], __name__), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


class _ProviderClasses(Mapping[str, "type[Provider]"]):
    """`kind` → provider class, in a fixed order; a lazily loaded class is imported when it is looked up."""

    def __init__(self, classes: list[type[Provider] | str]) -> None:
        self._order = [_LAZY[c][1] if isinstance(c, str) else c.kind for c in classes]
        self._loaded = {c.kind: c for c in classes if not isinstance(c, str)}
        self._lazy = {_LAZY[c][1]: c for c in classes if isinstance(c, str)}

    def __getitem__(self, kind: str) -> type[Provider]:
        cls = self._loaded.get(kind)
        if cls is None:
            cls = self._loaded[kind] = __getattr__(self._lazy[kind])
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


#: The providers the runner knows, by the `type` a config file names them with (each class's `kind`).
#: The config loader derives the rest from the classes: accepted options from the constructor's signature,
#: environment variables from `key_variables()`. A new provider is its module and one line here.
PROVIDER_CLASSES: Mapping[str, type[Provider]] = _ProviderClasses(
    [
        OpenAIProvider,
        AzureOpenAIProvider,
        AnthropicProvider,
        "GeminiProvider",
        "BedrockProvider",
        MistralProvider,
        GroqProvider,
        DeepSeekProvider,
        XAIProvider,
        OpenAICompatibleProvider,
        EchoProvider,
    ]
)

__all__ = [
    "PROVIDER_CLASSES",
    "AnthropicProvider",
    "AzureOpenAIProvider",
    "BedrockProvider",
    "DeepSeekProvider",
    "EchoProvider",
    "GeminiProvider",
    "GroqProvider",
    "HTTPProvider",
    "MistralProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Provider",
    "XAIProvider",
]
