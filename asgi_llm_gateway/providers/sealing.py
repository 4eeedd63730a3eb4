"""Sealing: opaque reasoning state labelled with the scope that may read it, so it goes back only there.

Encrypted reasoning (OpenAI Responses `encrypted_content`) and signed thinking (Claude's `signature`,
`redacted_thinking` data) are readable only by the upstream, account and, for thinking, model that made
them; sent anywhere else the request fails. So the gateway seals every such value it hands a client with a
scope, and unseals what comes back for the scope of the upstream it is about to call: a value sealed for
another scope is dropped, never sent (and never turned into text).

A sealed value is `gw1.<length of scope>.<scope>.<original>`: plain ASCII, no whitespace, nothing any client
has reason to change, so it survives clients that store it verbatim. Unsealing for scope S is an exact
prefix match on `gw1.<len(S)>.<S>.`: the length pins where the scope ends, so a provider named `openai`
never takes what was sealed for `openai-eu` or `openai.x`. The seal needs no MAC: it is a routing label, not
a lock. The content itself is authenticated by the upstream that made it; a client who relabels a value
gets what it would get by sending any other string (the upstream's 400, for its own request), and gains
nothing it could not do already.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["SCOPE_TAG_LENGTH", "SEAL_VERSION", "scope_tag", "seal", "sealed_for", "unseal"]

SEAL_VERSION = "gw1"
#: The length of a `scope_tag`: 12 hex digits, 48 bits.
SCOPE_TAG_LENGTH = 12


def _prefix(scope: str) -> str:
    return f"{SEAL_VERSION}.{len(scope)}.{scope}."


def seal(value: str, scope: str) -> str:
    """`value` (an upstream's opaque reasoning state) sealed for `scope`."""
    return _prefix(scope) + value


def unseal(value: str, scope: str) -> str | None:
    """The original of a value sealed for `scope`; None for anything else."""
    prefix = _prefix(scope)
    return value[len(prefix) :] if value.startswith(prefix) else None


def sealed_for(value: Any) -> str | None:
    """The scope a value was sealed for; None when it is not a gateway seal."""
    if not isinstance(value, str) or not value.startswith(SEAL_VERSION + "."):
        return None
    length, dot, rest = value[len(SEAL_VERSION) + 1 :].partition(".")
    if not dot or not length.isdigit() or length != str(int(length)):
        return None
    size = int(length)
    if len(rest) <= size or rest[size] != ".":
        return None
    return rest[:size]


def scope_tag(scope: str) -> str:
    """A short, fixed-length stand-in for `scope` (hex digits of its SHA-256), for carriers too tight for the
    scope itself, such as tool-call ids (`[A-Za-z0-9_-]`, kept short). Like the seal it is a routing label,
    not a lock: 48 bits keep the few scopes one deployment has from sharing a tag by accident (about one
    chance in 10^11 for 100 scopes), and a client that forges one gains nothing it could not do already."""
    return hashlib.sha256(scope.encode()).hexdigest()[:SCOPE_TAG_LENGTH]
