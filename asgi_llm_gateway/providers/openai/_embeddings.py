"""Embeddings for the OpenAI family: the request as the upstream takes it, and its answer checked. Pure.

    gateway request (embeddings.py)        upstream `POST {base}/embeddings`
    input (list)                           input, as is; token arrays decoded to text first unless the
                                           row takes them (`Quirks.embedding_tokens`: OpenAI and Azure)
    dimensions                             dimensions (Mistral: output_dimension, `embedding_renames`)
    user, unknown fields                   forwarded, unless the row lists its fields (Mistral)
    encoding_format, input_type, task_type never: the gateway encodes base64 itself, and the other two
                                           are its extensions for Gemini and Cohere

The upstream is always asked for floats, so every provider answers the door alike; `data` comes back sorted
by `index` and must hold one vector per input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..embeddings import embedding_list, vector_of
from ..streams import bad_upstream_data
from ._quirks import Quirks

__all__ = ["embeddings_answer", "embeddings_body"]

#: Request fields that are the gateway's business, never an OpenAI-family upstream's.
_GATEWAY_FIELDS = frozenset({"encoding_format", "input_type", "task_type"})


def embeddings_body(
    request: Mapping[str, Any], model: str, quirks: Quirks, texts: Sequence[str] | None = None
) -> dict[str, Any]:
    """The upstream's body: `model` replaced, `input` as `texts` when given (decoded token arrays), fields
    renamed and filtered by the row; null fields left out (null means absent)."""
    renames = quirks.embedding_renames
    allowed = quirks.embedding_fields
    body: dict[str, Any] = {}
    for key, value in request.items():
        if value is None or key in _GATEWAY_FIELDS:
            continue
        key = renames.get(key, key)
        if allowed is None or key in allowed:
            body[key] = value
    body["model"] = model
    body["input"] = list(texts) if texts is not None else list(request["input"])
    return body


def embeddings_answer(native: Any, model: str, count: int, kind: str) -> dict[str, Any]:
    """The upstream's answer in the gateway's shape: float vectors in input order, usage (zero when the
    upstream reported none)."""
    data = native.get("data") if isinstance(native, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise bad_upstream_data(kind, f"an embeddings answer without {count} vector(s) in 'data'")
    by_index: dict[int, list[float]] = {}
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise bad_upstream_data(kind, "an embedding that is not an object")
        index = item.get("index", position)
        if not isinstance(index, int) or not 0 <= index < count or index in by_index:
            raise bad_upstream_data(kind, "embeddings whose 'index' values do not match the inputs")
        by_index[index] = vector_of(item.get("embedding"), kind)
    usage = native.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    prompt_tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else 0
    return embedding_list([by_index[index] for index in range(count)], model, prompt_tokens)
