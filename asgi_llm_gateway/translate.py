"""Pure helpers that every translator needs when reading an OpenAI request (or, for the doors, an answer).

Kept here once so providers never carry copies with small variations.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from .errors import GatewayError
from .wire import loads

__all__ = [
    "DataURL",
    "answer_text",
    "json_schema_of",
    "max_tokens_of",
    "parse_arguments",
    "parse_data_url",
    "stop_of",
    "text_of",
    "unsupported",
]

Request = Mapping[str, Any]


def unsupported(provider: str, param: str, detail: str = "") -> GatewayError:
    """A field the upstream cannot honour and that cannot be dropped without changing the answer."""
    suffix = f": {detail}" if detail else ""
    return GatewayError(
        f"'{param}' is not supported by the {provider} provider{suffix}",
        status=400,
        param=param,
        code="unsupported_parameter",
    )


def answer_text(content: Any) -> str:
    """The text of an answer's message content: a string, or the text of a list of parts (some upstreams
    answer with parts). Lenient where `text_of` is strict: an upstream's answer is not the client's fault."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


def text_of(content: Any, param: str = "content") -> str:
    """The text of a message content that may only hold text: a string, null, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for i, part in enumerate(content):
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "refusal":
            texts.append(part.get("refusal", ""))
        else:
            raise GatewayError(
                f"content part type '{part.get('type')}' is not allowed here; only text",
                param=f"{param}[{i}].type",
                code="invalid_value",
            )
    return "".join(texts)


class DataURL:
    """A parsed `data:<media type>;base64,<data>` URL."""

    __slots__ = ("data", "media_type")

    def __init__(self, media_type: str, data: str) -> None:
        self.media_type = media_type
        self.data = data  # base64 text, as received


def parse_data_url(url: str, param: str = "image_url.url") -> DataURL | None:
    """A data URL's parts, or None for any other URL. A malformed data URL is a 400."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise GatewayError("data URLs must be base64 encoded: data:<type>;base64,<data>", param=param)
    media_type = header[: -len(";base64")].split(";")[0] or "application/octet-stream"
    try:
        base64.b64decode(data[:1024].rstrip("=") + "=" * (-len(data[:1024].rstrip("=")) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise GatewayError("the data URL does not hold valid base64", param=param) from None
    return DataURL(media_type.lower(), data)


def parse_arguments(arguments: Any, param: str) -> dict[str, Any]:
    """Tool-call arguments (a JSON string on the OpenAI wire) as the object native APIs want."""
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    try:
        value = loads(arguments)
    except ValueError:
        raise GatewayError("tool call arguments must be a JSON object string", param=param) from None
    if not isinstance(value, dict):
        raise GatewayError("tool call arguments must be a JSON object", param=param)
    return value


def max_tokens_of(request: Request) -> int | None:
    """The output cap: `max_completion_tokens`, else the deprecated `max_tokens`."""
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    return value


def stop_of(request: Request) -> list[str] | None:
    """`stop` as a list (it may be a string)."""
    stop = request.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def json_schema_of(request: Request) -> tuple[str, dict[str, Any] | None] | None:
    """(`kind`, schema) for a JSON `response_format`: ("json_object", None) or ("json_schema", schema)."""
    response_format = request.get("response_format")
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        return "json_schema", spec.get("schema") or {"type": "object"}
    return None
