"""Google Gemini (the Gemini Developer API): `generateContent` and `streamGenerateContent?alt=sse`.

The translation is pure functions plus one small stream translator; `GeminiProvider` only does I/O.

Decisions that a reader would otherwise have to reverse-engineer:

* Schemas. On `v1beta` (the default) tool parameters go out as `parametersJsonSchema` and structured output
  as `responseJsonSchema`: full JSON Schema, so `$defs`/`$ref` survive. They are still sanitised to the
  keywords the API documents (`const` becomes a one-value `enum`, a `$ref` with siblings is wrapped in a
  one-branch `anyOf`, anything else unsupported is dropped). With `api_version="v1"` schemas are converted
  to the OpenAPI-subset `Schema` instead (`parameters` / `responseSchema`): refs inlined, `Optional` as
  `nullable`, upper-case types.
* Tool-call ids. Gemini rarely gives function calls an id, and Gemini 3 wants each model turn's
  `thoughtSignature` back with its function call. Both travel inside the tool-call id the client echoes,
  so the gateway keeps no state: `call_<24 hex>` (stable, derived from `responseId`), or, for a call that
  carries a signature, `call_<24 hex | "i" + hex(upstream id)>_<signature as unpadded base64url>`; an
  upstream id with no signature is used verbatim. Any other id (one another provider issued, say) is sent
  back as the call's `id`. Turns whose signature is unknown get Google's documented placeholder on
  Gemini 3+ models, so histories built elsewhere still work.
* A prompt blocked by `promptFeedback.blockReason` is a 400 with code `content_filter` (what Azure OpenAI
  answers for a filtered prompt); a filtered answer is `finish_reason: "content_filter"`.
* `MALFORMED_FUNCTION_CALL` and the other "the model failed" finish reasons are a 502, never an empty
  success; `MISSING_THOUGHT_SIGNATURE` is a 400 because the request's history caused it.
* `n` maps to `candidateCount` and `logprobs`/`top_logprobs` to `responseLogprobs`/`logprobs`, also with
  tools: the upstream decides what the model supports. `parallel_tool_calls: false` has no equivalent and
  is dropped. `reasoning_effort` becomes `thinkingLevel` (Gemini 3+) or `thinkingBudget` (1.x/2.x) and
  asks for thought summaries, which come back as `reasoning_content`.
* Image URLs are never fetched: http(s) URLs go out as `fileData` (the API reads public URLs itself).
"""

from __future__ import annotations

import hashlib
import math
import mimetypes
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from ..errors import GatewayError, upstream_error
from ..model_ids import path_segment
from ..sse import SSEDecoder
from ..translate import (
    json_schema_of,
    max_tokens_of,
    parse_arguments,
    parse_data_url,
    stop_of,
    text_of,
    unsupported,
)
from ..wire import ChunkBuilder, choice, completion, dumps, loads, message, tool_call, tool_call_delta, usage
from .http import HTTPProvider
from .streams import bad_upstream_data, one_by_one, stream_ended_early, translate_reads

__all__ = [
    "DUMMY_THOUGHT_SIGNATURE",
    "GeminiProvider",
    "StreamDecoder",
    "StreamTranslator",
    "decode_tool_call_id",
    "encode_tool_call_id",
    "sanitize_json_schema",
    "to_completion",
    "to_gemini_request",
    "to_openapi_schema",
]

Request = Mapping[str, Any]
JSON = dict[str, Any]

KIND = "gemini"

#: Google's documented stand-in for a thought signature the client could not keep.
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

# Fields whose loss would change the answer: a 400. Pure hints with no Gemini equivalent (`user`, `metadata`,
# `store`, `service_tier`, `logit_bias`, `parallel_tool_calls`, ...) are never read, so they are dropped.
_REJECTED = {
    "audio": "audio output is not available through this provider",
    "prediction": "predicted outputs have no Gemini equivalent",
    "web_search_options": "Google Search grounding is not translated",
    "functions": "use `tools`",
    "function_call": "use `tool_choice`",
}

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

_THINKING_LEVELS = {
    "none": "MINIMAL",  # Gemini 3 cannot switch thinking off; this is the least it does
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "XHIGH",
    "max": "XHIGH",
}
_THINKING_BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}

