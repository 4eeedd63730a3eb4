"""asgi_llm_gateway: an OpenAI-compatible LLM gateway you embed in any ASGI app.

Everything a host uses is importable from here (and the providers from `asgi_llm_gateway.providers`);
the modules behind these names are the implementation and may move.
"""

from .auth import AuthHook, Principal, api_keys, bearer_token
from .errors import GatewayError
from .gateway import Gateway
from .mount import PathPrefixDispatcher
from .pipeline.call import Call
from .pipeline.hooks import Hooks
from .policy import DEFAULT_POLICY, Group, Policy, Route
from .routing import RouteSpec, Target
from .usage import UsageHook, UsageRecord

__all__ = [
    "DEFAULT_POLICY",
    "AuthHook",
    "Call",
    "Gateway",
    "GatewayError",
    "Group",
    "Hooks",
    "PathPrefixDispatcher",
    "Policy",
    "Principal",
    "Route",
    "RouteSpec",
    "Target",
    "UsageHook",
    "UsageRecord",
    "api_keys",
    "bearer_token",
]
__version__ = "0.1.0"
