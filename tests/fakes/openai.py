"""A fake OpenAI-family upstream on loopback: speaks each flavour's wire format and rejects what it rejects.

Flavours: "openai" (body checked against OpenAI's official OpenAPI schema; unknown fields and `max_tokens`
on reasoning models rejected), "mistral" (unknown fields → 422 with Mistral's flat envelope; tool-call ids
must be 9 alphanumerics; `developer` role and `name` on user messages rejected; tool calls answered without
`type`, with an `index` outside streams too, and streamed whole in one delta), "azure" (api-key header,
deployments URL with api-version, a leading prompt-filter chunk with empty choices), "deepseek"
(`: keep-alive` comments, cache-hit usage fields, text-only content), "groq" (n must be 1, `reasoning`
field). Answers are the echo provider's, rendered in the flavour's format. Faults can be scripted.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_llm_gateway.providers.echo import EchoProvider
from tests.support.openai_spec import request_properties, validator

KEY = "sk-upstream-test-0123456789"

MISTRAL_FIELDS = {
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "min_tokens",
    "repetition_penalty", "top_k", "logprobs", "top_logprobs", "n", "prediction", "parallel_tool_calls",
    "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key", "service_tier", "safe_prompt",
}  # fmt: skip
MISTRAL_MESSAGE_KEYS = {"role", "content", "tool_calls", "tool_call_id", "name", "prefix"}
_MISTRAL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")


@dataclass
class Fault:
    """What the next request gets instead of an answer."""

    #: None answers normally (after `delay`, with `cut_after`/`stall_after` applied to streams).
    status: int | None = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: For streams: send this many chunks, then cut the connection (no [DONE]).
    cut_after: int | None = None
    #: For streams: send this many chunks, then go silent for `stall` seconds.
    stall_after: int | None = None
    stall: float = 30.0
    #: Seconds before the first byte of the answer.
    delay: float = 0.0
    #: Send this raw text instead of a JSON body (garbage).
    raw: str | None = None


@dataclass
class FakeOpenAI:
    flavour: str = "openai"
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: Seconds between streamed chunks.
    chunk_delay: float = 0.0
    #: Requests whose handler was cancelled or whose client went away before the answer was complete.
    abandoned: int = 0
    #: GET /v1/models calls.
    model_listings: int = 0

    # -- checks ------------------------------------------------------------------------------------------

    def _auth_ok(self, request: Request) -> bool:
        if self.flavour == "azure":
            return request.headers.get("api-key") == self.key
        return request.headers.get("authorization") == f"Bearer {self.key}"

    def _reject(self, body: dict[str, Any]) -> Response | None:
        if self.flavour == "mistral":
            return self._reject_mistral(body)
        errors = list(validator("CreateChatCompletionRequest").iter_errors(body))
        if errors:
            error = errors[0]
            return _openai_error(400, f"Invalid request: {error.message}", ".".join(map(str, error.path)))
        for key in body:
            if key not in request_properties():
                return _openai_error(400, f"Unrecognized request argument supplied: {key}", key)
        if body.get("stream_options") and not body.get("stream"):
            return _openai_error(400, "stream_options is only allowed when stream is true", "stream_options")
        if re.match(r"^o\d", body["model"]) and "max_tokens" in body:
            return _openai_error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        if self.flavour == "groq" and (body.get("n") or 1) != 1:
            return _openai_error(400, "'n' : number must be at most 1", "n")
        if self.flavour == "deepseek":
            for message in body["messages"]:
                if isinstance(message.get("content"), list) and any(
                    part.get("type") != "text" for part in message["content"]
                ):
                    return _openai_error(400, "Failed to deserialize the JSON body: unknown variant", None)
        return None

    def _reject_mistral(self, body: dict[str, Any]) -> Response | None:
        for key in body:
            if key not in MISTRAL_FIELDS:
                return _mistral_422(["body", key], "Extra inputs are not permitted")
        for index, message in enumerate(body.get("messages") or ()):
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                return _mistral_422(
                    ["body", "messages", index, "role"], "Input should be 'system', 'user', …"
                )
            for key in message:
                if key not in MISTRAL_MESSAGE_KEYS or (key == "name" and message["role"] == "user"):
                    return _mistral_422(["body", "messages", index, key], "Extra inputs are not permitted")
            ids = [call.get("id", "") for call in message.get("tool_calls") or ()]
            if message.get("role") == "tool":
                ids.append(message.get("tool_call_id", ""))
            for tool_id in ids:
                if not _MISTRAL_ID.match(tool_id):
                    return JSONResponse(
                        {
                            "object": "error",
                            "message": f"Tool call id was {tool_id} but must be a-z, A-Z, 0-9, "
                            "with a length of 9.",
                            "type": "invalid_function_call",
                            "param": None,
                            "code": "3280",
                        },
                        status_code=400,
                    )
        if body.get("tool_choice") == "required" or "seed" in body:
            return _mistral_422(["body", "tool_choice"], "bad value")
        return None

    # -- endpoint ----------------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        self.requests.append(
            {
                "path": request.url.path,
                "query": str(request.url.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        if not self._auth_ok(request):
            return _openai_error(401, "Incorrect API key provided: sk-up***", None, "invalid_api_key")
        if (
            self.flavour == "azure"
            and "/deployments/" in request.url.path
            and "api-version" not in request.query_params
        ):
            return _openai_error(404, "Resource not found", None)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None and fault.cut_after is None:
            if fault.raw is not None:
                return Response(fault.raw, status_code=fault.status, headers=fault.headers)
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        rejection = self._reject(body)
        if rejection is not None:
            return rejection
        echo_request = {**body, "seed": None}
        echo_request.pop("random_seed", None)
        if body.get("stream"):
            return StreamingResponse(self._stream(body, fault), media_type="text/event-stream")
        completion = await EchoProvider().complete(echo_request, body["model"])
        return JSONResponse(self._render(completion))

    def _render(self, completion: dict[str, Any]) -> dict[str, Any]:
        for choice in completion["choices"]:
            for position, call in enumerate(choice["message"].get("tool_calls") or ()):
                if self.flavour == "mistral":  # no `type`, and an `index` even outside streams
                    call["id"] = call["id"][5:14]
                    del call["type"]
                    call["index"] = position
            if self.flavour == "groq":
                choice["message"]["reasoning"] = "thinking about it"
        usage = completion["usage"]
        if self.flavour == "deepseek":
            usage["prompt_cache_hit_tokens"] = 1
            usage["prompt_cache_miss_tokens"] = usage["prompt_tokens"] - 1
        return completion

    async def _stream(self, body: dict[str, Any], fault: Fault | None):  # type: ignore[no-untyped-def]
        include_usage = (body.get("stream_options") or {}).get("include_usage") or self.flavour == "mistral"
        chunks = [chunk async for chunk in EchoProvider().stream({**body, "seed": None}, body["model"])]
        if self.flavour == "mistral":
            chunks = _whole_tool_calls(chunks)
        if self.flavour == "azure":
            yield (
                'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
                '"prompt_filter_results":[]}\n\n'
            )
        if self.flavour == "deepseek":
            yield ": keep-alive\n\n"
        sent = 0
        complete = False
        try:
            for chunk in chunks:
                if fault is not None and fault.cut_after is not None and sent >= fault.cut_after:
                    raise RuntimeError("fake upstream cuts the connection")
                if fault is not None and fault.stall_after is not None and sent == fault.stall_after:
                    await asyncio.sleep(fault.stall)
                for line in self._render_chunk(chunk, chunks, include_usage):
                    yield line
                    sent += 1
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                else:
                    await asyncio.sleep(0)
            yield "data: [DONE]\n\n"
            complete = True
        finally:
            if not complete:
                self.abandoned += 1

    def _render_chunk(
        self, chunk: dict[str, Any], chunks: list[dict[str, Any]], include_usage: bool
    ) -> list[str]:
        """The SSE lines for one echo chunk, in this flavour."""
        if not chunk["choices"] and (not include_usage or self.flavour == "mistral"):
            return []  # Mistral puts usage on the last content chunk instead
        if chunk["choices"] and include_usage and self.flavour != "mistral":
            chunk["usage"] = None
        if self.flavour == "mistral" and chunk["choices"]:
            for call in chunk["choices"][0]["delta"].get("tool_calls") or ():
                call["id"] = call["id"][5:14]
                call.pop("type", None)
            if chunk["choices"][0]["finish_reason"]:
                chunk["usage"] = chunks[-1]["usage"]
        return [f"data: {json.dumps(chunk)}\n\n"]

    async def models(self, request: Request) -> Response:
        self.model_listings += 1
        if not self._auth_ok(request):
            return _openai_error(401, "Incorrect API key provided", None, "invalid_api_key")
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": "gpt-test", "object": "model", "created": 0, "owned_by": "fake"}],
            }
        )

    def app(self) -> Starlette:
        chat = ["/v1/chat/completions", "/chat/completions", "/openai/v1/chat/completions",
                "/openai/deployments/{deployment}/chat/completions"]  # fmt: skip
        return Starlette(
            routes=[Route(path, self.chat, methods=["POST"]) for path in chat]
            + [Route("/v1/models", self.models)]
        )


def _whole_tool_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mistral streams each tool call whole, in one delta (`id`, `function`, `index`; no `type`): the
    echo's argument fragments are folded into the delta that opened their call."""
    out: list[dict[str, Any]] = []
    opened: dict[tuple[int, int], dict[str, Any]] = {}
    for chunk in chunks:
        choice = chunk["choices"][0] if chunk["choices"] else None
        calls = choice["delta"].get("tool_calls") if choice else None
        if not calls:
            out.append(chunk)
            continue
        assert choice is not None
        for call in calls:
            key = (choice["index"], call["index"])
            if "id" in call:
                opened[key] = call
            else:
                opened[key]["function"]["arguments"] += call["function"]["arguments"]
        choice["delta"]["tool_calls"] = [call for call in calls if "id" in call]
        if choice["delta"]["tool_calls"]:
            out.append(chunk)
    return out


def _openai_error(status: int, message: str, param: str | None, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
        status_code=status,
    )


def _mistral_422(location: list[Any], message: str) -> JSONResponse:
    return JSONResponse(
        {
            "object": "error",
            "message": {"detail": [{"type": "extra_forbidden", "loc": location, "msg": message}]},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
        status_code=422,
    )
