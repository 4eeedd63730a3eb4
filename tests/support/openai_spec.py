"""Validators built from OpenAI's official OpenAPI document (shared/specs/openai), to check what the gateway
emits and what fake upstreams receive against the real contract, not against our own schema.

What the gateway *emits* is held to a little more than the document says (`EMITTED_STRICTER`): rules the
document leaves open but OpenAI always keeps and the SDKs rely on. `ValidatingTransport` applies the check
to every chat-completions answer an SDK under test receives, so no answer goes unchecked however little of
it the test itself asserts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "specs" / "openai" / "chat_completions.openapi.json"


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI's `nullable: true` is not JSON Schema: turn it into a union with null."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


#: Added to the official schemas when checking what the gateway emits (never what fakes accept). The
#: document lets these through; OpenAI never sends them, and clients break on them (issue 12: Mistral's
#: tool calls, passed on as they came, had no `type` and a stray `index`).
EMITTED_STRICTER: dict[str, dict[str, Any]] = {
    # `id`, `type`, `function` and nothing else: `index` belongs to stream fragments only.
    "ChatCompletionMessageToolCall": {"additionalProperties": False},
    # The fragment that opens a call (the one with its id) says what it is; openai-node's stream helper
    # throws "missing …tool_calls[0].type" otherwise.
    "ChatCompletionMessageToolCallChunk": {"dependentRequired": {"id": ["type"]}},
}


@functools.cache
def _document(emitted: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = _openapi_to_json_schema(json.loads(SPEC_PATH.read_text()))
    if emitted:
        schemas = document["components"]["schemas"]
        for name, extra in EMITTED_STRICTER.items():
            schemas[name] = {**schemas[name], **extra}
    return document


@functools.cache
def validator(component: str, *, emitted: bool = False) -> jsonschema.protocols.Validator:
    """The official schema of `component`; with `emitted`, plus `EMITTED_STRICTER`."""
    document = _document(emitted)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:openai", resource)
    schema = {"$ref": f"urn:openai#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_valid(component: str, instance: Any) -> None:
    """Fail with the first violation of the official schema, held to what OpenAI emits (EMITTED_STRICTER)."""
    errors = sorted(
        validator(component, emitted=True).iter_errors(instance), key=lambda e: list(e.absolute_path)
    )
    if errors:
        error = errors[0]
        path = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(
            f"not a valid {component} at /{path}: {error.message}\n{json.dumps(instance)[:2000]}"
        )


@functools.cache
def request_properties() -> frozenset[str]:
    """Every top-level field of CreateChatCompletionRequest, following `allOf` and `$ref`."""
    schemas = _document()["components"]["schemas"]

    def collect(node: dict[str, Any]) -> set[str]:
        if "$ref" in node:
            return collect(schemas[node["$ref"].rsplit("/", 1)[-1]])
        names = set(node.get("properties", {}))
        for part in node.get("allOf", ()):
            names |= collect(part)
        return names

    return frozenset(collect(schemas["CreateChatCompletionRequest"]))


class StreamedToolCalls:
    """Stream-level rule no per-chunk schema can state: the first fragment of each tool call (per choice
    and `index`) carries its `id`, `type` and `function.name`, as OpenAI's do and every SDK's accumulator
    needs."""

    def __init__(self) -> None:
        self.opened: set[tuple[int, int]] = set()

    def check(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            for fragment in (choice.get("delta") or {}).get("tool_calls") or ():
                key = (choice["index"], fragment["index"])
                if key in self.opened:
                    continue
                self.opened.add(key)
                missing = [
                    name
                    for name, value in [
                        ("id", fragment.get("id")),
                        ("type", fragment.get("type")),
                        ("function.name", (fragment.get("function") or {}).get("name")),
                    ]
                    if not value
                ]
                if missing:
                    raise AssertionError(
                        f"the first fragment of tool call {key} lacks {', '.join(missing)}: "
                        f"{json.dumps(chunk)[:2000]}"
                    )


class ValidatingTransport(httpx.BaseTransport):
    """An httpx transport that checks every chat-completions answer it carries, as the client reads it:
    JSON bodies whole (`CreateChatCompletionResponse`, or `ErrorResponse` for an error status), streams
    event by event (`CreateChatCompletionStreamResponse`, an `ErrorResponse` event, `[DONE]`), all with
    `assert_valid`. A violation raises AssertionError inside the client's read; `checked` counts answers
    and events checked.

    `openai.OpenAI(..., http_client=httpx.Client(transport=ValidatingTransport()))`
    """

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.checked = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return response
        encoding = response.headers.get("content-encoding", "identity")
        if encoding != "identity":
            raise AssertionError(f"ValidatingTransport cannot read a {encoding!r}-encoded answer")
        assert isinstance(response.stream, httpx.SyncByteStream)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            check = self._sse_checker()
        else:
            check = self._json_checker(response.status_code)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CheckedStream(response.stream, check),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()

    def _json_checker(self, status: int) -> Callable[[bytes | None], None]:
        body = bytearray()

        def check(part: bytes | None) -> None:
            if part is not None:
                body.extend(part)
                return
            component = "CreateChatCompletionResponse" if status < 400 else "ErrorResponse"
            assert_valid(component, json.loads(body))
            self.checked += 1

        return check

    def _sse_checker(self) -> Callable[[bytes | None], None]:
        buffer = bytearray()
        tool_calls = StreamedToolCalls()
        state = {"done": False}

        def check(part: bytes | None) -> None:
            if part is None:
                if buffer.strip():
                    raise AssertionError(f"the stream ended inside an event: {bytes(buffer)[:2000]!r}")
                return
            buffer.extend(part)
            while (end := buffer.find(b"\n\n")) >= 0:
                event = bytes(buffer[:end]).decode()
                del buffer[: end + 2]
                data = "\n".join(
                    line.removeprefix("data:").removeprefix(" ")
                    for line in event.split("\n")
                    if line.startswith("data:")
                )
                if not data:
                    continue  # a comment or keep-alive
                if state["done"]:
                    raise AssertionError(f"an event after [DONE]: {data[:2000]}")
                if data == "[DONE]":
                    state["done"] = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk and "choices" not in chunk:
                    assert_valid("ErrorResponse", chunk)
                else:
                    assert_valid("CreateChatCompletionStreamResponse", chunk)
                    tool_calls.check(chunk)
                self.checked += 1

        return check


class _CheckedStream(httpx.SyncByteStream):
    """The upstream bytes, each part checked before the client sees it; `check(None)` at the end."""

    def __init__(self, inner: httpx.SyncByteStream, check: Callable[[bytes | None], None]) -> None:
        self.inner = inner
        self.check = check

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.check(part)
            yield part
        self.check(None)

    def close(self) -> None:
        self.inner.close()
