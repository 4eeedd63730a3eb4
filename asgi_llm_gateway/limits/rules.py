"""`Rule`: what can be limited — a scope, a kind, an amount and a period — and which bucket a call falls in.

    kind         amount                          period (default)
    requests     requests per period             seconds (60)
    tokens       tokens per period               seconds (60)
    concurrent   calls in flight at once         —
    spend        currency per period (Decimal)   "day", "month" (UTC calendar) or seconds ("month")

`per` names the scope: parts joined by `+`, each `principal` (the key's `Principal.name`), `model` (the
model name the client asked for: a route or `provider/model`), or any other word, read from the principal's
`metadata` (`team`, `user`, `project`: whatever the host's auth hook puts there). `global` is one bucket for
every call. So `per="principal"` is one bucket per key, `per="team+model"` one per team and model. A call
whose principal has no such metadata is not limited by that rule (a key without a team has no team budget).
`models` and `principals` (glob patterns) narrow a rule to some models or keys, e.g. a tighter limit for
`"openai/gpt-5*"`. Without auth every call is the principal `anonymous`.

A bucket's key is the rule's kind and `name` (by default its scope, period and filters: changing only the
amount keeps the bucket and its state) and the call's scope values, each percent-encoded. The kind is
always part of it, so a named rule that changes kind starts a new bucket instead of misreading the old.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, get_args
from urllib.parse import quote

from ..auth import Principal
from .base import Kind, Period

__all__ = ["ANONYMOUS", "NANO", "Rule", "period_label", "principal_name", "window"]

#: The principal name of calls to a gateway without an auth hook.
ANONYMOUS = "anonymous"

#: Money is counted in nano-units of the currency (integers: exact sums, and Lua's doubles hold 9·10^15).
NANO = Decimal(1_000_000_000)

_DEFAULT_PERIODS: dict[str, Period | None] = {
    "requests": 60.0,
    "tokens": 60.0,
    "concurrent": None,
    "spend": "month",
}
_DAY = 86400


def principal_name(principal: Any) -> str:
    """The name a rule sees: a `Principal`'s name, any other principal as text, or `anonymous`."""
    if principal is None:
        return ANONYMOUS
    return principal.name if isinstance(principal, Principal) else str(principal)


def window(period: Period, now: float) -> tuple[int, float]:
    """The budget window holding `now` (Unix seconds): its number and its end. Days and months are UTC
    calendar ones; a number of seconds counts windows from the Unix epoch."""
    if period == "day":
        number = int(now // _DAY)
        return number, (number + 1) * _DAY
    if period == "month":
        date = datetime.fromtimestamp(now, timezone.utc)
        year, month = (date.year, date.month + 1) if date.month < 12 else (date.year + 1, 1)
        return date.year * 12 + date.month - 1, datetime(year, month, 1, tzinfo=timezone.utc).timestamp()
    number = int(now // period)
    return number, (number + 1) * period


def period_label(period: Period | None) -> str:
    """How a message names a period, as OpenAI's do: `min`, `day`, `month`, else seconds."""
    if isinstance(period, str) or period is None:
        return str(period)
    return {60.0: "min", 3600.0: "hour", 86400.0: "day"}.get(float(period), f"{period:g} s")


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit. `amount` is a count for requests, tokens and concurrency, and money (in the prices'
    currency) for spend; see the module docstring for `per`, `period`, `models` and `principals`."""

    kind: Kind
    amount: int | float | Decimal | str
    per: str = "principal"
    period: Period | None = None
    models: tuple[str, ...] | None = None
    principals: tuple[str, ...] | None = None
    name: str | None = None
    #: The scope's parts (`per` split on `+`; empty for `global`).
    parts: tuple[str, ...] = field(init=False)
    #: `amount` as the backend counts it: an integer count, or nano-units of money.
    limit: int = field(init=False)
    #: The bucket family's name: the kind, then `name` or what is derived from everything but the amount.
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in get_args(Kind):
            raise ValueError(f"Rule kind must be one of {', '.join(get_args(Kind))}, not {self.kind!r}")
        period = _DEFAULT_PERIODS[self.kind] if self.period is None else self.period
        if self.kind == "concurrent" and self.period is not None:
            raise ValueError("a concurrent rule has no period")
        if isinstance(period, str) and (self.kind != "spend" or period not in ("day", "month")):
            raise ValueError(
                f"period {period!r}: only spend rules take 'day' or 'month'; others take seconds"
            )
        if isinstance(period, int | float) and not period > 0:
            raise ValueError(f"period must be a positive number of seconds, not {period!r}")
        limit = self._limit()
        parts = () if self.per == "global" else tuple(self.per.split("+"))
        if not all(parts):
            raise ValueError(f"per {self.per!r}: name parts joined by '+', e.g. 'principal+model'")
        filters = "" if self.models is None and self.principals is None else "/" + _digest(self)
        derived = f"{self.per}/{period}{filters}"
        object.__setattr__(self, "period", float(period) if isinstance(period, int) else period)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "id", f"{self.kind}/{self.name or derived}")

    def _limit(self) -> int:
        try:
            amount = Decimal(str(self.amount))
        except ArithmeticError:
            raise ValueError(f"Rule amount must be a number, not {self.amount!r}") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"Rule amount must be positive, not {self.amount!r}")
        if self.kind == "spend":
            return int(amount * NANO)
        if amount != amount.to_integral_value():
            raise ValueError(f"a {self.kind} rule counts whole {self.kind}, not {self.amount!r}")
        return int(amount)

    def applies(self, principal: Any, model: str) -> bool:
        """Whether the rule's filters let this call in (the scope may still not apply: see `key`)."""
        if self.models is not None and not any(fnmatch.fnmatchcase(model, p) for p in self.models):
            return False
        name = principal_name(principal)
        return self.principals is None or any(fnmatch.fnmatchcase(name, p) for p in self.principals)

    def key(self, principal: Any, model: str) -> str | None:
        """The bucket of a call by `principal` for `model`, or None when the rule does not apply to it."""
        if not self.applies(principal, model):
            return None
        values = []
        for part in self.parts:
            if part == "principal":
                value: Any = principal_name(principal)
            elif part == "model":
                value = model
            else:
                value = principal.metadata.get(part) if isinstance(principal, Principal) else None
                if value is None:
                    return None
            values.append(quote(str(value), safe=""))
        return ":".join([quote(self.id, safe="/+"), *values])

    def describe(self, principal: Any, model: str) -> str:
        """The scope in words, for an error message: `key 'alice'`, `team 'red' and model 'smart'`."""
        words = []
        for part in self.parts:
            if part == "principal":
                words.append(f"key '{principal_name(principal)}'")
            elif part == "model":
                words.append(f"model '{model}'")
            else:
                words.append(f"{part} '{principal.metadata.get(part)}'")
        return " and ".join(words) or "this gateway"


def _digest(rule: Rule) -> str:
    """A short, stable name for a rule's filters (so two filtered rules keep apart)."""
    text = repr((sorted(rule.models or ()), sorted(rule.principals or ())))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
