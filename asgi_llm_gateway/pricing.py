"""Prices per model, and the cost of a call from its OpenAI usage object.

A `Price` is per million tokens, in one currency, as providers publish them:

    usage field (OpenAI object)                          billed at
    prompt_tokens - cached_tokens - cache_write_tokens   input
    prompt_tokens_details.cached_tokens                  cached_input   (default: input)
    prompt_tokens_details.cache_write_tokens             cache_write    (default: input)
    completion_tokens - reasoning_tokens                 output
    completion_tokens_details.reasoning_tokens           reasoning      (default: output)

The gateway's usage objects count cached and cache-write tokens *within* `prompt_tokens` and reasoning
tokens within `completion_tokens` (OpenAI's convention, which every provider's usage is translated to).
Money is `Decimal` all the way: a budget's sum over millions of calls must not drift as floats do.

Which price a target gets (`price_for`): an exact key for its full name (`"openai/gpt-4o"`), else for
its upstream model id (`"gpt-4o"`), else the first glob pattern in table order that matches either. So a
host's table can price one provider's copy of a model apart (`"groq/llama-3.3-70b-versatile"`), and
`{**DEFAULT_PRICES, "gpt-4o": Price(...)}` overrides a default in place.

`DEFAULT_PRICES` covers the flagship models of the providers we ship, at list price for standard
(non-batch, short-context) use. Each entry names its source and when it was read: prices change, and a
host that bills anyone should pass its own table.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "DEFAULT_PRICES",
    "MILLION",
    "Number",
    "Price",
    "cost",
    "price_for",
    "reservation_cost",
    "target_cost",
]

MILLION = Decimal(1_000_000)


Number = Decimal | int | float | str


@dataclass(frozen=True, slots=True, init=False)
class Price:
    """What a model costs per million tokens, in `currency`. Numbers may be given as `Decimal`, int, float
    or string and are kept as `Decimal`; the optional prices default to the input price (cached input,
    cache writes) and the output price (reasoning)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    cache_write: Decimal | None
    reasoning: Decimal | None
    currency: str

    def __init__(
        self,
        input: Number,
        output: Number,
        cached_input: Number | None = None,
        cache_write: Number | None = None,
        reasoning: Number | None = None,
        currency: str = "USD",
    ) -> None:
        given = {
            "input": input,
            "output": output,
            "cached_input": cached_input,
            "cache_write": cache_write,
            "reasoning": reasoning,
        }
        for name, value in given.items():
            try:
                number = None if value is None else Decimal(str(value))
            except ArithmeticError:
                number = Decimal("NaN")
            if number is not None and (not number.is_finite() or number < 0):
                raise ValueError(f"Price.{name} must be a non-negative number, not {value!r}")
            object.__setattr__(self, name, number)
        object.__setattr__(self, "currency", currency)

    @property
    def highest_input(self) -> Decimal:
        """The most an input token can cost (a cache write may cost more than plain input)."""
        return max(self.input, self.cache_write if self.cache_write is not None else self.input)

    @property
    def highest_output(self) -> Decimal:
        """The most an output token can cost (reasoning may be priced apart)."""
        return max(self.output, self.reasoning if self.reasoning is not None else self.output)


def _count(value: Any) -> int:
    """A token count from a usage object: missing, null or nonsense counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cost(usage: Mapping[str, Any], price: Price) -> Decimal:
    """The cost of one call from its OpenAI usage object (see the module docstring for the fields)."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = _count(prompt_details.get("cached_tokens"))
    written = _count(prompt_details.get("cache_write_tokens"))
    reasoning = _count(completion_details.get("reasoning_tokens"))
    prompt = max(_count(usage.get("prompt_tokens")), cached + written)
    completion = max(_count(usage.get("completion_tokens")), reasoning)
    total = (
        (prompt - cached - written) * price.input
        + cached * (price.cached_input if price.cached_input is not None else price.input)
        + written * (price.cache_write if price.cache_write is not None else price.input)
        + (completion - reasoning) * price.output
        + reasoning * (price.reasoning if price.reasoning is not None else price.output)
    )
    return total / MILLION


def target_cost(
    prices: Mapping[str, Price], name: str, model: str, usage: Mapping[str, Any]
) -> Decimal | None:
    """The cost of a call answered by target `name` (upstream model id `model`), or None without a price."""
    price = price_for(prices, name, model)
    return None if price is None else cost(usage, price)


def reservation_cost(input_tokens: int, output_tokens: int, price: Price) -> Decimal:
    """The most a call of `input_tokens` in and at most `output_tokens` out can cost: every input token at
    the dearest input price, every output token at the dearest output price."""
    return (input_tokens * price.highest_input + output_tokens * price.highest_output) / MILLION


def price_for(prices: Mapping[str, Price], name: str, model: str) -> Price | None:
    """The price of the target `name` (`"<provider>/<model>"`) whose upstream model id is `model`."""
    found = prices.get(name) or prices.get(model)
    if found is not None:
        return found
    for pattern, price in prices.items():
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(model, pattern):
            return price
    return None


def _p(input: str, output: str, cached: str | None = None, write: str | None = None) -> Price:
    return Price(input, output, cached_input=cached, cache_write=write)


