"""What OpenAI's and Mistral's embeddings endpoints refuse, for the fake OpenAI-family upstream (`openai.py`).

OpenAI: the body is checked against the official `CreateEmbeddingRequest` (tests/specs/openai/
embeddings.openapi.json: no unknown fields, `input` one of its four shapes with 1 to 2048 items,
`encoding_format` float or base64); beyond the document, an empty string anywhere in `input` is refused
(OpenAI answers "'$.input' is invalid"), `dimensions` is refused on text-embedding-ada-002 and above a
model's size, and unknown models are a 404.

Mistral (docs.mistral.ai, "Embeddings"; its OpenAPI `EmbeddingRequest`): only `model`, `input`,
`output_dimension`, `output_dtype`, `encoding_format` and `metadata` (anything else, `dimensions` included,
is a 422 "Extra inputs are not permitted"); `input` is text, a string or a list of strings (a token array is
a 422); `output_dimension` only on codestral-embed, up to 3072.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "embeddings.openapi.json"

#: The size of each model's vectors.
EMBEDDING_SIZES = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "mistral-embed": 1024,
    "codestral-embed": 1536,
}
OPENAI_MODELS = frozenset({"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"})
MISTRAL_MODELS = frozenset({"mistral-embed", "codestral-embed"})
MISTRAL_FIELDS = frozenset(
    {"model", "input", "output_dimension", "output_dtype", "encoding_format", "metadata"}
)
_SHORTENED = frozenset({"text-embedding-3-small", "text-embedding-3-large"})  # models that take `dimensions`
_MISTRAL_MAX_DIMENSION = {"codestral-embed": 3072}

Failure = tuple[int, dict[str, Any]]


@functools.cache
def embeddings_validator(component: str) -> jsonschema.protocols.Validator:
    """The official schema of `component` (CreateEmbeddingRequest, CreateEmbeddingResponse, Embedding)."""
    document = json.loads(SPEC.read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:openai-embeddings", resource)
    schema = {"$ref": f"urn:openai-embeddings#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def embedding_request_errors(body: Any, flavour: str) -> Failure | None:
    """(status, error body) for a request the real upstream refuses; None for one it serves."""
    return _mistral(body) if flavour == "mistral" else _openai(body)


def _openai_error(status: int, message: str, param: str | None, code: str | None = None) -> Failure:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return status, {"error": error}


def _openai(body: Any) -> Failure | None:
    errors = list(embeddings_validator("CreateEmbeddingRequest").iter_errors(body))
    if errors:
        error = errors[0]
        path = ".".join(map(str, error.absolute_path))
        if error.validator == "additionalProperties":
            extra = sorted(set(body) - set(error.schema["properties"]))[0]
            return _openai_error(400, f"Unrecognized request argument supplied: {extra}", extra)
        return _openai_error(400, f"'$.{path or 'body'}' is invalid. Please check the API reference.", path)
    items = body["input"]
    if items == "" or (isinstance(items, list) and "" in items):
        return _openai_error(400, "'$.input' is invalid. Please check the API reference.", "input")
    model = body["model"]
    if model not in OPENAI_MODELS:
        return _openai_error(404, f"The model `{model}` does not exist.", "model", "model_not_found")
    dimensions = body.get("dimensions")
    if dimensions is not None and model not in _SHORTENED:
        return _openai_error(400, "This model does not support specifying dimensions.", "dimensions")
    size = EMBEDDING_SIZES[model]
    if dimensions is not None and dimensions > size:
        return _openai_error(400, f"This model supports at most {size} dimensions.", "dimensions")
    return None


def _mistral_422(location: list[Any], kind: str, message: str) -> Failure:
    return 422, {
        "object": "error",
        "message": {"detail": [{"type": kind, "loc": location, "msg": message}]},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def _mistral(body: Any) -> Failure | None:
    for key in body:
        if key not in MISTRAL_FIELDS:
            return _mistral_422(["body", key], "extra_forbidden", "Extra inputs are not permitted")
    items = body.get("input")
    texts = [items] if isinstance(items, str) else items
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        return _mistral_422(["body", "input"], "string_type", "Input should be a valid string")
    if body.get("model") not in MISTRAL_MODELS:
        return 400, {"object": "error", "message": "Invalid model", "type": "invalid_model", "code": "1500"}
    dimension = body.get("output_dimension")
    if dimension is not None and dimension > _MISTRAL_MAX_DIMENSION.get(body["model"], 0):
        return 400, {
            "object": "error",
            "message": f"output_dimension {dimension} is not supported for {body['model']}",
            "type": "invalid_request_error",
            "code": "3051",
        }
    return None
