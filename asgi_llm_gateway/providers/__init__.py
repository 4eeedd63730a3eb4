"""Every provider the gateway ships. Each module translates one upstream's native API."""

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

__all__ = [
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
