"""A fake Amazon Bedrock Runtime (Converse and ConverseStream) for loopback tests.

It is strict where the real service is: every request must carry a valid SigV4 signature (recomputed with
botocore from the known test credentials, canonical path double-encoded as AWS does) or a known Bedrock API
key; every body is checked with botocore's own `ParamValidator` against the `Converse` input shape of the
service model, plus the constraints that validator skips (patterns, maxima, enums, base64 blobs) and the
conversation rules Converse enforces. It answers like a tiny deterministic model and speaks the binary
event stream, with frames encoded here (CRCs included).

Model behaviour, from the last user turn:
* tool results → `Tool results: <text>; <text>`;
* tools declared and forced (`any`/`tool`), or named in the user's text → a `toolUse` per tool, with an input
  filled from the tool's schema (strings get the user's text), or, when the text spells the call out as
  `name(key=value, …)`, exactly those arguments plus the required ones;
* `outputConfig.textFormat` → JSON filled from that schema;
* otherwise → `You said: <text>`.
Thinking (Claude `thinking`, Nova `reasoningConfig`) adds a reasoning block first. `stopSequences` and
`maxTokens` (one token per word) cut the text. Model ids choose failures: `error.<Exception>` answers that
exception; `stream-error.<exception>` sends one delta then an exception frame; `stream-cut` ends inside a
frame; `stream-no-metadata` ends after `messageStop`; `stream-bad-crc` corrupts a frame; `fake.cached`
reports prompt-cache reads and writes.

Claude's reasoning is signed with this service's own key (`SIGNING_KEY`, not the Anthropic fake's): a
`reasoningText` brought back in an assistant turn without its signature, or with one that does not verify
(altered, another model's, the Anthropic API's), is a ValidationException, and so is a Claude tool loop
with thinking on whose last assistant turn does not start with its reasoning. InvokeModel applies the
Anthropic fake's rules with this key.

Prompt caching: `cachePoint` blocks (tools, then system, then messages) are checked as the service checks them
(at most 4; a `ttl` of 1h never after one of 5m) and served by a real prefix cache
(`tests/fakes/prompt_cache.py`), whose totals `cache` keeps; InvokeModel's `cache_control` is served the
same way by the Anthropic fake's rules.

InvokeModel and InvokeModelWithResponseStream serve Claude ids only, with Anthropic's Messages body: the
model is the fake Anthropic's (`tests/fakes/anthropic.py`), and so are the Messages rules, checked after
Bedrock's own. Bedrock's are that the body has no `model` or `stream` (nor any field outside
`INVOKE_FIELDS`: "extraneous key"), carries `anthropic_version: bedrock-2023-05-31`, lists only
`INVOKE_BETAS` in `anthropic_beta` ("invalid beta flag"), has `context_management` only with one of its
betas, and `cache_control` with `type` and `ttl` only. The stream sends each Anthropic event (no `ping`)
as a `chunk` frame of base64 `bytes`, the last one with Bedrock's `amazon-bedrock-invocationMetrics`. By the
last user text: `FAIL <Exception>` answers that exception; `FAIL STREAM <exception>` sends it as an
exception frame after the first text delta; `CUT STREAM` ends before `message_stop`.

InvokeModel on an embedding model (Titan Text Embeddings v1/v2, Cohere Embed v3/v4) is served by
`bedrock_embeddings.py`, with the same signature checks.

CountTokens takes exactly one of `input.invokeModel` (a base64 InvokeModel body, checked as above) and
`input.converse` (checked like Converse), and answers `{"inputTokens": N}`: the words of the messages, the
system prompt and the tools. As users reported of the real service (mid-2026), it refuses cross-region
inference profiles (`us.anthropic.…`): only foundation-model ids count, and only Claude's.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.model import Shape
from botocore.validate import ParamValidator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import anthropic as claude
from tests.fakes.bedrock_embeddings import Refused, embedding_model, invoke_embedding
from tests.fakes.prompt_cache import Breakpoint, PromptCache, prefix_key

# AWS's documented example credentials: they look real and are not.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLXRlc3Qta2V5"
#: What this service signs Claude's reasoning with (the Anthropic fake has its own).
SIGNING_KEY = b"fake-bedrock-thinking-signing-key"

_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_PATH = re.compile(
    r"/model/(?P<model>[^/]+)/"
    r"(?P<operation>converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)"
)
_MAX_SKEW = datetime.timedelta(minutes=5)


# -- event-stream encoding -----------------------------------------------------------------------------------


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message with string headers and both CRCs."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    total = 16 + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps(payload, separators=(",", ":")).encode())


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_frame(headers, json.dumps({"message": message}).encode())


# -- SigV4 ---------------------------------------------------------------------------------------------------


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, tuple[str, str | None]],
    region: str,
    service: str = "bedrock",
    now: datetime.datetime | None = None,
) -> tuple[str, str] | None:
    """None if the request is correctly signed, else (AWS exception name, message)."""
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "MissingAuthenticationTokenException", "Missing or malformed SigV4 Authorization header."
    access_key = match["key"]
    if access_key not in credentials:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    secret, token = credentials[access_key]
    signed = match["signed"].split(";")
    if match["service"] != service or match["region"] != region:
        return "InvalidSignatureException", f"Credential should be scoped to {region}/{service}."
    if "host" not in signed or "x-amz-date" not in signed:
        return "InvalidSignatureException", "host and x-amz-date must be signed."
    if token is not None and (
        headers.get("x-amz-security-token") != token or "x-amz-security-token" not in signed
    ):
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "InvalidSignatureException", "x-amz-date is malformed."
    if (
        match["date"] != amz_date[:8]
        or abs((now or datetime.datetime.now(datetime.timezone.utc)) - when) > _MAX_SKEW
    ):
        return "InvalidSignatureException", "Signature expired or not yet valid."
    content_hash = headers.get("x-amz-content-sha256")
    if content_hash is not None and content_hash != hashlib.sha256(body).hexdigest():
        return "InvalidSignatureException", "x-amz-content-sha256 does not match the body."
    # The path exactly as received: botocore normalises and encodes it (once more) as AWS does, so a path
    # sent with `:` where `%3A` was signed fails here, as it would against the real service.
    url = f"https://{headers['host']}{raw_path}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers.get(name, "") for name in signed}
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(ReadOnlyCredentials(access_key, secret, token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            f"The Canonical String for this request should have been\n'{canonical}'",
        )
    return None


# -- validation ----------------------------------------------------------------------------------------------


def _constraints(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    """What botocore's ParamValidator leaves to the service: maxima, patterns, enums, base64 blobs."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _constraints(value[name], member, f"{path}.{name}", errors)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: at most {meta['max']} items")
        for i, item in enumerate(value):
            _constraints(item, shape.member, f"{path}[{i}]", errors)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: at most {meta['max']} entries")
        for key, item in value.items():
            _constraints(key, shape.key, f"{path} key", errors)
            _constraints(item, shape.value, f"{path}.{key}", errors)
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: longer than {meta['max']}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        if "max" in meta and value > meta["max"]:
            errors.append(f"{path}: {value} is above the maximum {meta['max']}")
    elif kind == "blob":
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            errors.append(f"{path}: not valid base64")
        else:
            if len(decoded) < meta.get("min", 0):
                errors.append(f"{path}: empty")


