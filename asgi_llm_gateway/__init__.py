"""asgi_llm_gateway: an OpenAI-compatible LLM gateway you embed in any ASGI app.

Everything a host uses is importable from here (and the providers from `asgi_llm_gateway.providers`);
the modules behind these names are the implementation and may move.
"""

from .auth import AuthHook, Principal, api_keys, bearer_token
from .errors import GatewayError
from .gateway import Gateway
from .limits import LimitsHook, MemoryLimiter, Rule
from .mount import PathPrefixDispatcher
from .pipeline.call import Call
from .pipeline.hooks import Hooks
from .policy import DEFAULT_POLICY, Group, Policy, Route
from .pricing import DEFAULT_PRICES, Price
from .rewrite import RequestPolicy, Rewrite
from .routing import RouteSpec, Target
from .usage import UsageHook, UsageRecord

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_PRICES",
    "AuthHook",
    "Call",
    "Gateway",
    "GatewayError",
    "Group",
    "Hooks",
    "LimitsHook",
    "MemoryLimiter",
    "PathPrefixDispatcher",
    "Policy",
    "Price",
    "Principal",
    "RequestPolicy",
    "Rewrite",
    "Route",
    "RouteSpec",
    "Rule",
    "Target",
    "UsageHook",
    "UsageRecord",
    "api_keys",
    "bearer_token",
]
__version__ = "0.1.0"
