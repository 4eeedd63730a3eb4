"""Tool-call ids that carry Gemini's function-call id and thought signature, so the gateway keeps no state.

A thought signature is readable only by the model (and project) that made it, so the id also carries the tag
(`sealing.scope_tag`) of the seal scope it was made for (`reasoning.scope_for`: provider scope and model);
decoding for another scope drops it. The format and the reasons for it: docs/providers/gemini.md
("Tool-call ids and thought signatures").
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

from ..sealing import SCOPE_TAG_LENGTH, scope_tag

__all__ = ["DUMMY_THOUGHT_SIGNATURE", "CallId", "call_seed", "decode_tool_call_id", "encode_tool_call_id"]

#: Google's documented stand-in for a thought signature the client could not keep.
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

# call_<head>-<tag>_<signature> (bound), call_<head>_<signature> (issued before binding), call_<head>.
_OUR_ID = re.compile(
    r"call_([0-9a-f]{24}|i(?:[0-9a-f]{2})+)"
    rf"(?:-([0-9a-f]{{{SCOPE_TAG_LENGTH}}})_([A-Za-z0-9_-]+)|_([A-Za-z0-9_-]+))?"
)


class CallId(NamedTuple):
    """What a tool-call id carries back: the upstream function-call id, and the thought signature if it
    was made for the scope the id is read for."""

    upstream_id: str | None
    signature: str | None


def _to_base64url(signature: str) -> str:
    return signature.replace("+", "-").replace("/", "_").rstrip("=")


def _from_base64url(text: str) -> str:
    return text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)


def encode_tool_call_id(seed: str, upstream_id: str | None, signature: str | None, scope: str) -> str:
    """The id a client sees for one function call, its signature bound to `scope` (the seal scope of the
    provider and model that answered); `decode_tool_call_id` undoes it.

    `seed` is 24 lowercase hex characters, unique to this call.
    """
    if not signature:
        return upstream_id or f"call_{seed}"
    head = "i" + upstream_id.encode().hex() if upstream_id else seed
    return f"call_{head}-{scope_tag(scope)}_{_to_base64url(signature)}"


def decode_tool_call_id(tool_call_id: str, scope: str) -> CallId:
    """The upstream function-call id and, when it was made for `scope`, the thought signature a tool-call id
    carries. A foreign id is the upstream id itself; a signature made for another scope, or carried by an id
    issued before signatures were bound (no tag: its scope is unknown), is dropped."""
    found = _OUR_ID.fullmatch(tool_call_id)
    if found is None:
        return CallId(tool_call_id, None)
    head, tag, signature, _unbound = found.groups()
    upstream_id = bytes.fromhex(head[1:]).decode(errors="replace") if head.startswith("i") else None
    if signature is None or tag != scope_tag(scope):
        return CallId(upstream_id, None)
    return CallId(upstream_id, _from_base64url(signature))


def call_seed(response_id: str | None, candidate: int, call: int) -> str:
    """Stable per call: the same response always yields the same ids (and so do golden tests)."""
    if not response_id:
        return secrets.token_hex(12)
    return hashlib.sha256(f"{response_id}/{candidate}/{call}".encode()).hexdigest()[:24]
