"""OpenAI chat request → Gemini `GenerateContentRequest` body. Pure; the mapping and the choices made where
the APIs differ: docs/providers/gemini.md."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ...errors import GatewayError
from ...translate import (
    json_schema_of,
    max_tokens_of,
    parse_arguments,
    parse_data_url,
    stop_of,
    text_of,
    unsupported,
)
from ...wire import loads
from ._errors import KIND
from ._ids import DUMMY_THOUGHT_SIGNATURE, decode_tool_call_id
from ._schema import sanitize_json_schema, to_openapi_schema

__all__ = ["to_native"]

Request = Mapping[str, Any]
JSON = dict[str, Any]

# Fields whose loss would change the answer: a 400. Pure hints with no Gemini equivalent (`user`, `metadata`,
# `store`, `service_tier`, `logit_bias`, `parallel_tool_calls`, ...) are never read, so they are dropped.
_REJECTED = {
    "audio": "audio output is not available through this provider",
    "prediction": "predicted outputs have no Gemini equivalent",
    "web_search_options": "Google Search grounding is not translated",
    "functions": "use `tools`",
    "function_call": "use `tool_choice`",
}

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


class _Call(NamedTuple):
    name: str
    upstream_id: str | None
    position: int  # among the calls of its assistant turn: function responses go back in this order


def to_native(request: Request, model: str, *, scope: str, json_schema: bool = True) -> JSON:
    """The `GenerateContentRequest` body for an OpenAI chat request. `json_schema=False` targets API `v1`.

    `scope` is the seal scope of the provider and model about to be called: only thought signatures made
    for it are sent back (`_ids.py`)."""
    for field, detail in _REJECTED.items():
        if request.get(field) is not None:
            raise unsupported(KIND, field, detail)
    modalities = request.get("modalities")
    if modalities and any(m != "text" for m in modalities):
        raise unsupported(KIND, "modalities", "only text output is available")
    system, contents = _contents(
        request.get("messages") or [], scope, enforce_signatures=not _is_legacy_model(model)
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
    messages: Sequence[Mapping[str, Any]], scope: str, *, enforce_signatures: bool
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
            _append(contents, "model", _assistant_parts(msg, param, calls, scope, enforce_signatures))
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
    msg: Mapping[str, Any], param: str, calls: dict[str, _Call], scope: str, enforce_signatures: bool
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
        upstream_id, signature = decode_tool_call_id(str(call.get("id", "")), scope)
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
