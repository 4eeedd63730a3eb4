"""The offline `echo` provider: deterministic answers, no network, every feature of the wire contract.

It exists so that a gateway works out of the box with no keys, and so that clients (streaming, tools, JSON
modes, `parse` with a Pydantic model) can be tried against it. Its rules:

- The answer is the text of the last user message (images show as `[image]`).
- With tools and `tool_choice` other than "none", after a user turn it calls the tools whose names the
  user's text mentions; `"required"` or a named tool forces a call even when none is mentioned. Arguments
  are a minimal instance of each tool's parameter schema, except those the text gives in a call-like
  mention, `get_weather(city=Paris, days=2)`. After a tool turn it answers with the results.
- `json_object` answers `{"echo": <text>}`; `json_schema` answers a minimal instance of the schema, with the
  user's text in string fields.
- `stop` cuts the answer at the first stop sequence; `max_tokens` caps it at that many words
  (finish_reason "length"); `n` repeats the choice. Usage counts words.
- Embeddings (any model): each input hashed into a unit vector of `dimensions` values (256 by default),
  word by word, so texts that share words point in similar directions and a retrieval demo retrieves.
  Token arrays count each token as a word. Usage counts words (tokens).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from .. import wire
from ..translate import json_schema_of, max_tokens_of, stop_of
from .base import Provider
from .embeddings import embedding_list

__all__ = ["ECHO_DIMENSIONS", "EchoProvider", "echo_embedding", "example_for_schema"]

#: The size of the echo provider's embeddings when the request gives no `dimensions`.
ECHO_DIMENSIONS = 256

Request = Mapping[str, Any]
_WORD = re.compile(r"\S+\s*|\s+")


class EchoProvider(Provider):
    """Answers locally and deterministically; see the module docstring for what it says."""

    kind = "echo"

    def __init__(self, models: Sequence[str] = ("echo-1",)) -> None:
        self.models = list(models)

    async def list_models(self) -> list[str]:
        return list(self.models)

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        answer = _answer(request)
        choices = [
            wire.choice(wire.message(answer.text, tool_calls=answer.tool_calls or None), answer.finish, index)
            for index in range(request.get("n") or 1)
        ]
        return wire.completion(model, choices, answer.usage)

    async def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        answer = _answer(request)
        chunks = wire.ChunkBuilder(model)
        for index in range(request.get("n") or 1):
            yield chunks.role(index)
            if answer.text:
                for piece in _WORD.findall(answer.text):
                    yield chunks.chunk({"content": piece}, index=index)
            for position, call in enumerate(answer.tool_calls):
                function = call["function"]
                arguments = function["arguments"]
                half = len(arguments) // 2
                yield chunks.chunk(
                    {
                        "tool_calls": [
                            wire.tool_call_delta(
                                position, id=call["id"], name=function["name"], arguments=arguments[:half]
                            )
                        ]
                    },
                    index=index,
                )
                yield chunks.chunk(
                    {"tool_calls": [wire.tool_call_delta(position, arguments=arguments[half:])]}, index=index
                )
            yield chunks.finish(answer.finish, index)
        yield chunks.usage(answer.usage)

    def embeds(self, model: str) -> bool:
        return True

    async def embed(self, request: Request, model: str) -> dict[str, Any]:
        dimensions = request.get("dimensions") or ECHO_DIMENSIONS
        inputs = request["input"]
        vectors = [echo_embedding(item, dimensions) for item in inputs]
        words = sum(len(item.split()) if isinstance(item, str) else len(item) for item in inputs)
        return embedding_list(vectors, model, words)


def echo_embedding(item: str | Sequence[int], dimensions: int) -> list[float]:
    """A deterministic unit vector for a text (or token array): every word (token) adds ±1 to a dimension
    picked by its hash (the hashing trick), and the sum is normalised."""
    words = item.split() if isinstance(item, str) else [str(token) for token in item]
    vector = [0.0] * dimensions
    for word in words or [repr(item)]:  # whitespace only: the text itself is the one "word"
        digest = hashlib.blake2b(word.lower().encode(), digest_size=8).digest()
        vector[int.from_bytes(digest[:7], "little") % dimensions] += 1.0 if digest[7] & 1 else -1.0
    norm = sum(value * value for value in vector) ** 0.5
    if norm == 0.0:  # the words cancelled out exactly: still a unit vector
        vector[0], norm = 1.0, 1.0
    return [value / norm for value in vector]


class _Answer:
    __slots__ = ("finish", "text", "tool_calls", "usage")

    def __init__(
        self, text: str | None, tool_calls: list[dict[str, Any]], finish: str, usage: dict[str, Any]
    ):
        self.text = text
        self.tool_calls = tool_calls
        self.finish = finish
        self.usage = usage


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            pieces.append(part.get("text", ""))
        elif kind == "image_url":
            pieces.append("[image]")
        else:
            pieces.append(f"[{kind}]")
    return " ".join(piece for piece in pieces if piece)


def _words(text: str) -> int:
    return len(text.split())


def _answer(request: Request) -> _Answer:
    messages = request["messages"]
    last = messages[-1]
    user_text = next(
        (_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    prompt_tokens = sum(_words(_content_text(m.get("content"))) for m in messages) + len(messages)
    tool_calls: list[dict[str, Any]] = []
    text: str | None
    if last.get("role") in ("tool", "function"):
        results = [m for m in _trailing_tool_results(messages)]
        text = "Tool results: " + "; ".join(_content_text(m.get("content")) for m in results)
    else:
        tool_calls = _tool_calls(request, user_text)
        text = None if tool_calls else user_text
    json_format = json_schema_of(request)
    if text is not None and json_format is not None:
        kind, schema = json_format
        value = {"echo": text} if kind == "json_object" else example_for_schema(schema or {}, text)
        text = json.dumps(value)
    finish = "tool_calls" if tool_calls else "stop"
    if text is not None and json_format is None:
        text, finish = _limit(text, stop_of(request), max_tokens_of(request), finish)
    completion_tokens = _words(text or "") + sum(_words(call["function"]["arguments"]) for call in tool_calls)
    return _Answer(text, tool_calls, finish, wire.usage(prompt_tokens, completion_tokens))


def _trailing_tool_results(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    results: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") not in ("tool", "function"):
            break
        results.insert(0, message)
    return results


def _limit(text: str, stop: list[str] | None, max_tokens: int | None, finish: str) -> tuple[str, str]:
    for sequence in stop or ():
        position = text.find(sequence)
        if position >= 0:
            text = text[:position]
    if max_tokens is not None:
        pieces = _WORD.findall(text)
        if len([p for p in pieces if p.strip()]) > max_tokens:
            kept: list[str] = []
            count = 0
            for piece in pieces:
                if piece.strip():
                    if count == max_tokens:
                        break
                    count += 1
                kept.append(piece)
            return "".join(kept).rstrip(), "length"
    return text, finish


def _tool_calls(request: Request, user_text: str) -> list[dict[str, Any]]:
    tools = [t for t in request.get("tools") or () if t.get("type") == "function"]
    choice = request.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict) and choice.get("type") == "function":
        wanted = choice["function"]["name"]
        chosen = [t for t in tools if t["function"]["name"] == wanted]
    else:
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = {t.get("function", {}).get("name") for t in choice["allowed_tools"].get("tools", ())}
            tools = [t for t in tools if t["function"]["name"] in allowed]
            choice = choice["allowed_tools"].get("mode", "auto")
        lowered = user_text.lower()
        chosen = [t for t in tools if t["function"]["name"].lower() in lowered]
        if not chosen and choice == "required" and tools:
            chosen = tools[:1]
    if request.get("parallel_tool_calls") is False:
        chosen = chosen[:1]
    calls = []
    for position, tool in enumerate(chosen):
        function = tool["function"]
        parameters = function.get("parameters") or {}
        example = example_for_schema(parameters, user_text)
        if isinstance(example, dict):
            example.update(_given_arguments(function["name"], parameters, user_text))
        arguments = json.dumps(example)
        # The turn (how many messages precede the answer) is in the id: a conversation that calls the same
        # tool with the same arguments twice must get two ids, or its second result answers the first call.
        turn = len(request["messages"])
        digest = hashlib.sha256(f"{turn}:{position}:{function['name']}:{arguments}".encode()).hexdigest()[:24]
        calls.append(wire.tool_call(f"call_{digest}", function["name"], arguments))
    return calls


_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "email": "echo@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _given_arguments(name: str, parameters: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The `key=value` pairs of a `name(key=value, …)` mention in `text`, typed by the parameters' schema."""
    found = re.search(rf"\b{re.escape(name)}\(([^)]*)\)", text)
    if found is None:
        return {}
    properties = parameters.get("properties") or {}
    given: dict[str, Any] = {}
    for key, value in re.findall(r"(\w+)\s*=\s*([^,]+?)\s*(?:,|$)", found.group(1)):
        kind = (properties.get(key) or {}).get("type")
        if kind == "integer" and value.lstrip("-").isdigit():
            given[key] = int(value)
        elif kind == "boolean" and value in ("true", "false"):
            given[key] = value == "true"
        else:
            given[key] = value
    return given


def example_for_schema(
    schema: Mapping[str, Any], text: str = "", root: Mapping[str, Any] | None = None
) -> Any:
    """A small instance that validates against `schema` (the subset that tools and Pydantic produce)."""
    root = root if root is not None else schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {})
        return example_for_schema(target, text, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if options:
            preferred = [o for o in options if o.get("type") != "null"] or options
            return example_for_schema(preferred[0], text, root)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return example_for_schema(merged, text, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required")
        if isinstance(required, list):  # minimal: what the schema requires, when it says
            properties = {name: sub for name, sub in properties.items() if name in required}
        return {name: example_for_schema(sub, text, root) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") or {}
        return [example_for_schema(items, text, root) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        value = _FORMATS.get(schema.get("format", ""), text or "echo")
        min_length = schema.get("minLength", 0)
        max_length = schema.get("maxLength")
        value = value.ljust(min_length, "x")
        return value[:max_length] if max_length is not None else value
    if kind in ("integer", "number"):
        low = schema.get(
            "minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0)
        )
        high = schema.get("maximum")
        value = max(0, low) if high is None else min(max(0, low), high)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None
