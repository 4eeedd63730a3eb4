"""`LogHook`: one structured log record per request, and one per failed attempt, through `logging`.

Each record has a readable message and the same facts as `extra` fields, so a JSON formatter (or any
handler reading `record.__dict__`) gets them as fields:

    field            request record                          attempt record
    request_id       the call's id                           same
    principal        the caller's name (never a key)         same
    endpoint         the door: chat.completions, messages…   same
    model            the model the client asked for          same
    provider         the provider that answered              the attempt's provider
    upstream_model   the upstream model that answered        the attempt's upstream model
    target           <provider>/<model> that answered        the attempt's target
    upstream_request_id  the upstream's own id of the last       —
                     attempt's answer (its support asks for it)
    status           the HTTP status the client got (499:    the attempt's error status
                     the client left)
    attempts         attempts over every target              the attempt's number
    fallbacks        targets tried beyond the first          —
    latency_ms       from the request's start to its end     —
    ttft_ms          a stream's time to its first chunk      —
    input_tokens, output_tokens, cached_tokens, reasoning_tokens (request record, when reported)
    cost             when the gateway has prices             —
    error_type       the error's type                        same
    error_code       the error's code                        same
    next             —                                       "retry", "fallback" or "none": what the
                                                             gateway did next

An attempt's record is written when the next step is known (the next attempt starts, or the call ends),
so it says truthfully whether the gateway retried, fell back or gave up.

Nothing secret and no content: the principal is a name, error messages are left out (an upstream may quote
the prompt in them) unless `include_content=True`, which also adds the request body's messages/input and
the redacted error message.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import GatewayError
from ..pipeline.call import CLIENT_CLOSED_REQUEST, Call
from ..pipeline.hooks import Hooks
from ..routing import Target
from ..usage import UsageRecord
from ._facts import Progress, Tokens, principal_name, progress, redacted

__all__ = ["LogHook"]

#: The request body's fields that hold content, by door (chat, messages: messages; responses: input…).
_CONTENT_FIELDS = ("system", "instructions", "messages", "input", "prompt")


class LogHook(Hooks):
    """Logs every call once at its end (INFO; WARNING when it failed), and every failed attempt (WARNING)."""

    def __init__(self, logger: logging.Logger | None = None, include_content: bool = False) -> None:
        self.logger = logger or logging.getLogger("asgi_llm_gateway.requests")
        self.include_content = include_content

    async def attempt_started(self, call: Call, target: Target) -> None:
        seen = progress(call, self)
        step = seen.started(target)
        if step is not None:
            self._log_failed_attempt(call, seen, step)

    async def attempt_ended(self, call: Call, target: Target, error: GatewayError | None) -> None:
        seen = progress(call, self)
        seen.ended(call, target, error)
        if error is not None:
            seen.extra["failed"] = (target, error, call.attempts)

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        seen = progress(call, self)
        self._log_failed_attempt(call, seen, "none")
        failed = record.status >= 400 and record.status != CLIENT_CLOSED_REQUEST
        level = logging.WARNING if failed else logging.INFO
        if not self.logger.isEnabledFor(level):  # e.g. a host that keeps only failures: build nothing
            return
        fields = self._common(call)
        target = call.target
        tokens = Tokens.of(record.usage)
        fields.update(
            provider=record.provider,
            upstream_model=target.model if target is not None else None,
            target=record.target,
            upstream_request_id=call.upstream_request_id,
            status=record.status,
            attempts=call.attempts,
            fallbacks=seen.fallbacks,
            latency_ms=round(record.latency_ms, 1),
            ttft_ms=round(seen.first_chunk * 1000, 1) if seen.first_chunk is not None else None,
            stream=record.stream,
            input_tokens=tokens.input if tokens else None,
            output_tokens=tokens.output if tokens else None,
            cached_tokens=tokens.cached if tokens else None,
            reasoning_tokens=tokens.reasoning if tokens else None,
            cost=str(cost) if (cost := getattr(record, "cost", None)) is not None else None,
        )
        error = record.error or {}
        fields.update(error_type=error.get("type"), error_code=error.get("code"))
        if self.include_content:
            fields["content"] = {key: call.body[key] for key in _CONTENT_FIELDS if key in call.body}
            if error.get("message"):
                fields["error_message"] = redacted(str(error["message"]), target)
        message = (
            f"{record.endpoint} {call.model} → {record.target or '-'} {record.status} "
            f"in {record.latency_ms:.0f} ms ({call.attempts} attempts, {seen.fallbacks} fallbacks"
        )
        if tokens is not None:
            message += f", {tokens.input} in / {tokens.output} out tokens"
        if fields["ttft_ms"] is not None:
            message += f", first chunk after {fields['ttft_ms']:.0f} ms"
        message += ")"
        if record.error:
            message += f": {error.get('type')} {error.get('code') or ''}".rstrip()
        self.logger.log(level, "request %s %s", call.request_id, message, extra=fields)

    def _log_failed_attempt(self, call: Call, seen: Progress, step: str) -> None:
        """The failed attempt waiting for its outcome, if any: `step` is what the gateway did next."""
        failed = seen.extra.pop("failed", None)
        if failed is None:
            return
        target, error, number = failed
        fields = self._common(call)
        fields.update(
            provider=target.provider_name,
            upstream_model=target.model,
            target=target.name,
            status=error.status,
            attempt=number,
            error_type=error.type,
            error_code=error.code,
            next=step,
        )
        if self.include_content:
            fields["error_message"] = redacted(error.message, target)
        self.logger.warning(
            "request %s attempt %d on %s failed with %d %s; next: %s",
            call.request_id,
            number,
            target.name,
            error.status,
            error.code or error.type,
            step,
            extra=fields,
        )

    def _common(self, call: Call) -> dict[str, Any]:
        return {
            "request_id": call.request_id,
            "principal": principal_name(call.principal),
            "endpoint": call.endpoint,
            "model": call.model,
        }
