"""`LimitsHook`: limits and budgets as a pipeline hook — reserve at admission, settle when the call ends.

    hook point       what happens
    admit            every rule that applies to the call becomes a demand; the limiter checks and reserves
                     them all at once (all or nothing) — or the call is refused: 429, or 503 when the
                     limiter is unavailable and the hook fails closed
    request_ended    the reservation is settled: tokens to the real usage, the concurrency slot released,
                     the budget charged the real cost (nothing when the usage is unknown: a failed call)

A call reserves `1` request and `1` concurrency slot, `input + output` tokens and the cost of those tokens
at the dearest price among its targets (fallbacks included); an embedding reserves no output, a
`count_tokens` call no tokens at all. `input` is a generous estimate from the
request's bytes (one token per 3 bytes of the JSON of what the model reads, the estimate the Messages
door's `count_tokens` uses); `output` is the request's own bound (`max_completion_tokens`, `max_tokens` or
`max_output_tokens`) or else the configured maximum for the model (`max_output_tokens`, default 4096).

A call whose targets have no price reserves and is charged nothing against a budget (a warning says so,
at most once per `warn_every`): give every model that a budget covers a price.

**Worst-case overshoot.** Requests and concurrency are exact (but for a call that outlives `lease_ttl`,
whose slot is free again from then on); tokens and spend can exceed a limit only by what calls used beyond
their reservation — input beyond the byte estimate (which over-counts text but cannot see an image sent by
URL or the history a Responses call continues by `previous_response_id`), or output beyond the configured
maximum of a request that set no bound of its own — and, while the limiter is unavailable, by the calls
admitted unchecked (fail-open) and the cost of calls whose settlement could not be written.

**Redis down or slow** (`LimiterUnavailable`): `fail_open=True` (the default) admits the call unreserved
and logs a warning (at most one per `warn_every` seconds, with a count of those held back);
`fail_open=False` answers 503 `limits_unavailable`. Either way the call waits at most the limiter's
timeout. Admission and settlement run shielded from cancellation (a client leaving cannot lose a
reservation made in Redis between request and reply, nor the settlement that gives it back), which is why
a `Limiter` must bound its own time.

The admission, with the x-ratelimit-* headers of an admitted call, is kept in `call.state[LimitsHook]`:
`admission_of(call)` reads it and `limit_headers(call)` gives the headers in the shape doors send them.
They are also added to `call.extra_headers`, so every door sends them with every answer to the call, its
errors included (a refusal's 429 carries its own).
"""

from __future__ import annotations

import fnmatch
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

import anyio

from ..errors import GatewayError
from ..pipeline.call import Call
from ..pipeline.hooks import Hooks
from ..pricing import DEFAULT_PRICES, Price, price_for, reservation_cost, target_cost
from ..routing import Target
from ..tokens import estimate_tokens
from ..usage import UsageRecord
from .base import BucketState, Demand, Limiter, LimiterUnavailable
from .headers import format_reset, rate_limit_headers, retry_after_headers
from .rules import NANO, Rule, period_label

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "Admission",
    "LimitsHook",
    "admission_of",
    "input_estimate",
    "limit_headers",
]

logger = logging.getLogger("asgi_llm_gateway.limits")

#: The output reserved for a request that sets no bound, when the host configured none for its model.
DEFAULT_MAX_OUTPUT_TOKENS = 4096

#: What the model reads, on every door: chat and Messages (system, messages, tools), Responses
#: (instructions, input, tools).
_READ = ("system", "instructions", "messages", "input", "tools")
#: A request's own output bound, by door: chat (new and old name), Responses.
_OUTPUT_BOUNDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
#: Doors whose calls use fewer tokens than a generation, as (reads input, writes output); every other door
#: does both. Counting tokens uses none (but is still a request); an embedding reads and writes nothing.
_TOKENS_USED = {"messages.count_tokens": (False, False), "embeddings": (True, False)}


def input_estimate(body: Mapping[str, Any]) -> int:
    """A generous estimate of the tokens a request's model reads, whatever the door."""
    return estimate_tokens({"messages": [body[key] for key in _READ if key in body]})


@dataclass(slots=True)
class Admission:
    """A call's reservation: what it demanded under which `lease`, and the x-ratelimit-* `headers` for
    its response. `reserved` is False when the limiter was unavailable and the call went through anyway;
    `cost` is the call's cost once settled (None without usage or a price)."""

    lease: str
    demands: tuple[Demand, ...]
    headers: dict[str, str]
    reserved: bool = True
    settled: bool = False
    cost: Decimal | None = None


def admission_of(call: Call) -> Admission | None:
    """The admission `LimitsHook` made for `call`, if any."""
    found = call.state.get(LimitsHook)
    return found if isinstance(found, Admission) else None