def _blank(text: Any) -> bool:
    return not isinstance(text, str) or not text.strip()


def _conversation_errors(body: Mapping[str, Any], model: str) -> list[str]:
    """The rules Converse checks beyond the shapes."""
    errors: list[str] = []
    messages = body.get("messages") or []
    if not messages:
        errors.append("A conversation must have at least one message.")
        return errors
    if messages[0]["role"] != "user":
        errors.append(
            "A conversation must start with a user message. "
            "Try again with a conversation that starts with a user message."
        )
    for i, block in enumerate(body.get("system") or ()):
        if "text" in block and _blank(block["text"]):
            errors.append(f"The text field in the SystemContentBlock object at system.{i} is blank.")
    uses_tools = False
    for i, message in enumerate(messages):
        if i and message["role"] == messages[i - 1]["role"]:
            errors.append("A conversation must alternate between user and assistant roles.")
        content = message["content"]
        if not content:
            errors.append(f"The content field in the Message object at messages.{i} is empty.")
        for j, block in enumerate(content):
            if "text" in block and _blank(block["text"]):
                errors.append(
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank."
                )
            if ("image" in block or "document" in block) and message["role"] != "user":
                errors.append(
                    f"messages.{i}.content.{j}: images and documents are only allowed in user messages."
                )
            if "toolResult" in block:
                for result in block["toolResult"]["content"]:
                    if "text" in result and _blank(result["text"]):
                        errors.append(f"messages.{i}.content.{j}: text content blocks must be non-empty.")
            uses_tools = uses_tools or "toolUse" in block or "toolResult" in block
        if any("document" in block for block in content) and not any("text" in block for block in content):
            errors.append(f"messages.{i}: a message with a document must also contain text.")
        uses = {b["toolUse"]["toolUseId"] for b in content if "toolUse" in b}
        results = {b["toolResult"]["toolUseId"] for b in content if "toolResult" in b}
        previous = messages[i - 1]["content"] if i else []
        if results and results != {b["toolUse"]["toolUseId"] for b in previous if "toolUse" in b}:
            errors.append(
                f"messages.{i}: toolResult blocks must answer the toolUse blocks of the previous turn."
            )
        if uses and i + 1 < len(messages):
            answered = {b["toolResult"]["toolUseId"] for b in messages[i + 1]["content"] if "toolResult" in b}
            if answered != uses:
                errors.append(
                    f"messages.{i}: toolUse ids were found without toolResult blocks immediately after."
                )
    config = body.get("toolConfig")
    if uses_tools and config is None:
        errors.append(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    if config is not None:
        specs = [tool["toolSpec"] for tool in config["tools"] if "toolSpec" in tool]
        names = [spec["name"] for spec in specs]
        if len(names) != len(set(names)):
            errors.append("The tool names in toolConfig.tools must be unique.")
        for spec in specs:
            schema = spec["inputSchema"].get("json")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                errors.append(f"The inputSchema of tool {spec['name']} must be a JSON Schema of type object.")
        forced = (config.get("toolChoice") or {}).get("tool")
        if forced is not None and forced["name"] not in names:
            errors.append(f"toolChoice names the undeclared tool {forced['name']}.")
    text_format = (body.get("outputConfig") or {}).get("textFormat")
    if text_format is not None:
        try:
            schema = json.loads(text_format["structure"]["jsonSchema"]["schema"])
        except (KeyError, ValueError):
            schema = None
        if not isinstance(schema, dict):
            errors.append("outputConfig.textFormat.structure.jsonSchema.schema must be a JSON Schema object.")
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking") or {}
    max_tokens = (body.get("inferenceConfig") or {}).get("maxTokens")
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024 or (max_tokens is not None and budget >= max_tokens):
            errors.append("thinking.budget_tokens must be at least 1024 and less than max_tokens.")
    errors.extend(_cache_point_errors(body))
    errors.extend(_reasoning_errors(body, model))
    return errors


def _reasoning_errors(body: Mapping[str, Any], model: str) -> list[str]:
    """Claude's reasoning must come back signed by this service for this model; with thinking on, a tool
    loop's last assistant turn must start with it."""
    errors: list[str] = []
    messages = body["messages"]
    if claude_name(model) is None:
        return errors  # other families' reasoning is not signed
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        for j, block in enumerate(message["content"]):
            text = (block.get("reasoningContent") or {}).get("reasoningText")
            if text is None:
                continue
            expected = claude_signature(model, str(text.get("text")))
            if not hmac.compare_digest(str(text.get("signature")), expected):
                errors.append(
                    "The model returned the following errors: "
                    f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                )
    thinking = ((body.get("additionalModelRequestFields") or {}).get("thinking") or {}).get("type")
    looping = len(messages) >= 2 and any("toolResult" in block for block in messages[-1]["content"])
    last_answer = messages[-2]["content"][0] if looping else {}
    if thinking in ("enabled", "adaptive") and looping and "reasoningContent" not in last_answer:
        errors.append(
            f"The model returned the following errors: messages.{len(messages) - 2}.content.0.type: Expected "
            "`thinking` or `redacted_thinking`, but found another block. When `thinking` is enabled, a final "
            "`assistant` message must start with a thinking block."
        )
    return errors


def claude_signature(model: str, text: str) -> str:
    """The signature this service gives Claude's reasoning (the Anthropic fake's scheme, with this key)."""
    return claude.sign_thinking(claude_name(model) or model, text, SIGNING_KEY)


MAX_CACHE_POINTS = 4
_TTL_RANK = {"1h": 0, "5m": 1}


def _prompt_blocks(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every block of a Converse prompt in cache order: tools, system, then each message's content."""
    tools = (body.get("toolConfig") or {}).get("tools") or []
    messages = [block for message in body.get("messages") or () for block in message["content"]]
    return [*tools, *(body.get("system") or ()), *messages]


def _cache_point_errors(body: Mapping[str, Any]) -> list[str]:
    points = [block["cachePoint"] for block in _prompt_blocks(body) if "cachePoint" in block]
    if len(points) > MAX_CACHE_POINTS:
        return [f"The number of cachePoint blocks ({len(points)}) exceeds the maximum of {MAX_CACHE_POINTS}."]
    ranks = [_TTL_RANK.get(point.get("ttl", "5m"), 1) for point in points]
    if ranks != sorted(ranks):
        return ["A cachePoint with a longer ttl cannot follow a cachePoint with a shorter ttl."]
    return []


def cache_points(body: Mapping[str, Any], model: str) -> list[Breakpoint]:
    """The prefixes a Converse request's `cachePoint` blocks end, with their words (as `_input_words`)."""
    prefix: list[Any] = []
    tokens = 0
    points: list[Breakpoint] = []
    for block in _prompt_blocks(body):
        if "cachePoint" in block:
            points.append(Breakpoint(prefix_key(model, prefix), tokens))
            continue
        prefix.append(block)
        tokens += _block_words(block)
    return points


# -- InvokeModel for Claude ---------------------------------------------------------------------------------

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# The fake's claim about the service: the values AWS's Claude Messages pages document (computer use, token-
# efficient tools and 128K output on Claude 3.7, interleaved thinking, 1M context) and those LiteLLM's
# per-provider table lists for InvokeModel. Anything else is "invalid beta flag".
INVOKE_BETAS = frozenset(
    {
        "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
        "token-efficient-tools-2025-02-19", "output-128k-2025-02-19", "interleaved-thinking-2025-05-14",
        "context-1m-2025-08-07", "context-management-2025-06-27", "compact-2026-01-12", "effort-2025-11-24",
        "fine-grained-tool-streaming-2025-05-14", "tool-search-tool-2025-10-19",
        "thinking-binding-controls-2026-08-01", "thinking-display-updates-2026-08-18",
        "mid-conversation-output-config-2026-07-01", "mid-conversation-tool-changes-2026-07-01",
        "dangerous-tool-use-2026-09-03",
    }
)  # fmt: skip
INVOKE_FIELDS = {
    "anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "stop_sequences",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "metadata", "output_config",
    "context_management",
}  # fmt: skip


def claude_name(model: str) -> str | None:
    """The Claude model name inside a Bedrock id (`us.anthropic.claude-x-v1:0` → `claude-x-v1:0`)."""
    parts = model.rsplit("/", 1)[-1].split(".")
    for i, part in enumerate(parts[:2]):
        if part == "anthropic" and i + 1 < len(parts):
            return ".".join(parts[i + 1 :])
    return None


def is_profile(model: str) -> bool:
    """Whether `model` is a cross-region inference profile (`us.anthropic.…`, or such a profile's ARN)."""
    parts = model.rsplit("/", 1)[-1].split(".")
    return len(parts) > 2 and parts[1] == "anthropic"


def _extraneous(key: str) -> str:
    return f"Malformed input request: #: extraneous key [{key}] is not permitted, please reformat your input"


def invoke_errors(body: Any, model: str) -> tuple[str | None, dict[str, Any]]:
    """(what InvokeModel would refuse or None, the same request as an Anthropic Messages body)."""
    name = claude_name(model)
    if name is None:
        return f"This fake serves InvokeModel for Anthropic Claude models only, not {model}.", {}
    if not isinstance(body, dict):
        return "Malformed input request: expected type: JSONObject", {}
    for key in body:
        if key not in INVOKE_FIELDS:
            return _extraneous(key), {}
    version = body.get("anthropic_version")
    if version is None:
        return "Malformed input request: #: required key [anthropic_version] not found", {}
    if version != ANTHROPIC_VERSION:
        return f"Malformed input request: anthropic_version: invalid version {version!r}", {}
    betas = body.get("anthropic_beta", [])
    if not isinstance(betas, list) or not all(isinstance(b, str) for b in betas):
        return "Malformed input request: #/anthropic_beta: expected type: JSONArray of strings", {}
    if any(beta not in INVOKE_BETAS for beta in betas):
        return "invalid beta flag", {}
    for block in _cache_controlled(body):
        extra = set(block["cache_control"]) - {"type", "ttl"}
        if extra:
            return _extraneous(sorted(extra)[0]), {}
    messages_body = {k: v for k, v in body.items() if k not in ("anthropic_version", "anthropic_beta")}
    messages_body["model"] = name
    try:
        claude.validate(messages_body, "2023-06-01", frozenset(betas), SIGNING_KEY)
    except claude.Rejected as exc:
        return exc.message, {}
    return None, messages_body


def _cache_controlled(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The system blocks, message content blocks (tool results' too) and tools that carry `cache_control`."""
    found: list[dict[str, Any]] = []
    stack: list[Any] = [body.get("system"), body.get("tools")]
    stack += [m.get("content") for m in body.get("messages") or () if isinstance(m, dict)]
    while stack:
        blocks = stack.pop()
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict):
                if isinstance(block.get("cache_control"), dict):
                    found.append(block)
                if block.get("type") == "tool_result":
                    stack.append(block.get("content"))
    return found


def chunk_frame(event: Mapping[str, Any], pad: int) -> bytes:
    """One InvokeModelWithResponseStream event: the Anthropic event as base64 JSON in `bytes`."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return event_frame("chunk", {"bytes": data, "p": "abcdefghijklmnopqrstuvwxyz"[: 3 + pad % 20]})


def _converse_words(converse: Mapping[str, Any]) -> int:
    tools = (converse.get("toolConfig") or {}).get("tools") or []
    return _input_words({"messages": [], **converse}) + (_words(json.dumps(tools)) if tools else 0)


# -- the model -----------------------------------------------------------------------------------------------


def _arguments(spec: Mapping[str, Any], text: str) -> Any:
    """A tool's input: `name(key=value, …)` in the text spells the call out (exactly those arguments, typed
    by the schema, plus the required ones filled), else the whole schema filled from the text."""
    schema = spec["inputSchema"]["json"]
    spelled = re.search(rf"\b{re.escape(spec['name'])}\(([^)]*)\)", text)
    if spelled is None or schema.get("type", "object") != "object":
        return _fill(schema, text)
    named = dict(re.findall(r"(\w+)\s*=\s*([^,]+?)\s*(?:,|$)", spelled[1]))
    properties = schema.get("properties") or {}
    arguments = {
        name: _fill(properties[name], text) for name in schema.get("required") or () if name in properties
    }
    for name, value in named.items():
        kind = (properties.get(name) or {}).get("type")
        arguments[name] = int(value) if kind == "integer" and value.isdigit() else value
    return arguments


def _fill(schema: Mapping[str, Any], text: str) -> Any:
    """A value that fits `schema`, built from `text`."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties") or {}
        if not properties:
            return {"text": text}
        return {name: _fill(sub, text) for name, sub in properties.items()}
    if kind == "array":
        return [_fill(schema.get("items") or {"type": "string"}, text)]
    if kind in ("integer", "number"):
        return len(text.split())
    if kind == "boolean":
        return True
    return text


def _words(text: str) -> int:
    return len(text.split())


def _block_words(block: Mapping[str, Any]) -> int:
    """The input words of one prompt block: its text and its tool results' (tool specs count nothing)."""
    texts = [block.get("text", "")]
    if "toolResult" in block:
        texts.extend(part.get("text", "") for part in block["toolResult"]["content"])
    return sum(_words(text) for text in texts)


def _input_words(body: Mapping[str, Any]) -> int:
    blocks = [*(body.get("system") or ()), *(b for m in body["messages"] for b in m["content"])]
    return sum(_block_words(block) for block in blocks)


def _id(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def answer(body: Mapping[str, Any], model: str, cache: PromptCache | None = None) -> dict[str, Any]:
    """The deterministic model: a Converse response for a valid request; with a `cache`, its `cachePoint`
    blocks read and write it."""
    last = body["messages"][-1]
    user_text = " ".join(block["text"] for block in last["content"] if "text" in block)
    results = [block["toolResult"] for block in last["content"] if "toolResult" in block]
    config = body.get("toolConfig") or {}
    specs = [tool["toolSpec"] for tool in config.get("tools") or () if "toolSpec" in tool]
    choice = config.get("toolChoice") or {"auto": {}}
    additional = body.get("additionalModelRequestFields") or {}
    inference = body.get("inferenceConfig") or {}
    content: list[dict[str, Any]] = []

    thinking = (additional.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if thinking or "reasoningConfig" in additional:
        reasoning: dict[str, Any] = {"text": f"Thinking about: {user_text}"}
        if thinking:
            reasoning["signature"] = claude_signature(model, reasoning["text"])
        content.append({"reasoningContent": {"reasoningText": reasoning}})

    mentioned = [spec for spec in specs if re.search(rf"\b{re.escape(spec['name'])}\b", user_text)]
    if "tool" in choice:
        calls = [spec for spec in specs if spec["name"] == choice["tool"]["name"]]
    elif "any" in choice:
        calls = mentioned or specs[:1]
    else:
        calls = mentioned
    text_format = (body.get("outputConfig") or {}).get("textFormat")
    if results:
        texts = [
            "".join(part.get("text") or json.dumps(part.get("json")) for part in r["content"])
            for r in results
        ]
        content.append({"text": "Tool results: " + "; ".join(texts)})
    elif calls:
        for spec in calls:
            use_id = "tooluse_" + _id(spec["name"], user_text)
            content.append(
                {
                    "toolUse": {
                        "toolUseId": use_id,
                        "name": spec["name"],
                        "input": _arguments(spec, user_text),
                    }
                }
            )
    elif text_format is not None:
        schema = json.loads(text_format["structure"]["jsonSchema"]["schema"])
        content.append({"text": json.dumps(_fill(schema, user_text))})
    else:
        content.append({"text": f"You said: {user_text}"})

    stop_reason = "tool_use" if any("toolUse" in block for block in content) else "end_turn"
    for block in content:
        if "text" not in block:
            continue
        for stop in inference.get("stopSequences") or ():
            if stop in block["text"]:
                block["text"] = block["text"][: block["text"].index(stop)]
                stop_reason = "stop_sequence"
        words = block["text"].split(" ")
        if inference.get("maxTokens") is not None and len(words) > inference["maxTokens"]:
            block["text"] = " ".join(words[: inference["maxTokens"]])
            stop_reason = "max_tokens"

    output_words = sum(_words(b["text"]) for b in content if "text" in b)
    output_words += sum(_words(json.dumps(b["toolUse"]["input"])) for b in content if "toolUse" in b)
    usage: dict[str, int] = {"inputTokens": _input_words(body), "outputTokens": output_words}
    read, written = (100, 20) if model == "fake.cached" else (0, 0)
    points = cache_points(body, model) if cache is not None else []
    if points and cache is not None:
        read, written = cache.use(points)
        usage["inputTokens"] -= read + written
    elif cache is not None:
        cache.report(read, written)
    if read or written:
        usage |= {"cacheReadInputTokens": read, "cacheWriteInputTokens": written}
    usage["totalTokens"] = sum(usage.values())  # Bedrock's total includes cache reads and writes
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 7},
    }


def stream_events(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ConverseStream events that carry `response`, split the way the real service splits them."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(response["output"]["message"]["content"]):
        if "text" in block:
            pieces = re.findall(r"\S+\s*|\s+", block["text"]) or [""]
            events += [
                ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
                for piece in pieces
            ]
        elif "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            arguments = json.dumps(use["input"])
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                events.append(
                    ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}})
                )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]["reasoningText"]
            delta = {"reasoningContent": {"text": reasoning["text"]}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
            if "signature" in reasoning:
                delta = {"reasoningContent": {"signature": reasoning["signature"]}}
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": response["stopReason"]}))
    events.append(("metadata", {"usage": response["usage"], "metrics": {"latencyMs": 7}}))
    # The real service pads payloads with a random-length `p` field; clients must ignore unknown keys.
    return [
        (kind, {**payload, "p": "abcdefghijklmnopqrstuvwxyz"[: 3 + i % 20]})
        for i, (kind, payload) in enumerate(events)
    ]


# -- the app -------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    operation: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeBedrock:
    """The fake service: `app` to serve, `requests` to inspect what reached it."""

    credentials: Mapping[str, tuple[str, str | None]] = field(
        default_factory=lambda: {ACCESS_KEY: (SECRET_KEY, None)}
    )
    api_keys: Iterable[str] = (API_KEY,)
    region: str = REGION
    requests: list[Recorded] = field(default_factory=list)
    #: The prompt cache behind `cachePoint` and `cache_control`, with the totals of the reads and writes.
    cache: PromptCache = field(default_factory=PromptCache)
    #: Write each ConverseStream in one piece (many frames to a read) instead of pieces of 97 bytes.
    burst: bool = False

    def __post_init__(self) -> None:
        model = botocore.session.get_session().get_service_model("bedrock-runtime")
        self._statuses = {
            shape.name: shape.metadata["error"]["httpStatusCode"] for shape in model.error_shapes
        }
        self._input = model.operation_model("Converse").input_shape
        self._count_input = model.operation_model("CountTokens").input_shape
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])

    def add_credentials(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.credentials = {**self.credentials, access_key: (secret_key, token)}

    def _error(self, name: str, message: str, status: int | None = None) -> Response:
        headers = {"x-amzn-ErrorType": name + _ERROR_NAMESPACE, "x-amzn-RequestId": str(uuid.uuid4())}
        return JSONResponse(
            {"message": message}, status_code=status or self._statuses.get(name, 400), headers=headers
        )

    async def _handle(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode()
        body = await request.body()
        headers = {name: ",".join(request.headers.getlist(name)) for name in request.headers}
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            if authorization[7:] not in set(self.api_keys):
                return self._error(
                    "UnrecognizedClientException",
                    "Invalid API Key format: Must start with pre-defined prefix",
                    403,
                )
        else:
            failure = verify_sigv4(
                method=request.method,
                raw_path=raw_path,
                query=request.scope["query_string"].decode(),
                headers=headers,
                body=body,
                credentials=self.credentials,
                region=self.region,
            )
            if failure is not None:
                return self._error(*failure, status=403)
        match = _PATH.fullmatch(raw_path)
        if match is None:
            return self._error("UnknownOperationException", f"No operation at {raw_path}", 404)
        model, operation = unquote(match["model"]), match["operation"]
        try:
            params = json.loads(body)
        except ValueError:
            return self._error("SerializationException", "The body is not valid JSON")
        if not isinstance(params, dict):
            return self._error("SerializationException", "The body must be an object")
        self.requests.append(Recorded(operation, model, params, headers))
        embedding = embedding_model(model)
        if embedding is not None:
            return self._embed(params, embedding, operation)
        if operation in ("invoke", "invoke-with-response-stream"):
            return self._invoke(params, model, operation)
        if operation == "count-tokens":
            return self._count_tokens(params, model)

        report = ParamValidator().validate({**params, "modelId": model}, self._input)
        errors = [report.generate_report()] if report.has_errors() else []
        _constraints({**params, "modelId": model}, self._input, "", errors)
        if not errors:
            errors = _conversation_errors(params, model)
        if errors:
            return self._error("ValidationException", "; ".join(errors))
        if model.startswith("error."):
            name = model.removeprefix("error.")
            return self._error(name, f"{name} raised for {model}")

        response = answer(params, model, self.cache)
        if operation == "converse":
            return JSONResponse(response, headers={"x-amzn-RequestId": str(uuid.uuid4())})
        return StreamingResponse(
            self._frames(model, response),
            media_type="application/vnd.amazon.eventstream",
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _embed(self, params: dict[str, Any], model: str, operation: str) -> Response:
        if operation != "invoke":
            return self._error("ValidationException", f"The model {model} does not support {operation}.")
        try:
            answer, headers = invoke_embedding(params, model)
        except Refused as exc:
            return self._error("ValidationException", str(exc))
        return JSONResponse(answer, headers={"x-amzn-RequestId": str(uuid.uuid4()), **headers})

    def _invoke(self, params: dict[str, Any], model: str, operation: str) -> Response:
        error, messages_body = invoke_errors(params, model)
        if error is not None:
            return self._error("ValidationException", error)
        prompt = claude.last_user_text(messages_body)
        failure = re.fullmatch(r"FAIL (\w+)", prompt)
        if failure:
            return self._error(failure[1], f"scripted {failure[1]}")
        stream_fault = re.fullmatch(r"FAIL STREAM (\w+)", prompt)
        if stream_fault and operation == "invoke":
            name = stream_fault[1][:1].upper() + stream_fault[1][1:]
            return self._error(name, f"scripted {name}")
        message = claude.respond(messages_body, f"msg_bdrk_{len(self.requests):04d}", self.cache, SIGNING_KEY)
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if operation == "invoke":
            return JSONResponse(message, headers=headers)
        fault = stream_fault[1] if stream_fault else ("CUT" if prompt == "CUT STREAM" else None)
        return StreamingResponse(
            self._invoke_frames(message, fault),
            media_type="application/vnd.amazon.eventstream",
            headers=headers,
        )

    async def _invoke_frames(self, message: dict[str, Any], fault: str | None) -> AsyncIterator[bytes]:
        frames: list[bytes] = []
        for i, (name, event) in enumerate(claude.stream_events(message, fault=fault)):
            if name == "ping":
                continue
            if name == "error":
                frames.append(exception_frame(str(fault), f"scripted {fault}"))
                break
            if name == "message_stop":
                usage = message["usage"]
                metrics = {
                    "inputTokenCount": usage["input_tokens"],
                    "outputTokenCount": usage["output_tokens"],
                    "invocationLatency": 7,
                    "firstByteLatency": 3,
                }
                event = {**event, "amazon-bedrock-invocationMetrics": metrics}
            frames.append(chunk_frame(event, i))
        data = b"".join(frames)
        piece = len(data) if self.burst else 97
        for start in range(0, len(data), piece):
            yield data[start : start + piece]

    def _count_tokens(self, params: dict[str, Any], model: str) -> Response:
        report = ParamValidator().validate({**params, "modelId": model}, self._count_input)
        errors = [report.generate_report()] if report.has_errors() else []
        _constraints({**params, "modelId": model}, self._count_input, "", errors)
        if errors:
            return self._error("ValidationException", "; ".join(errors))
        if claude_name(model) is None or is_profile(model):
            return self._error("ValidationException", "The provided model doesn't support counting tokens.")
        counted = params["input"]
        if "invokeModel" in counted:
            try:
                body = json.loads(base64.b64decode(counted["invokeModel"]["body"], validate=True))
            except (binascii.Error, ValueError):
                return self._error("ValidationException", "The provided request body is not valid JSON.")
            error, messages_body = invoke_errors(body, model)
            if error is not None:
                return self._error("ValidationException", error)
            return JSONResponse({"inputTokens": claude.count_input(messages_body)})
        converse = {"messages": [], **counted["converse"]}
        errors = _conversation_errors(converse, model)
        if errors:
            return self._error("ValidationException", "; ".join(errors))
        return JSONResponse({"inputTokens": _converse_words(converse)})

    async def _frames(self, model: str, response: Mapping[str, Any]) -> AsyncIterator[bytes]:
        events = stream_events(response)
        frames = [event_frame(kind, payload) for kind, payload in events]
        if model.startswith("stream-error."):
            yield frames[0] + frames[1]
            yield exception_frame(
                model.removeprefix("stream-error."), "Too many tokens, please wait before trying again."
            )
            return
        if model == "stream-cut":
            yield b"".join(frames[:3])
            yield frames[3][:20]
            return
        if model == "stream-no-metadata":
            frames = frames[:-1]
        if model == "stream-bad-crc":
            broken = bytearray(frames[2])
            broken[-6] ^= 0xFF
            frames[2] = bytes(broken)
        # Real responses arrive in arbitrary pieces: two frames and a half, and so on.
        data = b"".join(frames)
        piece = len(data) if self.burst else 97
        for start in range(0, len(data), piece):
            yield data[start : start + piece]


#: Variables through which the machine running the tests could leak credentials or a region into a test.
AWS_ENVIRONMENT = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def isolate_aws_environment(monkeypatch: Any, folder: Path) -> Path:
    """An empty AWS environment whose config and credentials files live in `folder` (returned)."""
    for name in AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return folder
