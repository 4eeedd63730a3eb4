"""Token estimates where no tokenizer is at hand: one place, for every door and hook that needs one.

Messages' `count_tokens` answers with it for upstreams that have no counting API, and the limits hook
reserves with it at admission; both want an estimate that errs high.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .wire import dumps

__all__ = ["estimate_tokens"]

#: What the model reads in a Messages request (chat's and Responses' fields are mapped onto these by
#: the limits hook, `limits.hook.input_estimate`).
_READ = ("system", "messages", "tools")


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A deliberately generous estimate for upstreams with no counting API: one token per 3 bytes of the
    JSON of what the model reads (system, messages, tools). Tokenizers average 3.5 to 4.5 bytes per token on
    English and code; overcounting errs on the side a client's context budgeting can live with."""
    parts = {key: body[key] for key in _READ if key in body}
    return max(1, math.ceil(len(dumps(parts)) / 3))
