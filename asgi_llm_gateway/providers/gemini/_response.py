"""Gemini `GenerateContentResponse` → OpenAI `chat.completion`, and the pieces the stream translator shares.
Pure; the mapping (finish reasons, usage, blocked prompts): docs/providers/gemini.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import GatewayError
from ...wire import choice, completion, dumps, message, tool_call, usage
from ..streams import bad_upstream_data
from ._errors import KIND
from ._ids import call_seed, encode_tool_call_id

__all__ = [
    "check_prompt_feedback",
    "finish_reason",
    "logprobs_of",
    "parts_of",
    "to_completion",
    "usage_of",
]

JSON = dict[str, Any]

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "IMAGE_OTHER": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "PUP_LIMITED_DISABLED": "content_filter",
    "ESCALATION": "content_filter",
}
# Finish reasons that mean the model produced nothing usable: an error, never an empty success.
_FAILED_FINISH_REASONS = frozenset(
    {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE"}
)


def to_completion(
    response: Mapping[str, Any], model: str, *, scope: str, created: int | None = None
) -> dict[str, Any]:
    """A `GenerateContentResponse` as a `chat.completion`, one choice per candidate; thought signatures go
    into the tool-call ids bound to `scope`, the seal scope of the provider and model that answered."""
    check_prompt_feedback(response)
    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise bad_upstream_data(KIND, "a response without candidates")
    response_id = response.get("responseId")
    choices = []
    for position, candidate in enumerate(candidates):
        index = candidate.get("index", position)
        parts = parts_of(candidate, response_id, index, 0, scope)
        finish = finish_reason(
            candidate.get("finishReason"), bool(parts.calls), candidate.get("finishMessage")
        )
        reply = message(
            "".join(parts.text) if parts.text else (None if parts.calls else ""),
            tool_calls=[tool_call(*call) for call in parts.calls] or None,
            reasoning_content="".join(parts.reasoning) or None,
        )
        choices.append(choice(reply, finish, index, logprobs_of(candidate.get("logprobsResult"))))
    return completion(
        model,
        choices,
        usage_of(response.get("usageMetadata")),
        id=f"chatcmpl-{response_id}" if response_id else None,
        created=created,
    )


def check_prompt_feedback(response: Mapping[str, Any]) -> None:
    """A blocked prompt is a 400 `content_filter` (what Azure OpenAI answers), never an empty answer."""
    feedback = response.get("promptFeedback") or {}
    reason = feedback.get("blockReason")
    if reason and not response.get("candidates"):
        detail = feedback.get("blockReasonMessage")
        raise GatewayError(
            f"gemini: the prompt was blocked by the upstream's safety filters ({reason}"
            + (f": {detail})" if detail else ")"),
            status=400,
            param="messages",
            code="content_filter",
        )


def finish_reason(reason: str | None, has_tool_calls: bool, finish_message: Any = None) -> str:
    """OpenAI's `finish_reason`; raises for an answer the model failed to produce, which must not look like
    an empty success (a missing thought signature is the request's fault: a 400)."""
    if reason == "MISSING_THOUGHT_SIGNATURE":
        raise GatewayError(
            "gemini: a function call in the history lacks its thought signature; send back the tool_call ids "
            "this gateway issued",
            status=400,
            param="messages",
            code="missing_thought_signature",
        )
    if reason in _FAILED_FINISH_REASONS:
        detail = f": {finish_message}" if finish_message else ""
        raise GatewayError(
            f"gemini: the model's answer was unusable ({reason}{detail})",
            status=502,
            code="upstream_bad_response",
        )
    if has_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(reason or "STOP", "stop")


def usage_of(metadata: Any) -> dict[str, Any] | None:
    """Thought tokens are output tokens in OpenAI's accounting; Gemini counts them apart."""
    if not isinstance(metadata, dict):
        return None
    thoughts = metadata.get("thoughtsTokenCount", 0)
    return usage(
        metadata.get("promptTokenCount", 0) + metadata.get("toolUsePromptTokenCount", 0),
        metadata.get("candidatesTokenCount", 0) + thoughts,
        cached_tokens=metadata.get("cachedContentTokenCount", 0),
        reasoning_tokens=thoughts,
    )


def logprobs_of(result: Any) -> dict[str, Any] | None:
    """`logprobsResult` in OpenAI's `logprobs` shape; the alternatives of token k are `topCandidates[k]`."""
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for k, chosen in enumerate(result.get("chosenCandidates") or ()):
        alternatives = tops[k].get("candidates", []) if k < len(tops) else []
        content.append({**_token_logprob(chosen), "top_logprobs": [_token_logprob(a) for a in alternatives]})
    return {"content": content, "refusal": None}


def _token_logprob(candidate: Mapping[str, Any]) -> JSON:
    token = str(candidate.get("token", ""))
    return {"token": token, "logprob": candidate.get("logProbability", 0.0), "bytes": list(token.encode())}


@dataclass
class Parts:
    """What one candidate's parts (or one event's worth of them) say, in OpenAI terms."""

    text: list[str]
    reasoning: list[str]
    calls: list[tuple[str, str, str]]  # (id, name, arguments JSON)


def parts_of(
    candidate: Mapping[str, Any], response_id: str | None, index: int, first_call: int, scope: str
) -> Parts:
    """`first_call` numbers the calls across a stream's events, so each gets its own stable id; signatures
    are bound to `scope`."""
    parts = Parts([], [], [])
    for part in (candidate.get("content") or {}).get("parts") or ():
        call = part.get("functionCall")
        if isinstance(call, dict):
            seed = call_seed(response_id, index, first_call + len(parts.calls))
            call_id = encode_tool_call_id(seed, call.get("id"), part.get("thoughtSignature"), scope)
            parts.calls.append((call_id, str(call.get("name", "")), dumps(call.get("args") or {}).decode()))
        elif isinstance(part.get("text"), str) and part["text"]:
            (parts.reasoning if part.get("thought") else parts.text).append(part["text"])
    return parts
