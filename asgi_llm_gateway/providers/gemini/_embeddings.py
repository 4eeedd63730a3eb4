"""Embeddings on the Gemini Developer API: `models/{id}:embedContent` for one input, `:batchEmbedContents`
for several (at most `BATCH_SIZE` per call: the API's limit). Pure.

    gateway request (embeddings.py)        Gemini
    input[i]                               content.parts[0].text (token arrays are decoded to text first:
                                           `embeddings.input_texts`)
    dimensions                             outputDimensionality
    task_type                              taskType, as given (RETRIEVAL_QUERY, SEMANTIC_SIMILARITY, …)
    input_type (without task_type)         taskType: search_document → RETRIEVAL_DOCUMENT, search_query →
                                           RETRIEVAL_QUERY, classification → CLASSIFICATION, clustering →
                                           CLUSTERING
    user, other fields                     dropped (proto JSON refuses fields it does not know)
    answer embedding.values, embeddings[i].values → data[i].embedding

Usage: the API's answers document no token count. When one carries `usageMetadata.promptTokenCount` it is
reported; otherwise `prompt_tokens` is 0 (unknown, not estimated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..embeddings import task_type_of, vector_of
from ..streams import bad_upstream_data
from ._errors import KIND

__all__ = ["BATCH_SIZE", "batch_body", "batch_vectors", "content_body", "content_vector"]

#: The most requests one `batchEmbedContents` call takes.
BATCH_SIZE = 100


def _options(request: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    task_type = task_type_of(request)
    if task_type is not None:
        options["taskType"] = task_type
    if request.get("dimensions") is not None:
        options["outputDimensionality"] = request["dimensions"]
    return options


def content_body(text: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """An `embedContent` body for one text."""
    return {"content": {"parts": [{"text": text}]}, **_options(request)}


def batch_body(texts: Sequence[str], request: Mapping[str, Any], resource: str) -> dict[str, Any]:
    """A `batchEmbedContents` body; `resource` (`models/{id}`) must name the model of the URL."""
    options = _options(request)
    return {
        "requests": [{"model": resource, "content": {"parts": [{"text": text}]}, **options} for text in texts]
    }


def _tokens(answer: Mapping[str, Any]) -> int:
    usage = answer.get("usageMetadata")
    count = usage.get("promptTokenCount") if isinstance(usage, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else 0


def content_vector(answer: Any) -> tuple[list[float], int]:
    """(vector, prompt tokens) of an `embedContent` answer."""
    embedding = answer.get("embedding") if isinstance(answer, dict) else None
    if not isinstance(embedding, dict):
        raise bad_upstream_data(KIND, "an embedContent answer without 'embedding'")
    return vector_of(embedding.get("values"), KIND), _tokens(answer)


def batch_vectors(answer: Any, count: int) -> tuple[list[list[float]], int]:
    """(vectors, prompt tokens) of a `batchEmbedContents` answer for `count` texts."""
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if not isinstance(embeddings, list) or len(embeddings) != count:
        raise bad_upstream_data(KIND, f"a batchEmbedContents answer without {count} embeddings")
    vectors = [vector_of(item.get("values") if isinstance(item, dict) else None, KIND) for item in embeddings]
    return vectors, _tokens(answer)
