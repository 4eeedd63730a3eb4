"""A fake Gemini Developer API on loopback: `generateContent`, `streamGenerateContent?alt=sse`, `models`.

It behaves like a small deterministic model: it echoes the last user text (describing any attached media),
calls the declared functions that the text names (or that `mode: ANY` forces; `name(key=value, …)` gives
exactly those arguments and the required ones, a bare name all of them), summarises function results,
answers JSON matching the response schema when asked, and emits thought summaries when thinking is
requested. Models sign their function calls (an HMAC of the model and the call under the fake's
`signing_key`: a signature is valid only for the model, and the project, that made it) and Gemini 3, like
the real API, rejects a later turn whose function call comes back without its signature (a 400), or with a
signature that is altered or foreign (another model's, another fake's); Google's placeholder
`skip_thought_signature_validator` is accepted.

It rejects what the real API rejects, with Google's error envelope: unknown fields (proto JSON parsing),
roles other than user/model, empty or missing contents, a function response that does not answer the
preceding function-call turn, a bad or missing key, unknown models, and in JSON schemas a `$ref` with
non-`$` siblings (a documented rule). JSON Schema keywords outside the documented list are ignored, as
the real API does (Google's own examples send Pydantic schemas, `default`s and all).

`countTokens` takes either `contents` or a `generateContentRequest` (whose `model` must name the model of the
URL), never both, checks them as above and answers `totalTokens`: the words of the contents, the system
instruction and the tool declarations.

`embedContent` and `batchEmbedContents` serve the embedding models (`EMBEDDING_MODELS`, and only them;
the generative models have no embedding method, and the embedding models none other): each text becomes the
echo provider's vector for it (`echo_embedding`), of the model's size or of `outputDimensionality`. They
refuse what the API refuses: unknown fields, an unknown `taskType`, missing or empty content (a part without
text, an empty text), `title` without RETRIEVAL_DOCUMENT, `outputDimensionality` outside 1 to the model's
size, a batch of no request or of more than 100, a batch request whose `model` is not the URL's. Like the
real API they report no token counts.

Implicit caching: a request whose prompt before its last turn (system instruction, tools and earlier
contents, at least `IMPLICIT_CACHE_MIN` words) repeats one seen before reports those words as
`cachedContentTokenCount`, within `promptTokenCount`, as the real API does; writes are not billed. `cache`
(`tests/fakes/prompt_cache.py`) keeps the totals.

Every request is recorded in `requests`; `faults` script failures (error statuses, cut streams, an error
object written into a stream after the 200, garbage).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_llm_gateway.providers.echo import echo_embedding
from tests.fakes.prompt_cache import Breakpoint, PromptCache, prefix_key

KEY = "AIzaSyFAKE-gemini-test-key-0123456789"
DUMMY_SIGNATURE = "skip_thought_signature_validator"
SIGNATURE_PREFIX = b"fake-signature:"
#: What this fake signs thought signatures with; another project (another fake) has its own.
SIGNING_KEY = b"fake-gemini-thought-signing-key"
MODELS = ("gemini-3-flash", "gemini-3-pro", "gemini-2.5-flash", "gemini-2.5-pro")
#: The embedding models, and the size of their vectors.
EMBEDDING_MODELS = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
EMBED_METHODS = ("embedContent", "batchEmbedContents")
#: The most requests one batchEmbedContents call takes.
MAX_BATCH = 100

_STRUCT = "struct"
_BYTES = "bytes"
_ANY = "any"
# Field names of the request messages (proto JSON, lowerCamel), as in google-genai's `_*_to_mldev` converters.
FIELDS: dict[str, dict[str, Any]] = {
    "GenerateContentRequest": {
        "model": str, "contents": ["Content"], "systemInstruction": "Content", "tools": ["Tool"],
        "toolConfig": "ToolConfig", "safetySettings": ["SafetySetting"],
        "generationConfig": "GenerationConfig", "cachedContent": str, "serviceTier": str, "store": bool,
    },
    "Content": {"role": str, "parts": ["Part"]},
    "Part": {
        "text": str, "inlineData": "Blob", "fileData": "FileData", "functionCall": "FunctionCall",
        "functionResponse": "FunctionResponse", "thought": bool, "thoughtSignature": _BYTES,
        "executableCode": _STRUCT, "codeExecutionResult": _STRUCT, "videoMetadata": _STRUCT,
        "mediaResolution": _STRUCT, "partMetadata": _STRUCT, "toolCall": _STRUCT, "toolResponse": _STRUCT,
    },
    "Blob": {"mimeType": str, "data": _BYTES, "displayName": str},
    "FileData": {"mimeType": str, "fileUri": str, "displayName": str},
    "FunctionCall": {"id": str, "name": str, "args": _STRUCT},
    "FunctionResponse": {
        "id": str, "name": str, "response": _STRUCT, "parts": [_STRUCT], "willContinue": bool,
        "scheduling": str,
    },
    "Tool": {
        "functionDeclarations": ["FunctionDeclaration"], "googleSearch": _STRUCT, "codeExecution": _STRUCT,
        "urlContext": _STRUCT, "fileSearch": _STRUCT, "googleMaps": _STRUCT, "computerUse": _STRUCT,
        "googleSearchRetrieval": _STRUCT,
    },
    "FunctionDeclaration": {
        "name": str, "description": str, "parameters": "Schema", "parametersJsonSchema": _ANY,
        "response": "Schema", "responseJsonSchema": _ANY, "behavior": str,
    },
    "ToolConfig": {
        "functionCallingConfig": "FunctionCallingConfig", "retrievalConfig": _STRUCT,
        "includeServerSideToolInvocations": bool,
    },
    "FunctionCallingConfig": {"mode": str, "allowedFunctionNames": [str]},
    "SafetySetting": {"category": str, "threshold": str},
    "GenerationConfig": {
        "stopSequences": [str], "responseMimeType": str, "responseSchema": "Schema",
        "responseJsonSchema": _ANY, "responseModalities": [str], "candidateCount": int,
        "maxOutputTokens": int, "temperature": float, "topP": float, "topK": float, "seed": int,
        "presencePenalty": float, "frequencyPenalty": float, "responseLogprobs": bool, "logprobs": int,
        "enableEnhancedCivicAnswers": bool, "speechConfig": _STRUCT,
        "thinkingConfig": "ThinkingConfig", "imageConfig": _STRUCT, "mediaResolution": str,
        "audioTranscriptionConfig": _STRUCT,
    },
    "ThinkingConfig": {"includeThoughts": bool, "thinkingBudget": int, "thinkingLevel": str},
    "CountTokensRequest": {"contents": ["Content"], "generateContentRequest": "GenerateContentRequest"},
    "EmbedContentRequest": {
        "model": str, "content": "Content", "taskType": str, "title": str, "outputDimensionality": int,
    },
    "BatchEmbedContentsRequest": {"requests": ["EmbedContentRequest"]},
    "Schema": {
        "type": str, "format": str, "title": str, "description": str, "nullable": bool, "enum": [str],
        "maxItems": int, "minItems": int, "properties": {"Schema"}, "required": [str], "minProperties": int,
        "maxProperties": int, "minLength": int, "maxLength": int, "pattern": str, "example": _ANY,
        "anyOf": ["Schema"], "propertyOrdering": [str], "default": _ANY, "items": "Schema", "minimum": float,
        "maximum": float,
    },
}  # fmt: skip
ENUMS = {
    ("Schema", "type"): {
        "TYPE_UNSPECIFIED",
        "STRING",
        "NUMBER",
        "INTEGER",
        "BOOLEAN",
        "ARRAY",
        "OBJECT",
        "NULL",
    },
    ("FunctionCallingConfig", "mode"): {"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"},
    ("EmbedContentRequest", "taskType"): {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    },
    ("ThinkingConfig", "thinkingLevel"): {
        "THINKING_LEVEL_UNSPECIFIED",
        "MINIMAL",
        "LOW",
        "MEDIUM",
        "HIGH",
        "XHIGH",
    },
}
DATA_FIELDS = (
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult", "toolCall", "toolResponse",
)  # fmt: skip
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,127}")


class Invalid(Exception):
    """A request the real API would refuse: becomes Google's error envelope."""

    def __init__(self, message: str, status: int = 400, google_status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.google_status = google_status


def google_error(
    status: int, message: str, google_status: str, details: list[Any] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Google's envelope for a scripted failure; a 429 carries `RetryInfo` like the real quota errors."""
    error: dict[str, Any] = {
        "code": status,
        "message": message or f"fake failure {status}",
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if status == 429:
        error["message"] = (
            message or "You exceeded your current quota, please check your plan and billing details."
        )
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    return {"error": error}


@dataclass
class Fault:
    """What the next request gets instead of a normal answer."""

    status: int | None = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Streams only: send this many events first; then the error object (if `status`) or just the end.
    after_events: int | None = None
    #: Send this text instead (with a 200).
    raw: str | None = None


# -- request checks ----------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def parse_fields(value: Any, message: str, path: str) -> dict[str, Any]:
    """Proto JSON parsing: unknown names and wrongly typed values are a 400, as Google words it.

    Returns the value with every field name in lowerCamel (proto JSON also accepts snake_case, and the
    SDK sends some of those); free-form values (Struct, JSON Schema) are left untouched.
    """
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value at '{path}' ({message}), {json.dumps(value)[:80]}")
    fields = FIELDS[message]
    parsed: dict[str, Any] = {}
    for raw_name, item in value.items():
        name = _camel(raw_name)
        if name not in fields:
            where = f" at '{path}'" if path else ""
            raise Invalid(
                f'Invalid JSON payload received. Unknown name "{raw_name}"{where}: Cannot find field.'
            )
        where = f"{path}.{_snake(name)}" if path else _snake(name)
        parsed[name] = _parse_value(item, fields[name], where, (message, name))
    return parsed


def _parse_value(item: Any, kind: Any, where: str, key: tuple[str, str]) -> Any:
    if isinstance(kind, list):
        if not isinstance(item, list):
            raise Invalid(f"Invalid value at '{where}', expected a list")
        return [_parse_value(element, kind[0], f"{where}[{i}]", key) for i, element in enumerate(item)]
    if isinstance(kind, set):
        if not isinstance(item, dict):
            raise Invalid(f"Invalid value at '{where}', expected a map")
        return {
            name: _parse_value(sub, next(iter(kind)), f'{where}["{name}"]', key) for name, sub in item.items()
        }
    if isinstance(kind, str) and kind in FIELDS:
        return parse_fields(item, kind, where)
    if kind is str and not isinstance(item, str):
        raise Invalid(f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(item)[:80]}")
    if kind is str and key in ENUMS and item not in ENUMS[key]:
        raise Invalid(f"Invalid value at '{where}' ({key[0]}.{key[1]}), \"{item}\"")
    if kind is bool and not isinstance(item, bool):
        raise Invalid(f"Invalid value at '{where}' (TYPE_BOOL), {json.dumps(item)[:80]}")
    if kind in (int, float) and (isinstance(item, bool) or not isinstance(item, (int, float))):
        raise Invalid(f"Invalid value at '{where}' (TYPE_NUMBER), {json.dumps(item)[:80]}")
    if kind is int and isinstance(item, float) and not item.is_integer():
        raise Invalid(f"Invalid value at '{where}' (TYPE_INT32), {item}")
    if kind == _STRUCT and not isinstance(item, dict):
        raise Invalid(f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Struct), {item!r}")
    if kind == _BYTES and decode_bytes(item) is None:
        raise Invalid(
            f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for \"{str(item)[:40]}\""
        )
    return item


def decode_bytes(value: Any) -> bytes | None:
    """Proto JSON bytes: standard or URL-safe base64, padded or not."""
    if not isinstance(value, str):
        return None
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_json_schema(schema: Any, path: str, defs: dict[str, Any]) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise Invalid(f"* {path}: schema must be an object")
    if "$ref" in schema:
        if any(not key.startswith("$") for key in schema):
            raise Invalid(f"* {path}: a schema with $ref may not set other properties")
        if str(schema["$ref"]).rsplit("/", 1)[-1] not in defs:
            raise Invalid(f"* {path}: unresolved reference {schema['$ref']}")
    for key in ("properties", "$defs"):
        for name, sub in (schema.get(key) or {}).items():
            check_json_schema(sub, f"{path}.{key}.{name}", defs)
    for key in ("anyOf", "oneOf", "prefixItems"):
        for i, sub in enumerate(schema.get(key) or ()):
            check_json_schema(sub, f"{path}.{key}[{i}]", defs)
    for key in ("items", "additionalProperties"):
        if key in schema:
            check_json_schema(schema[key], f"{path}.{key}", defs)


def check_request(raw: Any, model: str, signing_key: bytes = SIGNING_KEY) -> dict[str, Any]:
    """The request with lowerCamel field names, if the real API would accept it; else raises `Invalid`
    (thought signatures are checked against `signing_key`)."""
    body = parse_fields(raw, "GenerateContentRequest", "")
    contents = body.get("contents")
    if not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        if content.get("role", "user") not in ("user", "model"):
            raise Invalid("Please use a valid role: user, model.")
        if not content.get("parts"):
            raise Invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        for j, part in enumerate(content["parts"]):
            _check_part(part, f"contents[{i}].parts[{j}]")
    _check_turns(contents)
    if model.startswith("gemini-3"):
        _check_signatures(contents, model, signing_key)
    declared = _check_tools(body.get("tools") or [])
    _check_tool_config(body.get("toolConfig") or {}, declared)
    _check_generation(body.get("generationConfig") or {}, model)
    return body


def count_tokens(raw: Any, model: str, signing_key: bytes = SIGNING_KEY) -> int:
    """`totalTokens` for a countTokens body the real API would accept; else raises `Invalid`."""
    body = parse_fields(raw, "CountTokensRequest", "")
    if "contents" in body and "generateContentRequest" in body:
        raise Invalid("contents and generateContentRequest are mutually exclusive: send one of them.")
    request = body.get("generateContentRequest")
    if request is None:
        request = {"contents": body["contents"]} if "contents" in body else {}
    elif request.get("model") != f"models/{model}":
        raise Invalid(
            f"* CountTokensRequest.generate_content_request.model: the model must be 'models/{model}', "
            f"not {request.get('model')!r}\n"
        )
    request = check_request(request, model, signing_key)
    texts = [
        part.get("text", "")
        for content in [*request["contents"], request.get("systemInstruction") or {"parts": []}]
        for part in content["parts"]
    ]
    tools = request.get("tools")
    return sum(_words(text) for text in texts) + (_words(json.dumps(tools)) if tools else 0)


def check_embed_request(raw: Any, model: str, path: str = "") -> dict[str, Any]:
    """An embedContent request (or one of a batch's, at `path`) the real API would accept; else `Invalid`."""
    where = f"{path}." if path else ""
    request = parse_fields(raw, "EmbedContentRequest", path)
    parts = (request.get("content") or {}).get("parts")
    if not parts:
        raise Invalid(f"* EmbedContentRequest.{where}content: content is not specified\n")
    for i, part in enumerate(parts):
        if not part.get("text"):
            raise Invalid(f"* EmbedContentRequest.{where}content.parts[{i}]: text must not be empty\n")
    if "title" in request and request.get("taskType") != "RETRIEVAL_DOCUMENT":
        raise Invalid("Title is only valid with TaskType.RETRIEVAL_DOCUMENT")
    size = request.get("outputDimensionality")
    if size is not None and not 1 <= size <= EMBEDDING_MODELS[model]:
        raise Invalid(
            f"* EmbedContentRequest.{where}output_dimensionality: must be in [1, {EMBEDDING_MODELS[model]}]"
        )
    return request


def embed_values(request: dict[str, Any], model: str) -> list[float]:
    text = " ".join(part["text"] for part in request["content"]["parts"])
    return echo_embedding(text, request.get("outputDimensionality") or EMBEDDING_MODELS[model])


def embed(raw: Any, model: str, method: str) -> dict[str, Any]:
    """The answer to an embedContent or batchEmbedContents body the real API would accept; else `Invalid`."""
    if method == "embedContent":
        return {"embedding": {"values": embed_values(check_embed_request(raw, model), model)}}
    requests = parse_fields(raw, "BatchEmbedContentsRequest", "").get("requests")
    if not requests:
        raise Invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    if len(requests) > MAX_BATCH:
        raise Invalid(f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests are allowed\n")
    checked = []
    for i, request in enumerate(raw["requests"]):
        if request.get("model") != f"models/{model}":
            raise Invalid(
                f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be 'models/{model}', "
                f"not {request.get('model')!r}\n"
            )
        checked.append(check_embed_request(request, model, f"requests[{i}]"))
    return {"embeddings": [{"values": embed_values(request, model)} for request in checked]}


def _check_part(part: dict[str, Any], where: str) -> None:
    data = [name for name in DATA_FIELDS if name in part]
    if len(data) != 1:
        raise Invalid(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
            "initialized field"
        )
    if data == ["text"] and not part["text"]:
        raise Invalid(
            "Unable to submit request because it has an empty text parameter. Add a value to the parameter "
            "and try again."
        )
    for name in ("inlineData", "fileData"):
        if name in part and not part[name].get("mimeType"):
            raise Invalid(f"* GenerateContentRequest.{where}.{_snake(name)}.mime_type: mime_type is required")
    if "inlineData" in part and not part["inlineData"].get("data"):
        raise Invalid(f"* GenerateContentRequest.{where}.inline_data.data: data is required")
    if "fileData" in part and not str(part["fileData"].get("fileUri", "")).startswith(
        ("https://", "http://", "gs://")
    ):
        raise Invalid(f"* GenerateContentRequest.{where}.file_data.file_uri: invalid URI")
    for name in ("functionCall", "functionResponse"):
        if name in part and not part[name].get("name"):
            raise Invalid(f"* GenerateContentRequest.{where}.{_snake(name)}.name: Name cannot be empty.\n")


def _calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [part["functionCall"] for part in content["parts"] if "functionCall" in part]


def _responses(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [part["functionResponse"] for part in content["parts"] if "functionResponse" in part]


def _check_turns(contents: list[dict[str, Any]]) -> None:
    """A function-call turn follows a user turn; the next turn answers every one of its calls."""
    for i, content in enumerate(contents):
        previous = contents[i - 1] if i else None
        if _calls(content) and (
            content.get("role") != "model" or previous is None or previous.get("role", "user") != "user"
        ):
            raise Invalid(
                "Please ensure that function call turn comes immediately after a user turn or after a "
                "function response turn."
            )
        responses = _responses(content)
        if not responses:
            continue
        calls = _calls(previous) if previous is not None and previous.get("role") == "model" else []
        if not calls:
            raise Invalid(
                "Please ensure that function response turn comes immediately after a function call turn."
            )
        if len(responses) != len(calls):
            raise Invalid(
                "Please ensure that the number of function response parts is equal to the number of function "
                "call parts of the function call turn."
            )
        if sorted(r["name"] for r in responses) != sorted(c["name"] for c in calls):
            raise Invalid("Please ensure that function response names match the function call names.")
        call_ids = {c.get("id") for c in calls if c.get("id")}
        for response in responses:
            if response.get("id") and response["id"] not in call_ids:
                raise Invalid(f"Function response id {response['id']} does not match any function call id.")


def _check_signatures(contents: list[dict[str, Any]], model: str, signing_key: bytes) -> None:
    """Gemini 3: in the current turn, each model turn's first function call carries its thought signature,
    the one this model made (or Google's placeholder)."""
    start = 0
    for i, content in enumerate(contents):
        if content.get("role", "user") == "user" and not _responses(content):
            start = i
    for position, content in enumerate(contents[start:], start):
        parts = [part for part in content["parts"] if "functionCall" in part]
        if content.get("role") != "model" or not parts:
            continue
        signature = parts[0].get("thoughtSignature")
        if signature is None:
            raise Invalid(
                "Function call is missing a thought_signature in functionCall parts. This is required for "
                "tools to work correctly, and missing thought_signature may lead to degraded model "
                "performance. Additional data, function call "
                f"`default_api:{parts[0]['functionCall']['name']}` , position {position + 1}. "
                "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
        if signature == DUMMY_SIGNATURE:
            continue
        expected = base64.b64decode(sign_call(model, parts[0]["functionCall"]["name"], signing_key))
        if not hmac.compare_digest(decode_bytes(signature) or b"", expected):
            raise Invalid("Corrupted thought signature.")


def _check_tools(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        for j, declaration in enumerate(tool.get("functionDeclarations") or ()):
            where = f"GenerateContentRequest.tools[{i}].function_declarations[{j}]"
            name = declaration.get("name", "")
            if not _FUNCTION_NAME.fullmatch(name):
                raise Invalid(
                    f"* {where}.name: Invalid function name. Must start with a letter or an underscore. "
                    "Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes "
                    "(-), with a maximum length of 128.\n"
                )
            if name in declared:
                raise Invalid(f"* {where}.name: Duplicate function declaration name: {name}\n")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise Invalid(f"* {where}: parameters and parameters_json_schema are mutually exclusive\n")
            schema = declaration.get("parametersJsonSchema")
            if schema is not None:
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    raise Invalid(f"* {where}.parameters_json_schema: the schema must describe an object\n")
                check_json_schema(schema, f"{where}.parameters_json_schema", schema.get("$defs") or {})
            parameters = declaration.get("parameters")
            if (
                parameters is not None
                and parameters.get("type") == "OBJECT"
                and not parameters.get("properties")
            ):
                raise Invalid(f"* {where}.parameters.properties: should be non-empty for OBJECT type\n")
            declared[name] = declaration
    return declared


def _check_tool_config(tool_config: dict[str, Any], declared: dict[str, Any]) -> None:
    calling = tool_config.get("functionCallingConfig") or {}
    names = calling.get("allowedFunctionNames")
    if names is None:
        return
    if calling.get("mode") not in ("ANY", "VALIDATED"):
        raise Invalid(
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
            "allowed_function_names may only be set when mode is ANY or VALIDATED.\n"
        )
    for name in names:
        if name not in declared:
            raise Invalid(f"* GenerateContentRequest.tool_config: function {name} is not declared\n")


def _check_generation(config: dict[str, Any], model: str) -> None:
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise Invalid("response_schema and response_json_schema are mutually exclusive.")
    schema = config.get("responseJsonSchema", config.get("responseSchema"))
    if schema is not None and config.get("responseMimeType") != "application/json":
        raise Invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: must be application/json when "
            "a response schema is set.\n"
        )
    if "responseJsonSchema" in config:
        json_schema = config["responseJsonSchema"]
        check_json_schema(
            json_schema, "generation_config.response_json_schema", json_schema.get("$defs") or {}
        )
    if len(config.get("stopSequences") or ()) > 5:
        raise Invalid(
            "* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences.\n"
        )
    if not 1 <= config.get("candidateCount", 1) <= 8:
        raise Invalid(
            "* GenerateContentRequest.generation_config.candidate_count: must be between 1 and 8.\n"
        )
    if not 0 <= config.get("temperature", 1) <= 2:
        raise Invalid("* GenerateContentRequest.generation_config.temperature: must be between 0 and 2.\n")
    if config.get("maxOutputTokens", 1) < 1:
        raise Invalid("* GenerateContentRequest.generation_config.max_output_tokens: must be positive.\n")
    thinking = config.get("thinkingConfig") or {}
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        raise Invalid("You can only set only one of thinking budget and thinking level.")
    if "thinkingLevel" in thinking and not model.startswith("gemini-3"):
        raise Invalid("Thinking level is not supported for this model.")


# -- the deterministic model -----------------------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def example(schema: Any, defs: dict[str, Any], hints: dict[str, str], name: str = "", depth: int = 0) -> Any:
    """A value matching `schema` (JSON Schema or Gemini's Schema); `name=value` hints fill in leaves."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        return example(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs, hints, name, depth + 1)
    if schema.get("enum"):
        return next((value for value in schema["enum"] if str(value) == hints.get(name)), schema["enum"][0])
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        branches = [
            b
            for b in schema.get(key) or ()
            if not (isinstance(b, dict) and b.get("type") in ("null", "NULL"))
        ]
        if branches:
            return example(branches[0], defs, hints, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind or ("object" if "properties" in schema else "string")).lower()
    hint = hints.get(name)
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: example(sub, defs, hints, key, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items") or {}, defs, hints, name, depth + 1)]
    if kind == "integer":
        return int(hint) if hint and hint.lstrip("-").isdigit() else int(schema.get("minimum", 1))
    if kind == "number":
        try:
            return float(hint) if hint else float(schema.get("minimum", 1.5))
        except ValueError:
            return 1.5
    if kind == "boolean":
        return hint != "false"
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return hint or "text"


def sign_call(model: str, name: str, signing_key: bytes = SIGNING_KEY) -> str:
    """The thought signature (base64) of a model turn whose first function call is `name`."""
    digest = hmac.new(signing_key, f"{model}\0{name}".encode(), hashlib.sha256).digest()
    return base64.b64encode(SIGNATURE_PREFIX + digest).decode()


@dataclass
class Answer:
    """One candidate's worth of output, before it is cut into a response or stream events."""

    thought: str = ""
    text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish: str = "STOP"
    blocked: str | None = None


def answer(body: dict[str, Any]) -> Answer:
    contents = body["contents"]
    last = contents[-1]
    texts = [part["text"] for part in last["parts"] if "text" in part and not part.get("thought")]
    text = " ".join(texts)
    config = body.get("generationConfig") or {}
    result = Answer()
    if (config.get("thinkingConfig") or {}).get("includeThoughts"):
        result.thought = "Thinking about: " + " ".join(text.split()[:5])
    if "BLOCK_PROMPT" in text:
        return Answer(blocked="SAFETY")
    if "UNSAFE_OUTPUT" in text:
        return Answer(finish="SAFETY")
    responses = _responses(last)
    if responses:
        summary = "; ".join(f"{r['name']}={json.dumps(r.get('response'), sort_keys=True)}" for r in responses)
        result.text = f"Results: {summary}"
        return result
    hints = dict(re.findall(r"(\w+)=([^\s,;]+)", text))
    calls = _choose_calls(body, text)
    if calls:
        # `name(key=value, …)` in the text spells a call out: exactly those arguments, plus the required ones.
        spelled = {m[1]: m[2] for m in re.finditer(r"\b([A-Za-z_][\w.:-]*)\(([^)]*)\)", text)}
        for declaration in calls:
            schema = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
            given = spelled.get(declaration["name"])
            if given is None:
                args = example(schema, schema.get("$defs") or {}, hints) or {}
            else:
                named = dict(re.findall(r"(\w+)\s*=\s*([^,]+?)\s*(?:,|$)", given))
                keep = set(named) | set(schema.get("required") or ())
                full = example(schema, schema.get("$defs") or {}, named) or {}
                args = {key: value for key, value in full.items() if key in keep}
            result.calls.append({"name": declaration["name"], "args": args})
        return result
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        value = example(schema, schema.get("$defs") or {}, hints) if schema else {"echo": text}
        result.text = json.dumps(value)
        return result
    attachments = []
    for part in last["parts"]:
        if "inlineData" in part:
            size = len(decode_bytes(part["inlineData"]["data"]) or b"")
            attachments.append(f"[{part['inlineData']['mimeType']}, {size} bytes]")
        elif "fileData" in part:
            attachments.append(f"[{part['fileData']['mimeType']} at {part['fileData']['fileUri']}]")
    result.text = " ".join([text, *attachments]).strip() or "(nothing to echo)"
    for stop in config.get("stopSequences") or ():
        if stop in result.text:
            result.text = result.text[: result.text.index(stop)]
    limit = config.get("maxOutputTokens")
    if limit is not None and _words(result.text) > limit:
        result.text = " ".join(result.text.split()[:limit])
        result.finish = "MAX_TOKENS"
    return result


def _choose_calls(body: dict[str, Any], text: str) -> list[dict[str, Any]]:
    declarations = [d for tool in body.get("tools") or () for d in tool.get("functionDeclarations") or ()]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = calling.get("mode", "AUTO")
    if not declarations or mode == "NONE":
        return []
    allowed = calling.get("allowedFunctionNames")
    candidates = [d for d in declarations if allowed is None or d["name"] in allowed]
    named = [d for d in candidates if re.search(rf"\b{re.escape(d['name'])}\b", text)]
    if mode == "ANY":
        return named or candidates[:1]
    return named


#: The shortest prefix implicit caching serves, in words (the real minimum is 1024 tokens or more).
IMPLICIT_CACHE_MIN = 32


def _content_words(contents: list[dict[str, Any]]) -> int:
    return sum(
        _words(part.get("text", "")) + (1 if "inlineData" in part or "fileData" in part else 0)
        for content in contents
        for part in content["parts"]
    )


def implicit_prefix(body: dict[str, Any], model: str) -> Breakpoint | None:
    """The prefix implicit caching may serve: everything before the last turn, when it is long enough."""
    before = [body.get("systemInstruction") or {"parts": []}, *body["contents"][:-1]]
    tokens = _content_words(before)
    if tokens < IMPLICIT_CACHE_MIN:
        return None
    return Breakpoint(prefix_key(model, [body.get("tools"), before]), tokens)


def _usage(body: dict[str, Any], result: Answer, candidates: int, cached: int = 0) -> dict[str, Any]:
    prompt = _content_words([*body["contents"], body.get("systemInstruction") or {"parts": []}])
    output = (_words(result.text) + 3 * len(result.calls)) * candidates
    thoughts = _words(result.thought) * candidates
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    return usage


def _parts(
    result: Answer,
    sign: Callable[[str], str],
    text: str | None = None,
    calls: bool = True,
    thought: bool = True,
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if thought and result.thought:
        parts.append({"text": result.thought, "thought": True})
    if text:
        parts.append({"text": text})
    if calls:
        for i, call in enumerate(result.calls):
            part: dict[str, Any] = {"functionCall": call}
            if i == 0:
                part["thoughtSignature"] = sign(call["name"])
            parts.append(part)
    return parts


def _logprobs(text: str) -> dict[str, Any]:
    tokens = text.split()
    return {
        "chosenCandidates": [
            {"token": t, "logProbability": -0.25, "tokenId": i} for i, t in enumerate(tokens)
        ],
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": -0.25}, {"token": "~", "logProbability": -3.0}]}
            for t in tokens
        ],
        "logProbabilitySum": -0.25 * len(tokens),
    }


# -- the app ---------------------------------------------------------------------------------------------


@dataclass
class FakeGemini:
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: Implicit caching's prefixes, with the total of the reads reported.
    cache: PromptCache = field(default_factory=PromptCache)
    #: What thought signatures are signed and checked with: give two fakes different keys to stand for two
    #: projects, whose signatures the other rejects.
    signing_key: bytes = SIGNING_KEY
    #: Write each stream in one piece (many events to a read) instead of event by event.
    burst: bool = False

    def _auth(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
                "PERMISSION_DENIED",
            )
        if key != self.key:
            return google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        return None

    async def generate(self, request: Request) -> Response:
        version, target = request.path_params["version"], request.path_params["target"]
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(
            {
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        denied = self._auth(request)
        if denied is not None:
            return denied
        model, _, method = target.rpartition(":")
        if method not in ("generateContent", "streamGenerateContent", "countTokens", *EMBED_METHODS):
            return google_error(404, f"Method not found: {method}", "NOT_FOUND")
        if model not in (EMBEDDING_MODELS if method in EMBED_METHODS else MODELS):
            return google_error(
                404,
                f"models/{model} is not found for API version {version}, or is not supported for {method}. "
                "Call ListModels to see the list of available models and their supported methods.",
                "NOT_FOUND",
            )
        if body is None:
            return google_error(
                400, f"Invalid JSON payload received. Unexpected token.\n{raw[:40]!r}", "INVALID_ARGUMENT"
            )
        fault = self.faults.pop(0) if self.faults else None
        if method == "countTokens":
            return self._count_tokens(body, model, fault)
        if method in EMBED_METHODS:
            return self._embed(body, model, method, fault)
        if fault is not None and fault.raw is not None:
            return Response(
                fault.raw,
                media_type="text/event-stream" if method != "generateContent" else "application/json",
            )
        if fault is not None and fault.status and fault.after_events is None:
            return JSONResponse(fault.body or error_body(fault.status), fault.status, headers=fault.headers)
        try:
            body = check_request(body, model, self.signing_key)
        except Invalid as exc:
            return google_error(exc.status, exc.message, exc.google_status)
        result = answer(body)
        prefix = implicit_prefix(body, model)
        cached, _ = self.cache.use([prefix], bill_writes=False) if prefix is not None else (0, 0)
        count = (body.get("generationConfig") or {}).get("candidateCount", 1)
        logprobs = bool((body.get("generationConfig") or {}).get("responseLogprobs"))
        response_id = f"fake-response-{len(self.requests)}"
        if method == "generateContent":
            return JSONResponse(self._response(body, result, count, model, response_id, logprobs, cached))
        if request.query_params.get("alt") != "sse":
            return google_error(400, "this fake only streams with alt=sse", "INVALID_ARGUMENT")
        return StreamingResponse(
            self._events(body, result, count, model, response_id, fault, cached),
            media_type="text/event-stream",
        )

    def _count_tokens(self, body: Any, model: str, fault: Fault | None) -> Response:
        if fault is not None and fault.status:
            return JSONResponse(fault.body or error_body(fault.status), fault.status, headers=fault.headers)
        try:
            total = count_tokens(body, model, self.signing_key)
        except Invalid as exc:
            return google_error(exc.status, exc.message, exc.google_status)
        return JSONResponse(
            {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
        )

    def _embed(self, body: Any, model: str, method: str, fault: Fault | None) -> Response:
        if fault is not None and fault.status:
            return JSONResponse(fault.body or error_body(fault.status), fault.status, headers=fault.headers)
        try:
            return JSONResponse(embed(body, model, method))
        except Invalid as exc:
            return google_error(exc.status, exc.message, exc.google_status)

    def _response(
        self,
        body: dict[str, Any],
        result: Answer,
        count: int,
        model: str,
        response_id: str,
        logprobs: bool,
        cached: int,
    ) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "usageMetadata": _usage(body, result, count, cached),
            "modelVersion": model,
            "responseId": response_id,
        }
        if result.blocked:
            return {"promptFeedback": {"blockReason": result.blocked}, **envelope}
        candidates = []
        for index in range(count):
            candidate: dict[str, Any] = {"finishReason": result.finish, "index": index}
            parts = _parts(result, partial(sign_call, model, signing_key=self.signing_key), result.text)
            if parts:
                candidate["content"] = {"role": "model", "parts": parts}
            if logprobs and result.text:
                candidate["logprobsResult"] = _logprobs(result.text)
            candidates.append(candidate)
        return {"candidates": candidates, **envelope}

    async def _events(
        self,
        body: dict[str, Any],
        result: Answer,
        count: int,
        model: str,
        response_id: str,
        fault: Fault | None,
        cached: int,
    ) -> AsyncIterator[bytes]:
        """Thought first, text in word-sized deltas, calls whole, finishReason and usage on the last event."""
        usage = _usage(body, result, count, cached)
        envelope = {"usageMetadata": usage, "modelVersion": model, "responseId": response_id}
        if result.blocked:
            events = [{"promptFeedback": {"blockReason": result.blocked}, **envelope}]
        else:
            pieces: list[list[dict[str, Any]]] = []
            if result.thought:
                pieces.append([{"text": result.thought, "thought": True}])
            pieces.extend([{"text": word}] for word in re.findall(r"\S+\s*", result.text))
            if result.calls:
                pieces.append(
                    _parts(result, partial(sign_call, model, signing_key=self.signing_key), thought=False)
                )
            pieces = pieces or [[]]
            events = []
            for n, parts in enumerate(pieces):
                last = n == len(pieces) - 1
                candidates = []
                for index in range(count):
                    candidate: dict[str, Any] = {"index": index}
                    if parts:
                        candidate["content"] = {"role": "model", "parts": parts}
                    if last:
                        candidate["finishReason"] = result.finish
                    candidates.append(candidate)
                events.append({"candidates": candidates, **envelope})
        if fault is not None and fault.after_events is not None:
            events = events[: fault.after_events]
        written = [b"data: " + json.dumps(event).encode() + b"\r\n\r\n" for event in events]
        for piece in [b"".join(written)] if self.burst else written:
            yield piece
        if fault is not None and fault.status:
            # After the 200, Google writes the error as bare (multi-line) JSON, without `data:`.
            yield json.dumps(fault.body or error_body(fault.status), indent=2).encode() + b"\n"

    async def models(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        listing = [
            {"name": f"models/{name}", "supportedGenerationMethods": ["generateContent", "countTokens"]}
            for name in MODELS
        ]
        listing.extend(
            {"name": f"models/{name}", "supportedGenerationMethods": ["embedContent", "countTokens"]}
            for name in EMBEDDING_MODELS
        )
        return JSONResponse({"models": listing})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{version:str}/models", self.models, methods=["GET"]),
                Route("/{version:str}/models/{target:path}", self.generate, methods=["POST"]),
            ]
        )
