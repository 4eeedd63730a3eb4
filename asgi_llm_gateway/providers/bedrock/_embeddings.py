"""Embeddings on Bedrock through InvokeModel: Amazon Titan Text Embeddings and Cohere Embed. Pure.

Titan (`amazon.titan-embed-text-v1`, `amazon.titan-embed-text-v2:0`) embeds one text per call; the
provider makes the calls concurrently (`TITAN_CONCURRENCY` at once) and keeps input order.

    gateway request (embeddings.py)     Titan body
    input[i]                            inputText (token arrays are decoded to text first)
    dimensions                          dimensions: 256, 512 or 1024 on v2; v1 has its fixed size only
    —                                   normalize: true on v2 (OpenAI's vectors are unit length)
    answer embedding → data[i].embedding; inputTextTokenCount, summed → usage

Cohere (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`) takes up to
`COHERE_BATCH` texts per call; more are sent in several calls.

    gateway request                     Cohere body
    input                               texts
    input_type                          input_type (required by Cohere). Without it: the one `task_type`
                                        stands for, else search_document (what a RAG pipeline's documents
                                        need; queries should say search_query)
    dimensions                          v4: output_dimension (256, 512, 1024 or 1536); v3: 1024 only
    —                                   embedding_types: ["float"]
    answer embeddings.float (or a bare list: Cohere's "embeddings_floats" answer) → data[i].embedding;
    tokens from the `X-Amzn-Bedrock-Input-Token-Count` header → usage

`user` and other fields are dropped: InvokeModel refuses keys it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..embeddings import INPUT_TYPES, unsupported_dimensions, vector_of
from ..streams import bad_upstream_data
from ._errors import KIND
from ._names import model_family, model_name

__all__ = [
    "COHERE",
    "COHERE_BATCH",
    "TITAN",
    "TITAN_CONCURRENCY",
    "cohere_body",
    "cohere_vectors",
    "embedding_family",
    "titan_body",
    "titan_vector",
]

TITAN = "titan"
COHERE = "cohere"
#: The most texts one Cohere Embed call takes.
COHERE_BATCH = 96
#: How many Titan calls (one text each) one request makes at once.
TITAN_CONCURRENCY = 8
#: The header in which InvokeModel answers say how many input tokens were billed.
TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count"

_TITAN_V2_SIZES = (256, 512, 1024)
_COHERE_V4_SIZES = (256, 512, 1024, 1536)
_COHERE_V3_SIZE = 1024
_TASK_INPUT_TYPES = {task: input_type for input_type, task in INPUT_TYPES.items()}


def embedding_family(model: str) -> str | None:
    """`titan` or `cohere` for the embedding models this module speaks; None for any other model."""
    family, name = model_family(model), model_name(model)
    if family == "amazon" and name.startswith("titan-embed-text"):
        return TITAN
    if family == "cohere" and name.startswith("embed"):
        return COHERE
    return None


def titan_body(text: str, request: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The InvokeModel body for one text on Titan; 400 naming `dimensions` for a size the model lacks."""
    dimensions = request.get("dimensions")
    if not model_name(model).startswith("titan-embed-text-v2"):
        if dimensions is not None:
            raise unsupported_dimensions(KIND, model)
        return {"inputText": text}
    body: dict[str, Any] = {"inputText": text, "normalize": True}
    if dimensions is not None:
        if dimensions not in _TITAN_V2_SIZES:
            raise unsupported_dimensions(KIND, model, _TITAN_V2_SIZES)
        body["dimensions"] = dimensions
    return body


def titan_vector(answer: Any) -> tuple[list[float], int]:
    """(vector, input tokens) of a Titan answer."""
    if not isinstance(answer, dict):
        raise bad_upstream_data(KIND, "a Titan answer that is not an object")
    tokens = answer.get("inputTextTokenCount")
    count = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else 0
    return vector_of(answer.get("embedding"), KIND), count


def cohere_body(texts: Sequence[str], request: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The InvokeModel body for up to `COHERE_BATCH` texts on Cohere Embed; 400 naming `dimensions` for a
    size the model lacks."""
    input_type = request.get("input_type")
    if input_type is None:
        input_type = _TASK_INPUT_TYPES.get(request.get("task_type") or "", "search_document")
    body: dict[str, Any] = {"texts": list(texts), "input_type": input_type, "embedding_types": ["float"]}
    dimensions = request.get("dimensions")
    if dimensions is not None:
        if model_name(model).startswith("embed-v4"):
            if dimensions not in _COHERE_V4_SIZES:
                raise unsupported_dimensions(KIND, model, _COHERE_V4_SIZES)
            body["output_dimension"] = dimensions
        elif dimensions != _COHERE_V3_SIZE:
            raise unsupported_dimensions(KIND, model, (_COHERE_V3_SIZE,))
    return body


def cohere_vectors(answer: Any, count: int, headers: Mapping[str, str]) -> tuple[list[list[float]], int]:
    """(vectors, input tokens) of a Cohere Embed answer for `count` texts and the answer's headers."""
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if isinstance(embeddings, dict):  # "embeddings_by_type"
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or len(embeddings) != count:
        raise bad_upstream_data(KIND, f"a Cohere Embed answer without {count} float embeddings")
    raw = headers.get(TOKEN_COUNT_HEADER, "")
    tokens = int(raw) if raw.isdigit() else 0
    return [vector_of(vector, KIND) for vector in embeddings], tokens
