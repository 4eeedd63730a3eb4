"""A fake OpenAI-family upstream on loopback: speaks each flavour's wire format and rejects what it rejects.

Flavours: "openai" (body checked against OpenAI's official OpenAPI schema; unknown fields and `max_tokens`
on reasoning models rejected), "mistral" (unknown fields → 422 with Mistral's flat envelope; tool-call ids
must be 9 alphanumerics; `developer` role and `name` on user messages rejected; tool calls answered without
`type`, with an `index` outside streams too, and streamed whole in one delta), "azure" (api-key header,
deployments URL with api-version, a leading prompt-filter chunk with empty choices), "deepseek"
(`: keep-alive` comments, cache-hit usage fields, text-only content), "groq" (n must be 1, `reasoning`
field). Answers are the echo provider's, rendered in the flavour's format. Faults can be scripted. Every
request's headers are recorded (`requests`); every answer carries an `x-request-id` of the fake's own, and
"openai" refuses a client request id (`X-Client-Request-Id`) that is not ASCII or is over 512 characters.

"openai" and "azure" also serve the Responses API (`POST /v1/responses`; Azure's `/openai/v1/responses` and
the versioned `/openai/responses?api-version=`), streamed and not, in OpenAI's wire format: the same echo
model answers, its tool calls becoming `function_call` items. It refuses what OpenAI refuses (see
`_responses_rejection`): unknown top-level parameters and item fields, malformed items, an unknown
`previous_response_id` or item reference (nothing is kept with `store: false`), reasoning items whose
`encrypted_content` it did not make, `text.format` json_schema without `name` or `schema`. Reasoning models
(o-series, gpt-5) answer with a reasoning item first, with an `encrypted_content` the fake can verify later
when `include` asks for it. Other flavours have no `/responses` (404).

"openai", "azure" and "mistral" serve embeddings (`POST /v1/embeddings`, Azure's deployment and v1 URLs):
each input becomes the echo provider's vector for it (`echo_embedding`, of the model's size or of
`dimensions`), as floats or, when asked, base64 float32. OpenAI's side checks the body against the official
`CreateEmbeddingRequest` (unknown fields, empty input, more than 2048 inputs are refused), knows its three
models and refuses `dimensions` on text-embedding-ada-002 and above a model's size; Mistral's takes its own
fields only (`output_dimension`, not `dimensions`; 422 otherwise) and text only, not token arrays.
"deepseek" and "groq" have no embeddings (404).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_llm_gateway.providers.echo import EchoProvider, echo_embedding
from asgi_llm_gateway.providers.embeddings import encode_base64
from tests.support.openai_spec import request_properties, validator

from .openai_embeddings import EMBEDDING_SIZES, embedding_request_errors

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
    #: For Responses streams: send this many events, then `fail_with` ("response.failed" or "error").
    fail_after: int | None = None
    fail_with: str = "response.failed"
    fail_code: str = "server_error"


@dataclass
class FakeOpenAI:
    flavour: str = "openai"
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: Seconds between streamed chunks.
    chunk_delay: float = 0.0
    #: Responses streams in one write (as a fast answer reaches a proxy: many events to a read).
    burst: bool = False
    #: Requests whose handler was cancelled or whose client went away before the answer was complete.
    abandoned: int = 0
    #: GET /v1/models calls.
    model_listings: int = 0
    #: Signs the reasoning items' `encrypted_content`: another fake (another "account") cannot read them.
    reasoning_key: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    #: Responses kept because their request had `store` true (the default): id → (input items, response).
    stored: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)

    # -- checks ------------------------------------------------------------------------------------------

    def _record(self, request: Request, body: Any) -> None:
        self.requests.append(
            {
                "path": request.url.path,
                "query": str(request.url.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )

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
        self._record(request, body)
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
        # OpenAI and Azure write compact JSON; the other flavours keep Python's spacing, which the gateway's
        # verbatim relay of content chunks must notice (and re-encode those chunks instead)
        compact = self.flavour in ("openai", "azure")
        return [f"data: {json.dumps(chunk, separators=(',', ':') if compact else None)}\n\n"]

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
        responses = ["/v1/responses", "/responses", "/openai/v1/responses", "/openai/responses"]
        embeddings = ["/v1/embeddings", "/embeddings", "/openai/v1/embeddings",
                      "/openai/deployments/{deployment}/embeddings"]  # fmt: skip
        return Starlette(
            routes=[Route(path, self.chat, methods=["POST"]) for path in chat]
            + [Route(path, self.responses, methods=["POST"]) for path in responses]
            + [Route(path, self.embeddings, methods=["POST"]) for path in embeddings]
            + [Route("/v1/models", self.models)],
            middleware=[
                Middleware(_RequestIds, flavour=self.flavour),
                Middleware(_ClientRequestIds, flavour=self.flavour),
            ],
        )

    # -- embeddings ------------------------------------------------------------------------------------

    async def embeddings(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self._record(request, body)
        if self.flavour not in ("openai", "azure", "mistral"):
            return _openai_error(404, "Not Found", None)
        if not self._auth_ok(request):
            return _openai_error(401, "Incorrect API key provided: sk-up***", None, "invalid_api_key")
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        failure = embedding_request_errors(body, self.flavour)
        if failure is not None:
            status, payload = failure
            return JSONResponse(payload, status_code=status)
        items = body["input"]
        if isinstance(items, str) or isinstance(items[0], int):
            items = [items]
        size = body.get("dimensions") or body.get("output_dimension") or EMBEDDING_SIZES[body["model"]]
        vectors: list[Any] = [echo_embedding(item, size) for item in items]
        if body.get("encoding_format") == "base64":
            vectors = [encode_base64(vector) for vector in vectors]
        tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in items)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": index, "embedding": vector}
                    for index, vector in enumerate(vectors)
                ],
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- the Responses API -----------------------------------------------------------------------------

    async def responses(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self._record(request, body)
        if self.flavour not in ("openai", "azure"):
            return _openai_error(404, "Not Found", None)
        if not self._auth_ok(request):
            return _openai_error(401, "Incorrect API key provided: sk-up***", None, "invalid_api_key")
        versioned = self.flavour == "azure" and request.url.path == "/openai/responses"
        if versioned and "api-version" not in request.query_params:
            return _openai_error(404, "Resource not found", None)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if (
            fault is not None
            and fault.status is not None
            and fault.cut_after is None
            and fault.fail_after is None
        ):
            if fault.raw is not None:
                return Response(fault.raw, status_code=fault.status, headers=fault.headers)
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        if not isinstance(body, dict):
            return _openai_error(400, "The request body must be a JSON object.", None, "invalid_type")
        rejection = self._responses_rejection(body)
        if rejection is not None:
            return rejection
        history = self._history(body)
        if isinstance(history, Response):
            return history
        answer = await self._respond(body, history)
        if body.get("store", True) is not False:
            self.stored[answer.response["id"]] = (history, answer.final())
        if body.get("stream"):
            return StreamingResponse(self._response_events(answer, fault), media_type="text/event-stream")
        return JSONResponse(answer.final())

    def _responses_rejection(self, body: dict[str, Any]) -> Response | None:
        """What OpenAI answers 400 to (the first problem found), or None."""
        for key in body:
            if key not in RESPONSES_FIELDS:
                return _unknown(key)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _missing("model")
        if "input" not in body and "previous_response_id" not in body:
            return _missing("input")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            return _invalid_type("stream", "a boolean", stream)
        if body.get("stream_options") is not None and not stream:
            return _openai_error(
                400, "stream_options is only allowed when stream is true", "stream_options", "invalid_value"
            )
        limit = body.get("max_output_tokens")
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                return _invalid_type("max_output_tokens", "an integer", limit)
            if limit < 16:
                return _openai_error(
                    400,
                    "Invalid 'max_output_tokens': integer below minimum value. "
                    f"Expected a value >= 16, but got {limit} instead.",
                    "max_output_tokens",
                    "integer_below_min_value",
                )
        reasoning = body.get("reasoning")
        if reasoning is not None:
            if not isinstance(reasoning, dict):
                return _invalid_type("reasoning", "an object", reasoning)
            for key in reasoning:
                if key not in ("effort", "summary", "generate_summary", "context"):
                    return _unknown(f"reasoning.{key}")
            if reasoning.get("effort") is not None and not REASONING_MODEL.match(model):
                return _openai_error(
                    400,
                    "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                    "reasoning.effort",
                    "unsupported_parameter",
                )
        include = body.get("include")
        if include is not None:
            if not isinstance(include, list):
                return _invalid_type("include", "an array", include)
            for index, value in enumerate(include):
                if value not in INCLUDABLE:
                    return _invalid_value(f"include[{index}]", value)
        return (
            self._text_rejection(body.get("text"))
            or self._tools_rejection(body.get("tools"))
            or self._tool_choice_rejection(body.get("tool_choice"))
            or self._input_rejection(body.get("input"), body.get("store", True) is not False)
        )

    def _text_rejection(self, text: Any) -> Response | None:
        if text is None:
            return None
        if not isinstance(text, dict):
            return _invalid_type("text", "an object", text)
        for key in text:
            if key not in ("format", "verbosity"):
                return _unknown(f"text.{key}")
        fmt = text.get("format")
        if fmt is None:
            return None
        if not isinstance(fmt, dict):
            return _invalid_type("text.format", "an object", fmt)
        kind = fmt.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            return _invalid_value("text.format.type", kind)
        allowed = {"type", "name", "schema", "strict", "description"} if kind == "json_schema" else {"type"}
        for key in fmt:
            if key not in allowed:
                return _unknown(f"text.format.{key}")
        if kind == "json_schema":
            for key in ("name", "schema"):
                if key not in fmt:
                    return _missing(f"text.format.{key}")
            if not isinstance(fmt["name"], str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", fmt["name"]):
                return _invalid_value("text.format.name", fmt["name"])
            if not isinstance(fmt["schema"], dict):
                return _invalid_type("text.format.schema", "an object", fmt["schema"])
        return None

    def _tools_rejection(self, tools: Any) -> Response | None:
        if tools is None:
            return None
        if not isinstance(tools, list):
            return _invalid_type("tools", "an array", tools)
        for index, tool in enumerate(tools):
            where = f"tools[{index}]"
            if not isinstance(tool, dict):
                return _invalid_type(where, "an object", tool)
            kind = tool.get("type")
            if kind not in TOOL_TYPES:
                return _invalid_value(f"{where}.type", kind)
            if kind != "function":
                continue  # built-in tools: accepted, never called by the echo model
            for key in tool:
                if key not in FUNCTION_TOOL_KEYS:
                    return _unknown(f"{where}.{key}")
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                return _missing(f"{where}.name")
            if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
                return _invalid_type(f"{where}.parameters", "an object", tool["parameters"])
        return None

    def _tool_choice_rejection(self, choice: Any) -> Response | None:
        if choice is None or choice in ("auto", "none", "required"):
            return None
        if not isinstance(choice, dict):
            return _invalid_value("tool_choice", choice)
        if choice.get("type") == "function" and not isinstance(choice.get("name"), str):
            return _missing("tool_choice.name")
        return None

    def _input_rejection(self, items: Any, store: bool) -> Response | None:
        if items is None or isinstance(items, str):
            return None
        if not isinstance(items, list):
            return _invalid_type("input", "a string or an array", items)
        for index, item in enumerate(items):
            problem = self._item_rejection(item, f"input[{index}]", store)
            if problem is not None:
                return problem
        return None

    def _item_rejection(self, item: Any, where: str, store: bool) -> Response | None:
        if not isinstance(item, dict):
            return _invalid_type(where, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            return _missing(f"{where}.type")
        if kind not in ITEM_TYPES:
            return _invalid_value(f"{where}.type", kind)
        keys = ITEM_KEYS.get(kind)
        if keys is None:
            return None  # items of the built-in tools: accepted, ignored by the echo model
        for key in item:
            if key not in keys:
                return _unknown(f"{where}.{key}")
        for key in ITEM_REQUIRED[kind]:
            if key not in item:
                return _missing(f"{where}.{key}")
        if kind == "message":
            return self._message_rejection(item, where)
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item[key], str):
                    return _invalid_type(f"{where}.{key}", "a string", item[key])
        elif kind == "function_call_output":
            if not isinstance(item["call_id"], str):
                return _invalid_type(f"{where}.call_id", "a string", item["call_id"])
            if not isinstance(item["output"], (str, list)):
                return _invalid_type(f"{where}.output", "a string or an array", item["output"])
        elif kind in ("reasoning", "compaction"):
            if kind == "reasoning" and not isinstance(item["summary"], list):
                return _invalid_type(f"{where}.summary", "an array", item["summary"])
            content = item.get("encrypted_content")
            if content is not None:
                if not isinstance(content, str) or not self.verify_encrypted(content):
                    shown = content[:4] + "..." + content[-4:] if isinstance(content, str) else content
                    return _openai_error(
                        400,
                        f"The encrypted content {shown} could not be verified. "
                        "Reason: Encrypted content could not be decrypted or parsed.",
                        None,
                        "invalid_encrypted_content",
                    )
            elif not self._known_item(item.get("id")):
                return _item_not_found(item.get("id"), store)
        elif kind == "item_reference" and not self._known_item(item.get("id")):
            return _item_not_found(item.get("id"), store)
        return None

    def _message_rejection(self, item: dict[str, Any], where: str) -> Response | None:
        role = item["role"]
        if role not in ("user", "assistant", "system", "developer"):
            return _invalid_value(f"{where}.role", role)
        content = item["content"]
        if isinstance(content, str):
            return None
        if not isinstance(content, list):
            return _invalid_type(f"{where}.content", "a string or an array", content)
        allowed = ASSISTANT_PARTS if role == "assistant" else INPUT_PARTS
        for index, part in enumerate(content):
            at = f"{where}.content[{index}]"
            if not isinstance(part, dict):
                return _invalid_type(at, "an object", part)
            if part.get("type") not in allowed:
                return _invalid_value(f"{at}.type", part.get("type"))
            field_name = {"input_text": "text", "output_text": "text", "refusal": "refusal"}.get(part["type"])
            if field_name is not None and not isinstance(part.get(field_name), str):
                return _missing(f"{at}.{field_name}")
        return None

    def _known_item(self, item_id: Any) -> bool:
        return any(
            item.get("id") == item_id for _, response in self.stored.values() for item in response["output"]
        )

    def _history(self, body: dict[str, Any]) -> list[dict[str, Any]] | Response:
        """The conversation so far as input items: the stored `previous_response_id` chain, then `input`."""
        items: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in self.stored:
                return _openai_error(
                    400,
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            before, response = self.stored[previous]
            items = [*before, *response["output"]]
        given = body.get("input")
        if isinstance(given, str):
            items.append({"type": "message", "role": "user", "content": given})
        elif isinstance(given, list):
            items.extend(given)
        if not any(_item_type(item) == "message" for item in items):
            return _openai_error(
                400, "The input must contain at least one message.", "input", "invalid_value"
            )
        return items

    # -- answering ---------------------------------------------------------------------------------------

    async def _respond(self, body: dict[str, Any], history: list[dict[str, Any]]) -> _Answer:
        """The echo model's answer to the conversation, as a Responses `response` and its items."""
        chat = _chat_request(body, history)
        completion = await EchoProvider().complete(chat, body["model"])
        choice = completion["choices"][0]
        message = choice["message"]
        model = body["model"]
        reasoning = body.get("reasoning") or {}
        output: list[dict[str, Any]] = []
        reasoning_tokens = 0
        if REASONING_MODEL.match(model):
            reasoning_tokens = 8
            item: dict[str, Any] = {"id": _id("rs"), "type": "reasoning", "summary": []}
            if reasoning.get("summary") or reasoning.get("generate_summary"):
                item["summary"] = [{"type": "summary_text", "text": "**Echoing**\n\nRepeating the user."}]
            if "reasoning.encrypted_content" in (body.get("include") or ()):
                item["encrypted_content"] = self.encrypt(item["id"])
            output.append(item)
        if message.get("content") is not None:
            output.append(
                {
                    "id": _id("msg"),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": message["content"], "annotations": [], "logprobs": []}
                    ],
                }
            )
        for call in message.get("tool_calls") or ():
            output.append(
                {
                    "id": _id("fc"),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                }
            )
        usage = completion["usage"]
        text_format = (body.get("text") or {}).get("format") or {"type": "text"}
        incomplete = choice["finish_reason"] == "length"
        response = {
            "id": _id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "background": False,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": model,
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": text_format, "verbosity": (body.get("text") or {}).get("verbosity", "medium")},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        final_usage = {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": usage["completion_tokens"] + reasoning_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": usage["total_tokens"] + reasoning_tokens,
        }
        return _Answer(response, output, final_usage, incomplete)

    def encrypt(self, item_id: str) -> str:
        """An `encrypted_content` this fake (and only this fake) verifies later."""
        payload = base64.urlsafe_b64encode(json.dumps({"id": item_id}).encode()).decode()
        return "gAAAAB" + payload + "." + self._mac(payload)

    def verify_encrypted(self, value: str) -> bool:
        payload, dot, mac = value.removeprefix("gAAAAB").rpartition(".")
        return value.startswith("gAAAAB") and bool(dot) and hmac.compare_digest(mac, self._mac(payload))

    def _mac(self, payload: str) -> str:
        return hmac.new(self.reasoning_key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    async def _response_events(self, answer: _Answer, fault: Fault | None) -> AsyncIterator[str]:
        sent = 0
        complete = False
        try:
            if self.burst and fault is None:
                yield "".join(_sse(event) for event in answer.events())
                complete = True
                return
            for event in answer.events():
                if fault is not None and fault.cut_after is not None and sent >= fault.cut_after:
                    raise RuntimeError("fake upstream cuts the connection")
                if fault is not None and fault.stall_after is not None and sent == fault.stall_after:
                    await asyncio.sleep(fault.stall)
                if fault is not None and fault.fail_after is not None and sent >= fault.fail_after:
                    yield _sse(answer.failure(event["sequence_number"], fault.fail_with, fault.fail_code))
                    complete = True
                    return
                yield _sse(event)
                sent += 1
                await asyncio.sleep(self.chunk_delay)
            complete = True
        finally:
            if not complete:
                self.abandoned += 1


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


# -- the Responses API: vocabulary, answers and errors -------------------------------------------------------

#: Top-level fields of OpenAI's `CreateResponse` (openai-openapi 2.3.0), and `client_metadata`, which the
#: document lacks but OpenAI takes (Codex sends it on every request); anything else is `unknown_parameter`.
RESPONSES_FIELDS = frozenset(
    {
        "client_metadata",
        "background", "context_management", "conversation", "include", "input", "instructions",
        "max_output_tokens", "max_tool_calls", "metadata", "model", "moderation", "parallel_tool_calls",
        "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream",
        "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p",
        "truncation", "user",
    }
)  # fmt: skip
INCLUDABLE = frozenset(
    {
        "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
        "message.input_image.image_url", "computer_call_output.output.image_url",
        "code_interpreter_call.outputs", "reasoning.encrypted_content", "message.output_text.logprobs",
    }
)  # fmt: skip
#: o-series, gpt-5 and later, codex models.
REASONING_MODEL = re.compile(r"^(o\d|gpt-(?:[5-9]|[1-9]\d)|codex)")
TOOL_TYPES = frozenset(
    {
        "function", "file_search", "computer", "computer_use_preview", "web_search", "web_search_2025_08_26",
        "mcp", "code_interpreter", "programmatic_tool_calling", "image_generation", "local_shell", "shell",
        "custom", "namespace", "tool_search", "web_search_preview", "web_search_preview_2025_03_11",
        "apply_patch",
    }
)  # fmt: skip
FUNCTION_TOOL_KEYS = frozenset(
    {
        "type",
        "name",
        "description",
        "parameters",
        "strict",
        "allowed_callers",
        "defer_loading",
        "output_schema",
    }
)
#: Input item types OpenAI knows; those without an entry in ITEM_KEYS are accepted and ignored.
ITEM_TYPES = frozenset(
    {
        "message", "function_call", "function_call_output", "reasoning", "compaction", "item_reference",
        "file_search_call", "computer_call", "computer_call_output", "web_search_call", "tool_search_call",
        "tool_search_output", "additional_tools", "image_generation_call", "code_interpreter_call",
        "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output", "apply_patch_call",
        "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response",
        "mcp_call", "custom_tool_call_output", "custom_tool_call", "compaction_trigger", "program",
        "program_output",
    }
)  # fmt: skip
ITEM_KEYS = {
    "message": frozenset({"type", "role", "content", "id", "status", "phase"}),
    "function_call": frozenset(
        {"type", "id", "call_id", "name", "arguments", "status", "namespace", "caller"}
    ),
    "function_call_output": frozenset(
        {"type", "id", "call_id", "output", "status", "name", "namespace", "caller"}
    ),
    "reasoning": frozenset({"type", "id", "summary", "content", "encrypted_content", "status"}),
    "compaction": frozenset({"type", "id", "encrypted_content", "created_by"}),
    "item_reference": frozenset({"type", "id"}),
}
ITEM_REQUIRED = {
    "message": ("role", "content"),
    "function_call": ("call_id", "name", "arguments"),
    "function_call_output": ("call_id", "output"),
    "reasoning": ("summary",),
    "compaction": ("encrypted_content",),
    "item_reference": ("id",),
}
INPUT_PARTS = frozenset({"input_text", "input_image", "input_file"})
ASSISTANT_PARTS = frozenset({"output_text", "refusal"})


class _Answer:
    """One response of the fake: the `response` object, its items, and the events that stream it."""

    def __init__(
        self, response: dict[str, Any], output: list[dict[str, Any]], usage: dict[str, Any], incomplete: bool
    ) -> None:
        self.response = response
        self.output = output
        self.usage = usage
        self.incomplete = incomplete

    def final(self) -> dict[str, Any]:
        status = "incomplete" if self.incomplete else "completed"
        return {
            **self.response,
            "status": status,
            "completed_at": None if self.incomplete else self.response["created_at"],
            "incomplete_details": {"reason": "max_output_tokens"} if self.incomplete else None,
            "output": self.output,
            "usage": self.usage,
        }

    def events(self) -> list[dict[str, Any]]:
        """The whole stream, `sequence_number`s from 0."""
        out: list[dict[str, Any]] = []

        def emit(kind: str, **fields: Any) -> None:
            out.append({"type": kind, "sequence_number": len(out), **fields})

        emit("response.created", response=self.response)
        emit("response.in_progress", response=self.response)
        for index, item in enumerate(self.output):
            where = {"item_id": item["id"], "output_index": index}
            if item["type"] == "message":
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                for position, part in enumerate(item["content"]):
                    empty = {**part, "text": ""}
                    emit("response.content_part.added", **where, content_index=position, part=empty)
                    for piece in re.findall(r"\S+\s*|\s+", part["text"]):
                        emit(
                            "response.output_text.delta",
                            **where,
                            content_index=position,
                            delta=piece,
                            logprobs=[],
                        )
                    emit(
                        "response.output_text.done",
                        **where,
                        content_index=position,
                        text=part["text"],
                        logprobs=[],
                    )
                    emit("response.content_part.done", **where, content_index=position, part=part)
            elif item["type"] == "function_call":
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                arguments = item["arguments"]
                half = len(arguments) // 2
                for piece in (arguments[:half], arguments[half:]):
                    emit("response.function_call_arguments.delta", **where, delta=piece)
                emit("response.function_call_arguments.done", **where, name=item["name"], arguments=arguments)
            else:  # reasoning: its summary, and the encrypted content only once the item is done
                added = {key: value for key, value in item.items() if key != "encrypted_content"}
                emit("response.output_item.added", output_index=index, item={**added, "summary": []})
                for position, part in enumerate(item["summary"]):
                    at = {**where, "summary_index": position}
                    emit("response.reasoning_summary_part.added", **at, part={**part, "text": ""})
                    emit("response.reasoning_summary_text.delta", **at, delta=part["text"])
                    emit("response.reasoning_summary_text.done", **at, text=part["text"])
                    emit("response.reasoning_summary_part.done", **at, part=part)
            emit("response.output_item.done", output_index=index, item=item)
        final = self.final()
        emit("response.incomplete" if self.incomplete else "response.completed", response=final)
        return out

    def failure(self, sequence: int, kind: str, code: str) -> dict[str, Any]:
        """The event that ends a stream failing at `sequence`."""
        message = "The server had an error while processing your request. Sorry about that!"
        if kind == "error":
            return {
                "type": "error",
                "sequence_number": sequence,
                "code": code,
                "message": message,
                "param": None,
            }
        failed = {**self.response, "status": "failed", "error": {"code": code, "message": message}}
        return {"type": "response.failed", "sequence_number": sequence, "response": failed}


def _chat_request(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The echo model's view of a Responses request: a chat-completions request."""
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    for item in history:
        kind = _item_type(item)
        if kind == "message":
            messages.append({"role": item["role"], "content": _chat_content(item["content"])})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else _chat_content(output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages, "seed": None}
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description") or "",
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for tool in body.get("tools") or ()
        if tool.get("type") == "function"
    ]
    if tools:
        chat["tools"] = tools
        choice = body.get("tool_choice", "auto")
        if isinstance(choice, dict):
            choice = (
                {"type": "function", "function": {"name": choice["name"]}}
                if choice.get("type") == "function"
                else "auto"
            )
        chat["tool_choice"] = choice
    if body.get("parallel_tool_calls") is False:
        chat["parallel_tool_calls"] = False
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt["name"], "schema": fmt["schema"], "strict": fmt.get("strict")},
        }
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    return chat


