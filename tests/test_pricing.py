"""Prices and the cost of a call: every usage field at its own price, exact decimals, which price a target
gets, the reservation bound, and the default table's shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from asgi_llm_gateway.pricing import DEFAULT_PRICES, Price, cost, price_for, reservation_cost
from asgi_llm_gateway.wire import usage

SONNET = Price(input="3", output="15", cached_input="0.30", cache_write="3.75")
REASONER = Price(input="1", output="4", reasoning="8")


def test_plain_usage_costs_input_and_output() -> None:
    assert cost(usage(1_000_000, 500_000), SONNET) == Decimal("10.5")


def test_cached_and_written_input_and_reasoning_have_their_own_prices() -> None:
    # 1,000 prompt tokens: 600 read from the cache, 300 written to it, 100 plain; 200 out, 150 of them thought
    used = usage(1000, 200, cached_tokens=600, cache_write_tokens=300, reasoning_tokens=150)
    expected = (100 * 3 + 600 * Decimal("0.30") + 300 * Decimal("3.75")) / 1_000_000 + 200 * 15 / Decimal(
        10**6
    )
    assert cost(used, SONNET) == expected
    assert cost(usage(0, 200, reasoning_tokens=150), REASONER) == (50 * 4 + 150 * 8) / Decimal(10**6)


def test_optional_prices_default_to_input_and_output() -> None:
    plain = Price(input=2, output=8)
    used = usage(1000, 100, cached_tokens=400, cache_write_tokens=100, reasoning_tokens=60)
    assert cost(used, plain) == cost(usage(1000, 100), plain) == Decimal("0.0028")


@pytest.mark.parametrize(
    "used",
    [
        {},
        {"prompt_tokens": None, "completion_tokens": -5, "total_tokens": "x"},
        {"prompt_tokens": True, "prompt_tokens_details": None, "completion_tokens_details": {}},
    ],
)
def test_missing_or_nonsense_counts_cost_nothing(used: dict[str, Any]) -> None:
    assert cost(used, SONNET) == 0


def test_details_larger_than_their_total_are_not_negative() -> None:
    """An upstream that reports more cached tokens than prompt tokens is billed for the cached ones."""
    used = {"prompt_tokens": 10, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 100}}
    assert cost(used, SONNET) == 100 * Decimal("0.30") / 10**6


def test_floats_become_the_decimals_they_read_as() -> None:
    assert Price(input=2.5, output=0.1).input == Decimal("2.5")
    assert cost(usage(3, 0), Price(input=0.1, output=0)) == Decimal("0.0000003")


@pytest.mark.parametrize("bad", [-1, "free", float("nan"), float("inf")])
def test_a_bad_price_says_which(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"Price\.cache_write must be a non-negative number"):
        Price(input=1, output=1, cache_write=bad)


def test_a_reservation_bounds_any_cost_of_that_many_tokens() -> None:
    bound = reservation_cost(1000, 200, SONNET)
    assert bound == (1000 * Decimal("3.75") + 200 * 15) / 10**6  # writes are the dearest input
    assert reservation_cost(0, 200, REASONER) == 200 * 8 / Decimal(10**6)
    for used in (
        usage(1000, 200),
        usage(1000, 200, cache_write_tokens=1000),
        usage(1000, 200, cached_tokens=500, cache_write_tokens=500, reasoning_tokens=200),
    ):
        assert cost(used, SONNET) <= bound


def test_a_target_gets_its_own_name_then_its_model_then_the_first_matching_pattern() -> None:
    table = {
        "gpt-4o*": Price(1, 1),
        "azure/gpt-4o": Price(2, 2),
        "gpt-4o-mini": Price(3, 3),
        "groq/*": Price(4, 4),
    }
    assert price_for(table, "azure/gpt-4o", "gpt-4o") == Price(2, 2)
    assert price_for(table, "openai/gpt-4o-mini", "gpt-4o-mini") == Price(3, 3)  # exact before a glob
    assert price_for(table, "openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06") == Price(1, 1)
    assert price_for(table, "groq/llama", "llama") == Price(4, 4)
    assert price_for(table, "echo/echo-1", "echo-1") is None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5", ("1.25", "10.00")),
        ("gpt-5-mini-2025-08-07", ("0.25", "2.00")),
        ("gpt-4o-mini", ("0.15", "0.60")),
        ("gpt-4o-2024-08-06", ("2.50", "10.00")),
        ("claude-sonnet-4-5-20250929", ("3.00", "15.00")),
        ("claude-opus-4-5-20251101", ("5.00", "25.00")),
        ("claude-opus-4-1-20250805", ("15.00", "75.00")),
        ("gemini-2.5-flash-lite", ("0.10", "0.40")),
        ("gemini-2.5-flash", ("0.30", "2.50")),
        ("deepseek-chat", ("0.28", "0.42")),
    ],
)
def test_default_prices_pick_the_most_specific_pattern(model: str, expected: tuple[str, str]) -> None:
    price = price_for(DEFAULT_PRICES, f"some-provider/{model}", model)
    assert price is not None
    assert (price.input, price.output) == tuple(Decimal(value) for value in expected)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5.5-pro-2026-04-23", ("30.00", "180.00")),
        ("gpt-5.5", ("5.00", "30.00")),
        ("gpt-5.4-mini", ("0.75", "4.50")),
        ("gpt-5.4-nano-2026-03-17", ("0.20", "1.25")),
        ("gpt-5.4", ("2.50", "15.00")),
        ("gpt-5.2", ("1.75", "14.00")),
        ("gpt-5.1", ("1.25", "10.00")),
        ("claude-opus-4-6", ("5.00", "25.00")),
        ("claude-opus-4-8", ("5.00", "25.00")),
        ("claude-opus-4-20250514", ("15.00", "75.00")),
        ("claude-opus-4-0", ("15.00", "75.00")),
        ("claude-opus-5", ("5.00", "25.00")),
        ("claude-opus-5-5", ("4.00", "20.00")),
        ("claude-sonnet-5-5", ("2.00", "10.00")),
    ],
)
def test_newer_gpt_5_and_claude_opus_4_models_are_not_priced_as_the_first_of_their_family(
    model: str, expected: tuple[str, str]
) -> None:
    """Regression: "gpt-5*" priced every gpt-5.x as gpt-5 (gpt-5.5-pro 24 times too cheap, so a budget could
    be overspent that much) and "claude-opus-4*" priced Opus 4.6 to 4.8 at Opus 4's old price."""
    test_default_prices_pick_the_most_specific_pattern(model, expected)


def test_default_prices_are_one_currency_and_every_cached_price_is_cheaper() -> None:
    assert {price.currency for price in DEFAULT_PRICES.values()} == {"USD"}
    for pattern, price in DEFAULT_PRICES.items():
        assert price.input > 0 and price.output >= 0, pattern  # embeddings write nothing
        if price.cached_input is not None:
            assert price.cached_input < price.input, pattern
        if price.cache_write is not None:
            assert price.cache_write > price.input, pattern
