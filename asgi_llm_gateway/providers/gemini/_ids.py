"""Tool-call ids that carry Gemini's function-call id and thought signature, so the gateway keeps no state.

The format and the reasons for it: docs/providers/gemini.md ("Tool-call ids").
"""

from __future__ import annotations

import hashlib
import re
import secrets

__all__ = ["DUMMY_THOUGHT_SIGNATURE", "call_seed", "decode_tool_call_id", "encode_tool_call_id"]

#: Google's documented stand-in for a thought signature the client could not keep.
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

_OUR_ID = re.compile(r"call_([0-9a-f]{24}|i(?:[0-9a-f]{2})+)(?:_([A-Za-z0-9_-]+))?")


def _to_base64url(signature: str) -> str:
    return signature.replace("+", "-").replace("/", "_").rstrip("=")


def _from_base64url(text: str) -> str:
    return text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)


def encode_tool_call_id(seed: str, upstream_id: str | None, signature: str | None) -> str:
    """The id a client sees for one function call; `decode_tool_call_id` undoes it.

    `seed` is 24 lowercase hex characters, unique to this call.
    """
    if not signature:
        return upstream_id or f"call_{seed}"
    head = "i" + upstream_id.encode().hex() if upstream_id else seed
    return f"call_{head}_{_to_base64url(signature)}"


def decode_tool_call_id(tool_call_id: str) -> tuple[str | None, str | None]:
    """(upstream function-call id, thought signature) carried by a tool-call id; a foreign id is the
    upstream id itself."""
    found = _OUR_ID.fullmatch(tool_call_id)
    if found is None:
        return tool_call_id, None
    head, signature = found.groups()
    upstream_id = bytes.fromhex(head[1:]).decode(errors="replace") if head.startswith("i") else None
    return upstream_id, _from_base64url(signature) if signature else None


def call_seed(response_id: str | None, candidate: int, call: int) -> str:
    """Stable per call: the same response always yields the same ids (and so do golden tests)."""
    if not response_id:
        return secrets.token_hex(12)
    return hashlib.sha256(f"{response_id}/{candidate}/{call}".encode()).hexdigest()[:24]