def _chat_content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": part.get("image_url") or ""}})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part["refusal"]})
        else:
            parts.append({"type": kind})
    return parts


def _item_type(item: dict[str, Any]) -> str | None:
    kind = item.get("type")
    return "message" if kind is None and "role" in item else kind


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _sse(event: dict[str, Any]) -> str:
    """A Responses event as OpenAI writes it: compact JSON, and on delta events an `obfuscation` pad last
    (its length varies, as the real pad's does)."""
    if event["type"].endswith(".delta"):
        event = {**event, "obfuscation": ("x7-Q_k" * 3)[: event["sequence_number"] % 9]}
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


def _unknown(param: str) -> JSONResponse:
    return _openai_error(400, f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def _missing(param: str) -> JSONResponse:
    return _openai_error(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _invalid_value(param: str, value: Any) -> JSONResponse:
    return _openai_error(400, f"Invalid value: {json.dumps(value)}.", param, "invalid_value")


def _invalid_type(param: str, expected: str, value: Any) -> JSONResponse:
    return _openai_error(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {type(value).__name__} instead.",
        param,
        "invalid_type",
    )


def _item_not_found(item_id: Any, store: bool) -> JSONResponse:
    hint = (
        " Items are not persisted when `store` is set to false. Try again with `store` set to true, "
        "or remove this item from your input."
        if not store
        else ""
    )
    return _openai_error(404, f"Item with id '{item_id}' not found.{hint}", "input")


class _RequestIds:
    """Every answer carries an `x-request-id` (`req_upstream` and a number), as the real API's do; Azure's
    under the name its spec documents, `apim-request-id`."""

    def __init__(self, app: Any, flavour: str = "openai") -> None:
        self.app = app
        self.count = 0
        self.header = b"apim-request-id" if flavour == "azure" else b"x-request-id"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.count += 1
        request_id = f"req_upstream{self.count:06d}".encode()

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (self.header, request_id)]}
            await send(message)

        await self.app(scope, receive, stamped)


#: OpenAI's limit on a client's own `X-Client-Request-Id`: ASCII, at most this many characters, else a 400.
CLIENT_REQUEST_ID_LIMIT = 512


class _ClientRequestIds:
    """OpenAI takes a request id of the client's own in `X-Client-Request-Id` (recorded with the request's
    headers) and refuses one that is not ASCII or is longer than `CLIENT_REQUEST_ID_LIMIT` with a 400; the
    other flavours document no such header and ignore it."""

    def __init__(self, app: Any, flavour: str) -> None:
        self.app = app
        self.flavour = flavour

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.flavour == "openai":
            for name, value in scope["headers"]:
                if name == b"x-client-request-id" and (
                    not value.isascii() or len(value) > CLIENT_REQUEST_ID_LIMIT
                ):
                    message = "X-Client-Request-Id must be ASCII and at most 512 characters."
                    response = _openai_error(400, message, None)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
