"""asgi_llm_gateway: an OpenAI-compatible LLM gateway you embed in any ASGI app."""

from .errors import GatewayError
from .gateway import Gateway

__all__ = ["Gateway", "GatewayError"]
__version__ = "0.1.0"