#: List prices in USD per million tokens, standard tier, prompts within the short-context band. Read from
#: each provider's pricing page on the date noted; check before billing anyone with them. More specific
#: patterns come first (the first match wins).
DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI, https://developers.openai.com/api/docs/pricing (2025-10; checked 2026-12: gpt-5, gpt-5-nano and
    # gpt-5.4-nano against their model pages; the gpt-5.2, 5.4 and 5.5 rows agree with pydantic/genai-prices
    # and third-party copies of that page, not seen first-hand). Each family before "gpt-5*", which would
    # otherwise price them as gpt-5: a newer gpt-5.x without a row of its own still gets gpt-5's price.
    "gpt-5.5-pro*": _p("30.00", "180.00"),
    "gpt-5.5*": _p("5.00", "30.00", cached="0.50"),
    "gpt-5.4-pro*": _p("30.00", "180.00"),
    "gpt-5.4-mini*": _p("0.75", "4.50", cached="0.075"),
    "gpt-5.4-nano*": _p("0.20", "1.25", cached="0.02"),
    "gpt-5.4*": _p("2.50", "15.00", cached="0.25"),  # prompts up to 272k tokens
    "gpt-5.2-pro*": _p("21.00", "168.00"),
    "gpt-5.2*": _p("1.75", "14.00", cached="0.175"),
    "gpt-5-nano*": _p("0.05", "0.40", cached="0.005"),
    "gpt-5-mini*": _p("0.25", "2.00", cached="0.025"),
    "gpt-5-pro*": _p("15.00", "120.00"),
    "gpt-5*": _p("1.25", "10.00", cached="0.125"),
    "gpt-4.1-mini*": _p("0.40", "1.60", cached="0.10"),
    "gpt-4.1*": _p("2.00", "8.00", cached="0.50"),
    "gpt-4o-mini*": _p("0.15", "0.60", cached="0.075"),
    "gpt-4o*": _p("2.50", "10.00", cached="1.25"),
    "o4-mini*": _p("1.10", "4.40", cached="0.275"),
    "text-embedding-3-small": _p("0.02", "0"),
    "text-embedding-3-large": _p("0.13", "0"),
    # Anthropic, https://platform.claude.com/docs/en/about-claude/pricing (checked 2026-12; 5-minute cache
    # writes). Opus 4 and 4.1 kept the old price, Opus 4.5 to 4.8 share the new one. The 5.5 models' cache
    # rates and Haiku 5.5's (prompts up to 100k tokens) are from third-party copies of that page.
    "claude-fable-5-1*": _p("10.00", "50.00", cached="0.25", write="12.50"),
    "claude-fable-5*": _p("10.00", "50.00", cached="1.00", write="12.50"),
    "claude-opus-5-5*": _p("4.00", "20.00", cached="0.20", write="5.00"),
    "claude-opus-5*": _p("5.00", "25.00", cached="0.50", write="6.25"),
    "claude-opus-4-1*": _p("15.00", "75.00", cached="1.50", write="18.75"),
    "claude-opus-4-0*": _p("15.00", "75.00", cached="1.50", write="18.75"),
    "claude-opus-4-2025*": _p("15.00", "75.00", cached="1.50", write="18.75"),  # Opus 4's dated id
    "claude-opus-4*": _p("5.00", "25.00", cached="0.50", write="6.25"),
    "claude-sonnet-5-5*": _p("2.00", "10.00", cached="0.10", write="2.50"),
    "claude-sonnet-5*": _p("2.00", "10.00", cached="0.20", write="2.50"),
    "claude-sonnet-4*": _p("3.00", "15.00", cached="0.30", write="3.75"),
    "claude-haiku-5-5*": _p("0.10", "0.50", cached="0.01", write="0.125"),
    "claude-haiku-4-5*": _p("1.00", "5.00", cached="0.10", write="1.25"),
    "claude-3-5-haiku*": _p("0.80", "4.00", cached="0.08", write="1.00"),
    # Google Gemini, https://ai.google.dev/gemini-api/docs/pricing (2025-10; prompts up to 200k tokens; the
    # 2.5 rows and gemini-3-pro agree with pydantic/genai-prices, 2026-08)
    "gemini-3-pro*": _p("2.00", "12.00", cached="0.20"),
    "gemini-2.5-pro*": _p("1.25", "10.00", cached="0.125"),
    "gemini-2.5-flash-lite*": _p("0.10", "0.40", cached="0.01"),
    "gemini-2.5-flash*": _p("0.30", "2.50", cached="0.03"),
    # Mistral, https://mistral.ai/pricing (2025-10)
    "mistral-large*": _p("2.00", "6.00"),
    "mistral-medium*": _p("0.40", "2.00"),
    "mistral-small*": _p("0.10", "0.30"),
    # Groq, https://groq.com/pricing (2025-10)
    "llama-3.3-70b-versatile": _p("0.59", "0.79"),
    "llama-3.1-8b-instant": _p("0.05", "0.08"),
    # DeepSeek, https://api-docs.deepseek.com/quick_start/pricing (2025-10; V3.2 for both names)
    "deepseek-chat": _p("0.28", "0.42", cached="0.028"),
    "deepseek-reasoner": _p("0.28", "0.42", cached="0.028"),
    # xAI, https://docs.x.ai/docs/models (2025-10)
    "grok-4*": _p("3.00", "15.00", cached="0.75"),
    "grok-3-mini*": _p("0.30", "0.50", cached="0.075"),
}