_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def _is_legacy_model(model: str) -> bool:
    """Gemini 1.x/2.x: thinking is set by token budget, and thought signatures are not enforced."""
    found = re.match(r"(?:models/)?gemini-(\d+)", model)
    return found is not None and int(found.group(1)) < 3


# -- tool-call ids ----------------------------------------------------------------------------------------

_OUR_ID = re.compile(r"call_([0-9a-f]{24}|i(?:[0-9a-f]{2})+)(?:_([A-Za-z0-9_-]+))?")


def _to_base64url(signature: str) -> str:
    return signature.replace("+", "-").replace("/", "_").rstrip("=")


def _from_base64url(text: str) -> str:
    return text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)


def encode_tool_call_id(seed: str, upstream_id: str | None, signature: str | None) -> str:
    """The id a client sees for one function call; `decode_tool_call_id` undoes it (see the module doc).

    `seed` is 24 lowercase hex characters, unique to this call.
    """
    if not signature:
        return upstream_id or f"call_{seed}"
    head = "i" + upstream_id.encode().hex() if upstream_id else seed
    return f"call_{head}_{_to_base64url(signature)}"


def decode_tool_call_id(tool_call_id: str) -> tuple[str | None, str | None]:
    """(upstream function-call id, thought signature) carried by a tool-call id."""
    found = _OUR_ID.fullmatch(tool_call_id)
    if found is None:
        return tool_call_id, None
    head, signature = found.groups()
    upstream_id = bytes.fromhex(head[1:]).decode(errors="replace") if head.startswith("i") else None
    return upstream_id, _from_base64url(signature) if signature else None


def _call_seed(response_id: str | None, candidate: int, call: int) -> str:
    """Stable per call: the same response always yields the same ids (and so do golden tests)."""
    if not response_id:
        return secrets.token_hex(12)
    return hashlib.sha256(f"{response_id}/{candidate}/{call}".encode()).hexdigest()[:24]


# -- schemas ---------------------------------------------------------------------------------------------

# What `responseJsonSchema` documents (and what we also send as `parametersJsonSchema`).
_JSON_SCHEMA_KEYWORDS = frozenset({
    "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items",
    "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties",
    "additionalProperties", "required", "propertyOrdering",
})  # fmt: skip
# The OpenAPI-subset `Schema` message, minus the newest additions that older API versions lack.
_OPENAPI_KEYWORDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "anyOf", "propertyOrdering",
})  # fmt: skip
_OPENAPI_FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}


def sanitize_json_schema(schema: Any, param: str) -> Any:
    """A client's JSON Schema (e.g. Pydantic's) reduced to the keywords Gemini documents; `$defs` kept."""
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    kinds = schema.get("type")
    split = isinstance(kinds, list) and len(kinds) > 1  # ["string", "null"] becomes an anyOf
    for key, value in schema.items():
        if key == "enum" and split:
            continue  # moved into the typed branches
        if key == "allOf":
            if not isinstance(value, list) or len(value) != 1:
                raise unsupported(KIND, param, "'allOf' with more than one schema cannot be expressed")
            _set_any_of(out, [sanitize_json_schema(value[0], f"{param}.allOf[0]")], param)
        elif key not in _JSON_SCHEMA_KEYWORDS:
            continue
        elif key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {
                name: sanitize_json_schema(sub, f"{param}.{key}.{name}") for name, sub in value.items()
            }
        elif key == "anyOf" and isinstance(value, list):
            _set_any_of(out, [sanitize_json_schema(sub, f"{param}.anyOf") for sub in value], param)
        elif key in ("oneOf", "prefixItems") and isinstance(value, list):
            out[key] = [sanitize_json_schema(sub, f"{param}.{key}") for sub in value]
        elif key in ("items", "additionalProperties"):
            out[key] = sanitize_json_schema(value, f"{param}.{key}")
        elif key == "type" and split:
            _set_any_of(out, [_typed_branch(kind, schema.get("enum")) for kind in value], param)
        elif key == "type" and isinstance(value, list):
            out[key] = value[0] if value else "object"
        else:
            out[key] = value
    if "$ref" in out and any(not key.startswith("$") for key in out):
        # "If $ref is set on a sub-schema, no other properties, except those starting with $, may be set."
        _set_any_of(out, [{"$ref": out.pop("$ref")}], param)
    return out


