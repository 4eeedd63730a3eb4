"""A gateway in front of every kind of upstream at once, for the door e2e tests: echo, and the Anthropic,
OpenAI, Gemini and Bedrock fakes (each on its own loopback port, speaking its provider's native API)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from asgi_llm_gateway import Gateway, Policy, RouteSpec, UsageRecord, api_keys
from asgi_llm_gateway.providers import (
    AnthropicProvider,
    BedrockProvider,
    EchoProvider,
    GeminiProvider,
    OpenAIProvider,
)
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.fakes.bedrock import ACCESS_KEY, SECRET_KEY, FakeBedrock
from tests.support.server import serve


@dataclass
class Upstreams:
    """The served gateway's URL, the fakes behind it (by provider name) and the usage records it made."""

    url: str
    fakes: dict[str, Any]
    usage: list[UsageRecord] = field(default_factory=list)


@contextmanager
def gateway_over_every_upstream(
    keys: Mapping[str, str], routes: Mapping[str, RouteSpec]
) -> Iterator[Upstreams]:
    """Serve a gateway (client `keys` → principal names, `routes`, one attempt per target) in front of
    echo (`echo/…`), `claude/…`, `openai/…`, `gemini/…` and `bedrock/…`."""
    fakes: dict[str, Any] = {
        "claude": fake_anthropic.FakeAnthropic(),
        "openai": fake_openai.FakeOpenAI(),
        "gemini": fake_gemini.FakeGemini(),
        "bedrock": FakeBedrock(),
    }
    usage: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        usage.append(record)

    with (
        serve(fakes["claude"]) as claude_url,
        serve(fakes["openai"].app()) as openai_url,
        serve(fakes["gemini"].app()) as gemini_url,
        serve(fakes["bedrock"].app) as bedrock_url,
    ):
        gateway = Gateway(
            providers={
                "echo": EchoProvider(),
                "claude": AnthropicProvider(api_key=fake_anthropic.KEY, base_url=claude_url),
                "openai": OpenAIProvider(api_key=fake_openai.KEY, base_url=openai_url + "/v1"),
                "gemini": GeminiProvider(api_key=fake_gemini.KEY, base_url=gemini_url),
                "bedrock": BedrockProvider(
                    base_url=bedrock_url,
                    region="us-east-1",
                    aws_access_key_id=ACCESS_KEY,
                    aws_secret_access_key=SECRET_KEY,
                ),
            },
            routes=routes,
            auth=api_keys(dict(keys)),
            policy=Policy(max_attempts=1),
            on_usage=on_usage,
        )
        with serve(gateway) as url:
            yield Upstreams(url, fakes, usage)
