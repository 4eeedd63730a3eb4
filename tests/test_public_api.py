"""The public namespace: what hosts import. A name added or removed here is an API change, on purpose."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import asgi_llm_gateway
import asgi_llm_gateway.providers
from tests.support.fresh import printed_by_fresh_python

PUBLIC = [
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


def test_the_package_exports_exactly_the_public_names() -> None:
    assert sorted(asgi_llm_gateway.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(asgi_llm_gateway, name) is not None


def test_the_providers_namespace_exports_every_provider_class() -> None:
    from asgi_llm_gateway.providers import PROVIDER_CLASSES, HTTPProvider, Provider

    exported = set(asgi_llm_gateway.providers.__all__)
    for cls in PROVIDER_CLASSES.values():
        assert cls.__name__ in exported and issubclass(cls, Provider)
    assert {"Provider", "HTTPProvider", "PROVIDER_CLASSES"} <= exported
    assert issubclass(asgi_llm_gateway.providers.OpenAIProvider, HTTPProvider)


def test_provider_classes_are_keyed_by_each_class_kind_in_a_fixed_order() -> None:
    from asgi_llm_gateway.providers import PROVIDER_CLASSES

    kinds = list(PROVIDER_CLASSES)
    assert len(kinds) == len(set(kinds)) == len(PROVIDER_CLASSES)
    assert kinds[:5] == ["openai", "azure", "anthropic", "gemini", "bedrock"] and kinds[-1] == "echo"
    assert all(PROVIDER_CLASSES[kind].kind == kind for kind in kinds)
    with pytest.raises(KeyError):
        PROVIDER_CLASSES["nope"]
    with pytest.raises(AttributeError):
        _ = asgi_llm_gateway.providers.NoSuchProvider


def test_a_gateway_without_gemini_or_bedrock_never_loads_their_modules() -> None:
    """Their code costs ~0.7 MB of memory: loaded when their class is first asked for, and only then."""
    code = (
        "import sys\n"
        "from asgi_llm_gateway import Gateway\n"
        "from asgi_llm_gateway.providers import OpenAIProvider\n"
        "Gateway(providers={'openai': OpenAIProvider(api_key='k')})\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[2:3] in (['gemini'], ['bedrock']))\n"
        "print(loaded())\n"
        "from asgi_llm_gateway.providers import GeminiProvider, PROVIDER_CLASSES\n"
        "assert PROVIDER_CLASSES['bedrock'].kind == 'bedrock' and GeminiProvider.kind == 'gemini'\n"
        "print(len(loaded()) > 0)\n"
    )
    assert printed_by_fresh_python(code) == ["[]", "True"]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        # import paths the README, DESIGN.md and the examples use: they keep working
        ("asgi_llm_gateway.auth", "api_keys"),
        ("asgi_llm_gateway.usage", "UsageRecord"),
        ("asgi_llm_gateway.providers", "Provider"),
        ("asgi_llm_gateway.providers", "AnthropicProvider"),
        ("asgi_llm_gateway.providers.openai", "OpenAIProvider"),
        ("asgi_llm_gateway.providers.anthropic", "AnthropicProvider"),
        ("asgi_llm_gateway.providers.gemini", "GeminiProvider"),
        ("asgi_llm_gateway.providers.bedrock", "BedrockProvider"),
        ("asgi_llm_gateway.config", "load_config"),
        ("asgi_llm_gateway.config", "PROVIDER_TYPES"),
        ("asgi_llm_gateway.policy", "Policy"),
        ("asgi_llm_gateway.limits", "LimitsHook"),
        ("asgi_llm_gateway.limits.redis", "RedisLimiter"),
        ("asgi_llm_gateway.pricing", "DEFAULT_PRICES"),
        ("asgi_llm_gateway.rewrite", "RequestPolicy"),
        # the observability hooks live in their own package only: the top level must import without extras
        ("asgi_llm_gateway.observability", "LogHook"),
        ("asgi_llm_gateway.observability", "OpenTelemetryHook"),
        ("asgi_llm_gateway.observability", "PrometheusHook"),
        ("asgi_llm_gateway.observability", "metrics_app"),
    ],
)
def test_documented_import_paths_keep_working(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_the_same_objects_behind_both_paths() -> None:
    from asgi_llm_gateway.auth import Principal, api_keys
    from asgi_llm_gateway.usage import UsageRecord

    assert asgi_llm_gateway.api_keys is api_keys
    assert asgi_llm_gateway.Principal is Principal
    assert asgi_llm_gateway.UsageRecord is UsageRecord


#: Run in a fresh interpreter where OpenTelemetry and prometheus_client cannot be imported, as without the
#: extras: the package, its observability package and the runner still import, and only the hooks that need
#: an extra say so when built.
_WITHOUT_EXTRAS = """
import sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("opentelemetry", "prometheus_client"):
            raise ImportError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
import asgi_llm_gateway, asgi_llm_gateway.cli
from asgi_llm_gateway.observability import LogHook, OpenTelemetryHook, PrometheusHook

LogHook()
for hook in (OpenTelemetryHook, PrometheusHook):
    try:
        hook()
    except ImportError as exc:
        print(exc.name)
"""


def test_the_package_imports_without_the_observability_extras() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["opentelemetry", "prometheus_client"]
    assert not {"LogHook", "OpenTelemetryHook", "PrometheusHook", "metrics_app"} & set(
        asgi_llm_gateway.__all__
    )
