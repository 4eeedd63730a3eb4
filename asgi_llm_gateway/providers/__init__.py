"""Every provider the gateway ships. Each module translates one upstream's native API."""

from collections.abc import Mapping

from .anthropic import AnthropicProvider
from .base import Provider
from .bedrock import BedrockProvider
from .echo import EchoProvider
from .gemini import GeminiProvider
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

#: The providers the runner knows, by the `type` a config file names them with (each class's `kind`).
#: The config loader derives the rest from the classes: accepted options from the constructor's signature,
#: environment variables from `key_variables()`. A new provider is its module and one line here.
PROVIDER_CLASSES: Mapping[str, type[Provider]] = {
    provider.kind: provider
    for provider in (
        OpenAIProvider,
        AzureOpenAIProvider,
        AnthropicProvider,
        GeminiProvider,
        BedrockProvider,
        MistralProvider,
        GroqProvider,
        DeepSeekProvider,
        XAIProvider,
        OpenAICompatibleProvider,
        EchoProvider,
    )
}

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