def _typed_branch(kind: Any, enum: Any) -> JSON:
    """One branch of a split type list, with the enum values of that type (enums hold strings and numbers)."""
    branch: JSON = {"type": kind}
    checks = {"string": (str,), "integer": (int,), "number": (int, float)}
    if isinstance(enum, list) and kind in checks:
        values = [v for v in enum if isinstance(v, checks[kind]) and not isinstance(v, bool)]
        if values:
            branch["enum"] = values
    return branch


def _set_any_of(out: JSON, branches: list[Any], param: str) -> None:
    """`allOf: [x]`, a type list and a `$ref` with siblings all become `anyOf`; two of them cannot."""
    if "anyOf" in out:
        raise unsupported(KIND, param, "this combination of anyOf/allOf/$ref/type cannot be expressed")
    out["anyOf"] = branches


def to_openapi_schema(schema: Any, param: str) -> JSON:
    """A client's JSON Schema as Gemini's OpenAPI-subset `Schema`: refs inlined, nullability explicit."""
    if not isinstance(schema, dict):
        return {}
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _openapi(schema, defs, (), param)


def _openapi(schema: Any, defs: Mapping[str, Any], seen: tuple[str, ...], param: str) -> JSON:
    if not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        if name not in defs:
            raise GatewayError(f"schema reference {schema['$ref']!r} is not defined", param=param)
        if name in seen:
            raise unsupported(KIND, param, "recursive schemas need api_version 'v1beta'")
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        return _openapi({**defs[name], **siblings}, defs, (*seen, name), param)
    schema = dict(schema)
    all_of = schema.pop("allOf", None)
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1 or not isinstance(all_of[0], dict):
            raise unsupported(KIND, param, "'allOf' with more than one schema cannot be expressed")
        schema = {**_openapi(all_of[0], defs, seen, f"{param}.allOf[0]"), **schema}
    one_of = schema.pop("oneOf", None)
    if isinstance(one_of, list):
        schema["anyOf"] = [*schema.get("anyOf", ()), *one_of]
    nullable = False
    kind = schema.get("type")
    if isinstance(kind, list):
        nullable = "null" in kind
        kinds = [k for k in kind if k != "null"]
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            schema["anyOf"] = [*schema.get("anyOf", ()), *({"type": k} for k in kinds)]
            kind = None
    out: JSON = {}
    if isinstance(schema.get("anyOf"), list):
        branches = [b for b in schema["anyOf"] if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(branches) < len(schema["anyOf"])
        converted = [_openapi(b, defs, seen, f"{param}.anyOf") for b in branches]
        if len(converted) == 1:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
    if isinstance(kind, str):
        out["type"] = kind.upper()
    if "const" in schema and "enum" not in schema:
        schema["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key not in _OPENAPI_KEYWORDS or key in ("type", "anyOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                name: _openapi(sub, defs, seen, f"{param}.properties.{name}") for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _openapi(value, defs, seen, f"{param}.items")
        elif key == "enum" and isinstance(value, list):
            nullable = nullable or None in value
            values = [item for item in value if item is not None]
            if values and all(isinstance(item, str) for item in values):
                out[key] = values  # `Schema.enum` holds strings only
        elif key == "format":
            if value in _OPENAPI_FORMATS.get(out.get("type", ""), ()):
                out[key] = value
        else:
            out[key] = value
    if nullable:
        out["nullable"] = True
    return out


# -- request ---------------------------------------------------------------------------------------------


class _Call(NamedTuple):
    name: str
    upstream_id: str | None
    position: int  # among the calls of its assistant turn: function responses go back in this order


def to_gemini_request(request: Request, model: str, *, json_schema: bool = True) -> JSON:
    """The `GenerateContentRequest` body for an OpenAI chat request. `json_schema=False` targets API `v1`."""
    for field, detail in _REJECTED.items():
        if request.get(field) is not None:
            raise unsupported(KIND, field, detail)
    modalities = request.get("modalities")
    if modalities and any(m != "text" for m in modalities):
        raise unsupported(KIND, "modalities", "only text output is available")
    system, contents = _contents(
        request.get("messages") or [], enforce_signatures=not _is_legacy_model(model)
    )
    if not contents:
        raise GatewayError("Gemini needs at least one user or assistant message", param="messages")
    body: JSON = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = request.get("tools")
    if tools:
        declarations = [_declaration(tool, i, json_schema) for i, tool in enumerate(tools)]
        body["tools"] = [{"functionDeclarations": declarations}]
        calling = _function_calling_config(request.get("tool_choice"))
        if calling is not None:
            body["toolConfig"] = {"functionCallingConfig": calling}
    generation = _generation_config(request, model, json_schema)
    if generation:
        body["generationConfig"] = generation
    return body


def _contents(
    messages: Sequence[Mapping[str, Any]], *, enforce_signatures: bool
) -> tuple[list[JSON], list[JSON]]:
    """(systemInstruction parts, contents): consecutive turns of one role merged, tool results grouped."""
    system: list[JSON] = []
    contents: list[JSON] = []
    calls: dict[str, _Call] = {}
    results: list[tuple[int, JSON]] = []  # a run of tool messages, sent back in call order

    def flush_results() -> None:
        if results:
            _append(contents, "user", [part for _, part in sorted(results, key=lambda item: item[0])])
            results.clear()

    for i, msg in enumerate(messages):
        role, param = msg.get("role"), f"messages[{i}]"
        if role == "tool":
            results.append(_function_response(msg, param, calls))
            continue
        flush_results()
        if role in ("system", "developer"):
            text = text_of(msg.get("content"), f"{param}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            _append(contents, "user", _user_parts(msg.get("content"), param))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(msg, param, calls, enforce_signatures))
        else:
            raise GatewayError(
                f"messages with role '{role}' are not supported by the gemini provider",
                param=f"{param}.role",
                code="invalid_value",
            )
    flush_results()
    return system, contents


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    if not parts:
        return  # Gemini rejects empty turns
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any, param: str) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[JSON] = []
    for j, part in enumerate(content):
        where, kind = f"{param}.content[{j}]", part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(
                _image_part(str((part.get("image_url") or {}).get("url", "")), f"{where}.image_url.url")
            )
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime_type = _AUDIO_TYPES.get(audio.get("format", ""))
            if mime_type is None:
                raise unsupported(KIND, f"{where}.input_audio.format", "only wav and mp3")
            parts.append({"inlineData": {"mimeType": mime_type, "data": audio.get("data", "")}})
        elif kind == "file":
            parts.append(_file_part(part.get("file") or {}, f"{where}.file"))
        else:
            raise GatewayError(
                f"content part type '{kind}' is not supported by the gemini provider",
                param=f"{where}.type",
                code="invalid_value",
            )
    return parts


def _image_part(url: str, param: str) -> JSON:
    data = parse_data_url(url, param)
    if data is not None:
        return {"inlineData": {"mimeType": data.media_type, "data": data.data}}
    if urlsplit(url).scheme not in ("http", "https"):
        raise GatewayError(
            "image URLs must be http(s) or base64 data URLs", param=param, code="invalid_value"
        )
    # Never fetched here: Gemini reads public URLs itself. The media type is a hint from the file name.
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    mime_type = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return {"fileData": {"mimeType": mime_type, "fileUri": url}}


def _file_part(file: Mapping[str, Any], param: str) -> JSON:
    file_data = file.get("file_data")
    if not file_data:
        raise unsupported(KIND, f"{param}.file_id", "send the file inline as file_data")
    data = parse_data_url(str(file_data), f"{param}.file_data")
    if data is not None:
        return {"inlineData": {"mimeType": data.media_type, "data": data.data}}
    mime_type = mimetypes.guess_type(str(file.get("filename") or ""))[0]
    if mime_type is None:
        raise GatewayError(
            "file_data needs a data URL or a filename with a known extension", param=f"{param}.file_data"
        )
    return {"inlineData": {"mimeType": mime_type, "data": str(file_data)}}


def _assistant_parts(
    msg: Mapping[str, Any], param: str, calls: dict[str, _Call], enforce_signatures: bool
) -> list[JSON]:
    parts: list[JSON] = []
    text = text_of(msg.get("content"), f"{param}.content")
    if text:
        parts.append({"text": text})
    first_call: JSON | None = None
    signed = False
    for j, call in enumerate(msg.get("tool_calls") or ()):
        where = f"{param}.tool_calls[{j}]"
        if call.get("type", "function") != "function":
            raise unsupported(KIND, f"{where}.type", "only function tool calls")
        function = call.get("function") or {}
        upstream_id, signature = decode_tool_call_id(str(call.get("id", "")))
        function_call: JSON = {
            "name": function.get("name", ""),
            "args": parse_arguments(function.get("arguments"), f"{where}.function.arguments"),
        }
        if upstream_id:
            function_call["id"] = upstream_id
        part: JSON = {"functionCall": function_call}
        if signature:
            part["thoughtSignature"] = signature
            signed = True
        first_call = first_call or part
        parts.append(part)
        calls[str(call.get("id", ""))] = _Call(function_call["name"], upstream_id, j)
    if first_call is not None and not signed and enforce_signatures:
        first_call["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE
    return parts


def _function_response(msg: Mapping[str, Any], param: str, calls: Mapping[str, _Call]) -> tuple[int, JSON]:
    call = calls.get(str(msg.get("tool_call_id", "")))
    if call is None:
        raise GatewayError(
            "this tool message answers a tool_call_id that no earlier assistant message made",
            param=f"{param}.tool_call_id",
        )
    output = text_of(msg.get("content"), f"{param}.content")
    try:
        value = loads(output)
    except ValueError:
        value = None
    # `response` must be an object; Google's convention for anything else is {"output": ...}.
    response = value if isinstance(value, dict) else {"output": output}
    function_response: JSON = {"name": call.name, "response": response}
    if call.upstream_id:
        function_response["id"] = call.upstream_id
    return call.position, {"functionResponse": function_response}


def _declaration(tool: Mapping[str, Any], i: int, json_schema: bool) -> JSON:
    if tool.get("type") != "function":
        raise unsupported(KIND, f"tools[{i}].type", "only function tools")
    function = tool.get("function") or {}
    declaration: JSON = {"name": function.get("name", "")}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    param = f"tools[{i}].function.parameters"
    if parameters is not None and json_schema:
        declaration["parametersJsonSchema"] = sanitize_json_schema(parameters, param)
    elif parameters is not None:
        converted = to_openapi_schema(parameters, param)
        if converted.get("properties"):  # an OBJECT with no properties is rejected by `parameters`
            declaration["parameters"] = converted
    return declaration


def _function_calling_config(tool_choice: Any) -> JSON | None:
    if tool_choice is None:
        return None
    if isinstance(tool_choice, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(tool_choice)
        if mode is not None:
            return {"mode": mode}
    elif tool_choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [tool_choice["function"]["name"]]}
    elif tool_choice.get("type") == "allowed_tools":
        spec = tool_choice.get("allowed_tools") or {}
        names = [t["function"]["name"] for t in spec.get("tools", ()) if t.get("type") == "function"]
        return {
            "mode": "ANY" if spec.get("mode") == "required" else "VALIDATED",
            "allowedFunctionNames": names,
        }
    raise unsupported(KIND, "tool_choice", "only auto, none, required, a function or allowed_tools")


def _generation_config(request: Request, model: str, json_schema: bool) -> JSON:
    config: JSON = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if request.get(source) is not None:
            config[target] = request[source]
    if request.get("n") not in (None, 1):
        config["candidateCount"] = request["n"]
    max_tokens = max_tokens_of(request)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = stop_of(request)
    if stop:
        config["stopSequences"] = stop
    if request.get("logprobs"):
        config["responseLogprobs"] = True
        if request.get("top_logprobs"):
            config["logprobs"] = request["top_logprobs"]
    output = json_schema_of(request)
    if output is not None:
        config["responseMimeType"] = "application/json"
        kind, schema = output
        if kind == "json_schema" and json_schema:
            config["responseJsonSchema"] = sanitize_json_schema(schema, "response_format.json_schema.schema")
        elif kind == "json_schema":
            config["responseSchema"] = to_openapi_schema(schema, "response_format.json_schema.schema")
    effort = request.get("reasoning_effort")
    if effort is not None:
        thinking: JSON = {"includeThoughts": effort != "none"}
        if _is_legacy_model(model):
            thinking["thinkingBudget"] = _THINKING_BUDGETS.get(effort, -1)
        else:
            thinking["thinkingLevel"] = _THINKING_LEVELS.get(effort, "MEDIUM")
        config["thinkingConfig"] = thinking
    return config


# -- response --------------------------------------------------------------------------------------------


def _check_prompt_feedback(response: Mapping[str, Any]) -> None:
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


def _finish_reason(reason: str | None, has_tool_calls: bool, finish_message: Any = None) -> str:
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


def _usage(metadata: Any) -> dict[str, Any] | None:
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


def _logprobs(result: Any) -> dict[str, Any] | None:
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
class _Parts:
    """What one candidate's parts (or one event's worth of them) say, in OpenAI terms."""

    text: list[str]
    reasoning: list[str]
    calls: list[tuple[str, str, str]]  # (id, name, arguments JSON)


def _read_parts(candidate: Mapping[str, Any], response_id: str | None, index: int, first_call: int) -> _Parts:
    parts = _Parts([], [], [])
    for part in (candidate.get("content") or {}).get("parts") or ():
        call = part.get("functionCall")
        if isinstance(call, dict):
            seed = _call_seed(response_id, index, first_call + len(parts.calls))
            call_id = encode_tool_call_id(seed, call.get("id"), part.get("thoughtSignature"))
            parts.calls.append((call_id, str(call.get("name", "")), dumps(call.get("args") or {}).decode()))
        elif isinstance(part.get("text"), str) and part["text"]:
            (parts.reasoning if part.get("thought") else parts.text).append(part["text"])
    return parts


def to_completion(response: Mapping[str, Any], model: str, *, created: int | None = None) -> dict[str, Any]:
    """A `GenerateContentResponse` as a `chat.completion`, one choice per candidate."""
    _check_prompt_feedback(response)
    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise bad_upstream_data(KIND, "a response without candidates")
    response_id = response.get("responseId")
    choices = []
    for position, candidate in enumerate(candidates):
        index = candidate.get("index", position)
        parts = _read_parts(candidate, response_id, index, 0)
        finish = _finish_reason(
            candidate.get("finishReason"), bool(parts.calls), candidate.get("finishMessage")
        )
        reply = message(
            "".join(parts.text) if parts.text else (None if parts.calls else ""),
            tool_calls=[tool_call(*call) for call in parts.calls] or None,
            reasoning_content="".join(parts.reasoning) or None,
        )
        choices.append(choice(reply, finish, index, _logprobs(candidate.get("logprobsResult"))))
    return completion(
        model,
        choices,
        _usage(response.get("usageMetadata")),
        id=f"chatcmpl-{response_id}" if response_id else None,
        created=created,
    )


@dataclass
class _ChoiceState:
    tool_calls: int = 0
    finish_reason: str | None = None


class StreamTranslator:
    """Turns the `GenerateContentResponse` events of one stream into `chat.completion.chunk` dicts.

    Gemini sends text as deltas and every function call whole, so each call is one tool-call fragment.
    Finish chunks wait for the end of the stream, because usage (and occasionally a trailing part) may
    arrive after a candidate's `finishReason`.
    """

    def __init__(self, model: str, *, created: int | None = None) -> None:
        self.model = model
        self.created = created
        self._builder: ChunkBuilder | None = None
        self._response_id: str | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: dict[str, Any] | None = None

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Chunks for one upstream event."""
        _check_prompt_feedback(event)
        if self._builder is None:
            self._response_id = event.get("responseId")
            chunk_id = f"chatcmpl-{self._response_id}" if self._response_id else None
            self._builder = ChunkBuilder(self.model, id=chunk_id, created=self.created)
        builder = self._builder
        if event.get("usageMetadata"):
            self._usage = _usage(event["usageMetadata"])  # cumulative: the last one wins
        chunks: list[dict[str, Any]] = []
        for position, candidate in enumerate(event.get("candidates") or ()):
            index = candidate.get("index", position)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState()
                chunks.append(builder.role(index))
            parts = _read_parts(candidate, self._response_id, index, state.tool_calls)
            if parts.reasoning:
                chunks.append(builder.chunk({"reasoning_content": "".join(parts.reasoning)}, index=index))
            if parts.text:
                chunks.append(builder.chunk({"content": "".join(parts.text)}, index=index))
                chunks[-1]["choices"][0]["logprobs"] = _logprobs(candidate.get("logprobsResult"))
            for call_id, name, arguments in parts.calls:
                delta = tool_call_delta(state.tool_calls, id=call_id, name=name, arguments=arguments)
                chunks.append(builder.chunk({"tool_calls": [delta]}, index=index))
                state.tool_calls += 1
            if candidate.get("finishReason"):
                state.finish_reason = candidate["finishReason"]
                # Raises now for a failed answer: better mid-stream than a truncated "success".
                _finish_reason(state.finish_reason, state.tool_calls > 0, candidate.get("finishMessage"))
        return chunks

    def end(self) -> list[dict[str, Any]]:
        """The finish chunk of every choice and the usage chunk; the stream must have been complete."""
        if self._builder is None or not self._choices:
            raise stream_ended_early(KIND)
        if any(state.finish_reason is None for state in self._choices.values()):
            raise stream_ended_early(KIND)
        chunks = [
            self._builder.finish(_finish_reason(state.finish_reason, state.tool_calls > 0), index)
            for index, state in sorted(self._choices.items())
        ]
        if self._usage is not None:
            chunks.append(self._builder.usage(self._usage))
        return chunks


# -- stream framing --------------------------------------------------------------------------------------

_MAX_RAW_ERROR = 64 * 1024


class StreamDecoder:
    """The JSON payloads of a `streamGenerateContent?alt=sse` body.

    Events are `data:` lines (decoded by the shared SSE decoder), but when Google fails after the 200 it
    writes a bare, possibly multi-line JSON error object without `data:`. The SSE decoder hands over those
    lines (they are no SSE field); they are collected here until they parse, so the error is reported
    instead of silently dropped.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder(on_other_line=self._raw_line)
        self._raw: list[str] = []
        self._bare: list[Any] = []  # bare JSON objects completed by the last read

    def feed(self, chunk: bytes) -> list[Any]:
        payloads = [self._parse(event.data) for event in self._sse.feed(chunk)]
        if self._bare:
            payloads += self._bare
            self._bare = []
        return payloads

    def end(self) -> list[Any]:
        payloads = [self._parse(event.data) for event in self._sse.flush()] + self._bare
        if self._raw:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        return payloads

    def _raw_line(self, line: str) -> None:
        self._raw.append(line)
        text = "\n".join(self._raw)
        if len(text) > _MAX_RAW_ERROR:
            raise bad_upstream_data(KIND, "text outside of server-sent events")
        try:
            payload = loads(text)
        except ValueError:
            return  # not complete yet
        self._raw = []
        self._bare.append(payload)

    @staticmethod
    def _parse(data: str) -> Any:
        try:
            return loads(data)
        except ValueError:
            raise bad_upstream_data(KIND, "an event that is not JSON") from None


def _retry_delay(body: Any) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` detail ("17s", "0.5s"), for a `retry-after` header."""
    error = body.get("error") if isinstance(body, dict) else None
    for detail in (error.get("details") or ()) if isinstance(error, dict) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(math.ceil(float(delay[:-1])))
            except ValueError:
                return None
    return None


def _key_rejected(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details or ())


# -- the provider ----------------------------------------------------------------------------------------


class GeminiProvider(HTTPProvider):
    """Google's Gemini Developer API, spoken natively.

    `api_version` picks the URL segment; on "v1" schemas are converted to the OpenAPI subset because the
    JSON Schema fields (`parametersJsonSchema`, `responseJsonSchema`) are a v1beta feature.
    """

    kind = KIND
    api_key_env = "GEMINI_API_KEY"
    api_key_env_aliases = ("GOOGLE_API_KEY",)  # the other name Google's SDKs read
    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        api_version: str = "v1beta",
        models: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, models=models, headers=headers, client=client)
        self.api_version = api_version.strip("/")

    @property
    def json_schema(self) -> bool:
        return self.api_version != "v1"

    def auth_headers(self) -> dict[str, str]:
        # A header, never `?key=`: query strings end up in access logs.
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    def url(self, model: str, method: str) -> str:
        """`{version}/models/{id}:{method}`; a `models/` or `tunedModels/` prefix names the collection, and
        the rest of the id is one path segment whatever it contains (never a way into another API)."""
        collection, slash, name = model.partition("/")
        if not (slash and collection in ("models", "tunedModels")):
            collection, name = "models", model
        return f"{self.base_url}/{self.api_version}/{collection}/{path_segment(name)}:{method}"

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        """Google's `{"error": {"code", "message", "status"}}`; its status names a 400's cause."""
        if isinstance(body, list) and body:
            body = body[0]  # a stream answered without `alt=sse` wraps everything in an array
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return super().error_details(status, body, text)
        message = str(error.get("message") or text[:500] or f"HTTP {status}")
        google_status = error.get("status")
        code = google_status.lower() if status == 400 and isinstance(google_status, str) else None
        return message, code

    def error_from_response(self, response: httpx.Response, content: bytes) -> GatewayError:
        try:
            body = loads(content) if content else None
        except ValueError:
            body = None
        if _key_rejected(body):
            # Google answers a bad key with 400 INVALID_ARGUMENT, but it is the gateway's credential that
            # failed, not the client's request: report it as the authentication failure it is.
            message, _ = self.error_details(response.status_code, body, "")
            return upstream_error(self.kind, 401, message, secrets=self.secrets())
        error = super().error_from_response(response, content)
        delay = _retry_delay(body)
        if error.status in (429, 503) and "retry-after" not in error.headers and delay is not None:
            error.headers["retry-after"] = delay
        return error

    def _payload_error(self, payload: Mapping[str, Any]) -> GatewayError:
        """An error object that arrived inside a 200 (mid-stream)."""
        error = payload.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        message, error_code = self.error_details(status, payload, "")
        return upstream_error(
            self.kind,
            status,
            message,
            code=error_code,
            retry_after=_retry_delay(payload),
            secrets=self.secrets(),
        )

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        body = to_gemini_request(request, model, json_schema=self.json_schema)
        response = await self.post_json(self.url(model, "generateContent"), body)
        if not isinstance(response, dict):
            raise bad_upstream_data(self.kind, "the response is not a JSON object")
        if "error" in response:
            raise self._payload_error(response)
        return to_completion(response, model)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    async def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        body = to_gemini_request(request, model, json_schema=self.json_schema)
        translator = StreamTranslator(model)
        async with self.open_stream(self.url(model, "streamGenerateContent") + "?alt=sse", body) as response:
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                raise self.error_from_response(response, await response.aread())
            decoder = StreamDecoder()
            reads = (decoder.feed(data) async for data in self.iter_bytes(response))
            async for batch in translate_reads(reads, _Payloads(translator, decoder, self._payload_error)):
                yield batch

    async def list_models(self) -> list[str]:
        """The configured models, else every model the key can call `generateContent` on."""
        if self.models is not None:
            return list(self.models)
        listing = await self.get_json(f"{self.base_url}/{self.api_version}/models?pageSize=1000")
        found = listing.get("models") if isinstance(listing, dict) else None
        return [
            str(item["name"]).removeprefix("models/")
            for item in found or ()
            if isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and "generateContent" in (item.get("supportedGenerationMethods") or ())
        ]


class _Payloads:
    """A stream's JSON payloads → chunks: an error payload (Google fails after the 200 this way) is raised,
    and at the end the decoder's last payloads are translated before the translator's own check."""

    done = False  # Gemini says nothing before the body ends

    def __init__(
        self,
        translator: StreamTranslator,
        decoder: StreamDecoder,
        payload_error: Callable[[Mapping[str, Any]], GatewayError],
    ) -> None:
        self.translator = translator
        self.decoder = decoder
        self.payload_error = payload_error

    def feed(self, item: Any) -> list[dict[str, Any]]:
        if not isinstance(item, dict):
            raise bad_upstream_data(KIND, "an event that is not a JSON object")
        if "error" in item:
            raise self.payload_error(item)
        return self.translator.feed(item)

    def end(self) -> list[dict[str, Any]]:
        return [
            chunk for payload in self.decoder.end() for chunk in self.feed(payload)
        ] + self.translator.end()
