"""The request pipeline's reusable units, shared by every endpoint:

- `call.Call`: one request's record (who, what, which target, how many attempts, usage);
- `attempts.Attempts`: try targets under their policies (retry, backoff, fallback, cooldown, slots, budget);
- `relay.relay`: stream canonical chunks to the client through a door's `StreamEncoder`;
- `hooks.Hooks`: the hook points for cross-cutting concerns (usage, limits, logs, metrics, traces).
"""

from .attempts import Attempt, Attempts, Outcome
from .call import Call
from .hooks import Hooks
from .relay import StreamEncoder, relay

__all__ = ["Attempt", "Attempts", "Call", "Hooks", "Outcome", "StreamEncoder", "relay"]