def limit_headers(call: Call) -> list[tuple[bytes, bytes]]:
    """The x-ratelimit-* headers for `call`'s response, as doors send headers (none without limits)."""
    admission = admission_of(call)
    if admission is None:
        return []
    return [(name.encode(), value.encode()) for name, value in admission.headers.items()]


class _Throttled:
    """A warning logged at most once per `every` seconds, counting the ones held back."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.next = 0.0
        self.held_back = 0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now < self.next:
            self.held_back += 1
            return
        self.next = now + self.every
        held_back, self.held_back = self.held_back, 0
        logger.warning(message + " (%d similar warnings held back)", *args, held_back)


class LimitsHook(Hooks):
    """Limits and budgets on every call, through `limiter` (`MemoryLimiter`, `RedisLimiter` or the host's
    own). `prices` (default `DEFAULT_PRICES`, all in one currency) price the spend rules (give the gateway
    the same table, `Gateway(prices=...)`, so that usage records carry the cost budgets are charged);
    `max_output_tokens` is the output reserved for requests without a bound: one number, or glob patterns
    of model names (requested or target) to numbers."""

    def __init__(
        self,
        limiter: Limiter,
        rules: Sequence[Rule],
        *,
        prices: Mapping[str, Price] | None = None,
        max_output_tokens: int | Mapping[str, int] = DEFAULT_MAX_OUTPUT_TOKENS,
        fail_open: bool = True,
        warn_every: float = 60.0,
    ) -> None:
        ids = [rule.id for rule in rules]
        if len(set(ids)) != len(ids):
            raise ValueError(
                "two rules of one kind share a bucket (the same name, or the same scope, period and filters)"
            )
        self.limiter = limiter
        self.rules = tuple(rules)
        self.prices = DEFAULT_PRICES if prices is None else prices
        currencies = {price.currency for price in self.prices.values()}
        if len(currencies) > 1:
            raise ValueError(f"prices must share one currency, not {sorted(currencies)}")
        self.currency = currencies.pop() if currencies else "USD"
        self.max_output_tokens = max_output_tokens
        self.fail_open = fail_open
        self._warnings = _Throttled(warn_every)
        self._unpriced = _Throttled(warn_every)

    # -- admission -----------------------------------------------------------------------------------

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        applicable = [(rule, key) for rule in self.rules if (key := rule.key(call.principal, call.model))]
        if not applicable:
            return
        amounts = self._amounts(call, targets, {rule.kind for rule, _ in applicable})
        demands = tuple(
            Demand(key, rule.kind, rule.limit, rule.period, amounts[rule.kind]) for rule, key in applicable
        )
        lease = secrets.token_hex(16)
        try:
            with anyio.CancelScope(shield=True):
                decision = await self.limiter.acquire(demands, lease)
        except LimiterUnavailable as error:
            if not self.fail_open:
                self._warnings.warn("limits unavailable, refusing calls (fail_open=False): %s", error)
                raise GatewayError(
                    "Limits cannot be checked right now. Please try again shortly.",
                    status=503,
                    type="server_error",
                    code="limits_unavailable",
                    headers={"retry-after": "1"},
                ) from None
            self._warnings.warn("limits unavailable, admitting calls unchecked (fail_open=True): %s", error)
            call.state[LimitsHook] = Admission(lease, demands, {}, reserved=False)
            return
        headers = rate_limit_headers(demands, decision.states)
        if decision.refused is not None:
            rule, _ = applicable[decision.refused]
            raise self._refusal(
                call, rule, demands[decision.refused], decision.states[decision.refused], headers
            )
        call.state[LimitsHook] = Admission(lease, demands, headers)
        call.extra_headers += tuple((name.encode(), value.encode()) for name, value in headers.items())

    def _amounts(self, call: Call, targets: Sequence[Target], kinds: set[str]) -> dict[str, int]:
        """What the call reserves of each kind (tokens and money only computed when a rule needs them)."""
        amounts = {"requests": 1, "concurrent": 1, "tokens": 0, "spend": 0}
        if "tokens" in kinds or "spend" in kinds:
            reads, writes = _TOKENS_USED.get(call.endpoint, (True, True))
            read = input_estimate(call.body) if reads else 0
            written = self._output_bound(call, targets) if writes else 0
            amounts["tokens"] = read + written
            if "spend" in kinds:
                bounds = [reservation_cost(read, written, price) for price in self._prices(targets)]
                if not bounds:
                    names = ", ".join(target.name for target in targets)
                    self._unpriced.warn("no price for %s: its calls are not charged to budgets", names)
                amounts["spend"] = _nanos(max(bounds, default=Decimal(0)), ROUND_CEILING)
        return amounts

    def _output_bound(self, call: Call, targets: Sequence[Target]) -> int:
        for name in _OUTPUT_BOUNDS:
            value = call.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        if isinstance(self.max_output_tokens, int):
            return self.max_output_tokens
        names = [call.model, *(target.name for target in targets), *(target.model for target in targets)]
        found = [
            maximum
            for pattern, maximum in self.max_output_tokens.items()
            if any(fnmatch.fnmatchcase(name, pattern) for name in names)
        ]
        return max(found, default=DEFAULT_MAX_OUTPUT_TOKENS)

    def _prices(self, targets: Sequence[Target]) -> list[Price]:
        found = (price_for(self.prices, target.name, target.model) for target in targets)
        return [price for price in found if price is not None]

    def _refusal(
        self, call: Call, rule: Rule, demand: Demand, state: BucketState, headers: dict[str, str]
    ) -> GatewayError:
        """The 429 for the demand that did not fit, worded as OpenAI words its own. A demand that can never
        fit, and a spent budget, say `x-should-retry: false`: an SDK's retry in seconds cannot help."""
        scope, label = rule.describe(call.principal, call.model), period_label(rule.period)
        retry = state.retry_after
        headers = {**headers, **(retry_after_headers(retry) if retry is not None else {})}
        if retry is None:
            headers["x-should-retry"] = "false"
        if demand.kind == "spend":
            headers["x-should-retry"] = "false"
            renews = f"It renews in {format_reset(state.reset)}." if retry is not None else "It never fits."
            message = (
                f"You exceeded your current quota: the budget of {scope} is {_money(demand.limit)} "
                f"{self.currency} per {label}, {_money(max(0, state.remaining))} left, and this request may "
                f"cost up to {_money(demand.amount)}. {renews}"
            )
            return GatewayError(
                message, status=429, type="insufficient_quota", code="insufficient_quota", headers=headers
            )
        if retry is None:
            message = (
                f"Request too large for {scope} on {demand.kind} per {label}: Limit {demand.limit}, "
                f"Requested {demand.amount}. The input or output tokens must be reduced in order to run "
                "successfully."
            )
        elif demand.kind == "concurrent":
            message = f"Too many concurrent requests for {scope}: Limit {demand.limit}. "
            message += f"Please try again in {format_reset(retry)}."
        else:
            message = (
                f"Rate limit reached for {scope} on {demand.kind} per {label}: Limit {demand.limit}, "
                f"Used {demand.limit - state.remaining}, Requested {demand.amount}. "
                f"Please try again in {format_reset(retry)}."
            )
        kind = "tokens" if demand.kind == "tokens" else "requests"
        return GatewayError(message, status=429, type=kind, code="rate_limit_exceeded", headers=headers)

    # -- settlement ----------------------------------------------------------------------------------

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        admission = admission_of(call)
        if admission is None or admission.settled:
            return
        admission.settled = True
        usage, target = record.usage, call.target
        if usage is not None and target is not None:
            admission.cost = target_cost(self.prices, target.name, target.model, usage)
        # a request is counted once admitted: only the other kinds have anything to settle (so a gateway
        # limiting requests alone makes one round trip to Redis per call, not two)
        demands = [demand for demand in admission.demands if demand.kind != "requests"]
        if not admission.reserved or not demands:
            return
        used = []
        for demand in demands:
            if demand.kind == "tokens" and usage is not None:
                used.append(_tokens(usage))
            elif demand.kind == "spend" and admission.cost is not None:
                used.append(_nanos(admission.cost, ROUND_HALF_EVEN))
            else:
                used.append(0)
        try:
            # a call being cancelled (its client gone) must still give its reservation back
            with anyio.CancelScope(shield=True):
                await self.limiter.settle(demands, used, admission.lease)
        except LimiterUnavailable as error:  # leases expire; token reservations decay within their period
            self._warnings.warn("limits unavailable, a call's reservation was not settled: %s", error)

    async def aclose(self) -> None:
        """The gateway is closing: the limiter's connections go (a Redis client passed in stays open)."""
        await self.limiter.aclose()

    def __repr__(self) -> str:
        return f"LimitsHook({self.limiter!r}, {len(self.rules)} rules, fail_open={self.fail_open})"


def _tokens(usage: Mapping[str, Any]) -> int:
    total = usage.get("total_tokens")
    if isinstance(total, int) and total >= 0:
        return total
    parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return sum(part for part in parts if isinstance(part, int) and part > 0)


def _nanos(amount: Decimal, rounding: str) -> int:
    return int((amount * NANO).to_integral_value(rounding))


def _money(nanos: int) -> str:
    """Nano-units as an amount of money: `10`, `0.25`, `0.000125`."""
    amount = (Decimal(nanos) / NANO).quantize(Decimal("0.000001"), ROUND_HALF_EVEN).normalize()
    return f"{amount:f}"
