"""Request rewriting: a host's last word on a request, per principal, before it is routed.

`Gateway(rewrite=...)` takes any `Rewrite`: a function of (principal, endpoint, body) returning the body to
serve. It runs on every door once the body passed the door's schema (and auth, before it), and before the
plan: a rewritten `model` is routed as if the client had sent it. The body is the door's own, validated
(`endpoint` names the door as `Call.endpoint` does: `chat.completions`, `messages`,
`messages.count_tokens`, `responses`, `embeddings`). The result is not validated again: a rewrite that
makes a body invalid is the host's bug, answered by the upstream (or by a translation) as it sees fit.

`RequestPolicy` is the ready-made one:

    door                    max_output_tokens caps                  force_user sets
    chat.completions        max_completion_tokens (and max_tokens)  user
    messages                max_tokens                              metadata.user_id
    responses               max_output_tokens                       safety_identifier (and user, if sent)
    embeddings              -                                       user
    messages.count_tokens   -                                       -

A request without an output bound gets the cap as its bound (`max_completion_tokens` on chat), one with a
larger bound is lowered to it, one with a smaller bound keeps it. The forced user is the principal's name
(`Principal.name`, or the principal as text); without auth (no principal) nothing is forced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .auth import Principal

__all__ = ["RequestPolicy", "Rewrite"]

Rewrite = Callable[[Any, str, dict[str, Any]], dict[str, Any]]
"""(principal, endpoint, body) → the body the gateway serves."""

#: Each door's output bounds: the one set when a request has none first.
_OUTPUT_BOUNDS: dict[str, tuple[str, ...]] = {
    "chat.completions": ("max_completion_tokens", "max_tokens"),
    "messages": ("max_tokens",),
    "responses": ("max_output_tokens",),
}
#: Each door's end-user field; a path through an object is dotted.
_USER_FIELDS: dict[str, str] = {
    "chat.completions": "user",
    "embeddings": "user",
    "messages": "metadata.user_id",
    "responses": "safety_identifier",
}


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """Cap every request's output at `max_output_tokens` (None: no cap), and, with `force_user`, tell the
    upstream which principal sent it whatever the client said (see the module docstring for the fields)."""

    max_output_tokens: int | None = None
    force_user: bool = False

    def __post_init__(self) -> None:
        cap = self.max_output_tokens
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"max_output_tokens must be a positive integer, not {cap!r}")

    def __call__(self, principal: Any, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        bounds = _OUTPUT_BOUNDS.get(endpoint, ())
        user_field = _USER_FIELDS.get(endpoint) if self.force_user and principal is not None else None
        if (self.max_output_tokens is None or not bounds) and user_field is None:
            return body
        body = dict(body)
        if self.max_output_tokens is not None and bounds:
            self._cap(body, bounds, self.max_output_tokens)
        if user_field is not None:
            name = principal.name if isinstance(principal, Principal) else str(principal)
            self._force(body, user_field, name)
            if endpoint == "responses" and "user" in body:
                body["user"] = name
        return body

    @staticmethod
    def _cap(body: dict[str, Any], bounds: tuple[str, ...], cap: int) -> None:
        present = [name for name in bounds if isinstance(body.get(name), int)]
        for name in present:
            body[name] = min(body[name], cap)
        if not present:
            body[bounds[0]] = cap

    @staticmethod
    def _force(body: dict[str, Any], path: str, name: str) -> None:
        *parents, last = path.split(".")
        target = body
        for parent in parents:
            inner = target.get(parent)
            target[parent] = dict(inner) if isinstance(inner, dict) else {}
            target = target[parent]
        target[last] = name
