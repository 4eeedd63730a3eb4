"""InvokeModel for Bedrock's embedding models, for the fake Bedrock Runtime (`bedrock.py`): Amazon Titan Text
Embeddings v1 and v2 and Cohere Embed v3 and v4, with the bodies and limits of the Amazon Bedrock user
guide ("Amazon Titan Embeddings Text", "Cohere Embed v3", "Cohere Embed v4").

Titan takes one `inputText` (non-empty; v2 also `dimensions` 256/512/1024, `normalize`, `embeddingTypes`)
and answers `embedding` and `inputTextTokenCount`. Cohere takes `texts` (1 to 96, each at most 2048
characters) and requires `input_type`; `truncate`, `embedding_types` (answered "embeddings_by_type") and,
on v4, `output_dimension` (256/512/1024/1536) are optional. Any other key is refused ("extraneous key").
Vectors are the echo provider's (`echo_embedding`); a token is a word, and Cohere's count is sent in the
`X-Amzn-Bedrock-Input-Token-Count` header as Bedrock does.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgi_llm_gateway.providers.echo import echo_embedding

#: The embedding models and the size of their vectors.
EMBEDDING_MODELS = {
    "amazon.titan-embed-text-v1": 1536,
    "amazon.titan-embed-text-v2:0": 1024,
    "cohere.embed-english-v3": 1024,
    "cohere.embed-multilingual-v3": 1024,
    "cohere.embed-v4:0": 1536,
}
_TITAN_V1_KEYS = frozenset({"inputText"})
_TITAN_V2_KEYS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"})
_COHERE_V3_KEYS = frozenset({"texts", "images", "input_type", "truncate", "embedding_types"})
_COHERE_V4_KEYS = _COHERE_V3_KEYS | {"output_dimension", "max_tokens", "inputs"}
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})
MAX_COHERE_TEXTS = 96
MAX_COHERE_CHARACTERS = 2048

Answer = tuple[dict[str, Any], dict[str, str]]


class Refused(Exception):
    """A body InvokeModel refuses (a ValidationException)."""


def embedding_model(model: str) -> str | None:
    """The foundation model an id names (without region prefix or ARN), if it is an embedding model."""
    name = model.rsplit("/", 1)[-1]
    for known in EMBEDDING_MODELS:
        if name == known or name.endswith("." + known):
            return known
    return None


def _extraneous(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in body:
        if key not in allowed:
            raise Refused(f"Malformed input request: #: extraneous key [{key}] is not permitted")


def invoke_embedding(body: dict[str, Any], model: str) -> Answer:
    """(answer, headers) for an InvokeModel body on an embedding model; raises `Refused`."""
    if model.startswith("amazon."):
        return _titan(body, model)
    return _cohere(body, model)


def _words(text: str) -> int:
    return len(text.split())


def _titan(body: dict[str, Any], model: str) -> Answer:
    v2 = model == "amazon.titan-embed-text-v2:0"
    _extraneous(body, _TITAN_V2_KEYS if v2 else _TITAN_V1_KEYS)
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        raise Refused("Malformed input request: #/inputText: expected minLength: 1, actual: 0")
    size = body.get("dimensions", EMBEDDING_MODELS[model])
    if size not in (256, 512, 1024) and v2:
        raise Refused(f"Malformed input request: #/dimensions: {size} is not a valid enum value")
    tokens = _words(text)
    answer = {"embedding": echo_embedding(text, size), "inputTextTokenCount": tokens}
    return answer, {"x-amzn-bedrock-input-token-count": str(tokens)}


def _cohere(body: dict[str, Any], model: str) -> Answer:
    v4 = model == "cohere.embed-v4:0"
    _extraneous(body, _COHERE_V4_KEYS if v4 else _COHERE_V3_KEYS)
    if body.get("input_type") not in _INPUT_TYPES:
        raise Refused("Malformed input request: #: required key [input_type] not found or not valid")
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise Refused("Malformed input request: #/texts: expected type: JSONArray of strings")
    if not 1 <= len(texts) <= MAX_COHERE_TEXTS:
        raise Refused(
            f"Malformed input request: #/texts: expected maxItems: {MAX_COHERE_TEXTS}, actual: {len(texts)}"
        )
    if any(len(text) > MAX_COHERE_CHARACTERS for text in texts):
        raise Refused(f"Malformed input request: #/texts: expected maxLength: {MAX_COHERE_CHARACTERS}")
    size = body.get("output_dimension", EMBEDDING_MODELS[model])
    if size not in (256, 512, 1024, 1536) and v4:
        raise Refused(f"Malformed input request: #/output_dimension: {size} is not a valid enum value")
    vectors = [echo_embedding(text, size) for text in texts]
    answer: dict[str, Any] = {"id": str(uuid.uuid4()), "texts": texts}
    if body.get("embedding_types"):
        answer.update(response_type="embeddings_by_type", embeddings={"float": vectors})
    else:
        answer.update(response_type="embeddings_floats", embeddings=vectors)
    tokens = sum(_words(text) for text in texts)
    return answer, {"x-amzn-bedrock-input-token-count": str(tokens)}
