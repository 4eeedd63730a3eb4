"""The openai SDK in front of a gateway over every fake upstream, for the caching and reasoning e2e suites."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai

from tests.fakes.prompt_cache import PromptCache
from tests.support.upstreams import gateway_over_every_upstream

__all__ = ["KEY", "Stack", "openai_stack"]

KEY = "sk-gateway-e2e-client"


@dataclass
class Stack:
    """The client, and the fakes behind the gateway by provider name (`claude`, `bedrock`, `gemini`, …)."""

    client: openai.OpenAI
    fakes: dict[str, Any]

    def last(self, provider: str) -> Any:
        """The body of the last request the provider's fake received."""
        record = self.fakes[provider].requests[-1]
        return record["body"] if isinstance(record, dict) else record.body  # the Gemini fake records dicts

    def cache(self, provider: str) -> PromptCache:
        """The fake's prompt cache, with its totals of reads and writes."""
        cache: PromptCache = self.fakes[provider].cache
        return cache


@contextmanager
def openai_stack() -> Iterator[Stack]:
    with (
        gateway_over_every_upstream({KEY: "developer"}, {}) as served,
        openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0) as client,
    ):
        yield Stack(client, served.fakes)
