"""Validators built from OpenAI's official OpenAPI document (shared/specs/openai), to check what the gateway
emits and what fake upstreams receive against the real contract, not against our own schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "specs" / "openai" / "chat_completions.openapi.json"


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI's `nullable: true` is not JSON Schema: turn it into a union with null."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _document() -> dict[str, Any]:
    return _openapi_to_json_schema(json.loads(SPEC_PATH.read_text()))  # type: ignore[no-any-return]


@functools.cache
def validator(component: str) -> jsonschema.protocols.Validator:
    document = _document()
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("urn:openai", resource)
    schema = {"$ref": f"urn:openai#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_valid(component: str, instance: Any) -> None:
    """Fail with the first violation of the official schema."""
    errors = sorted(validator(component).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        path = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(
            f"not a valid {component} at /{path}: {error.message}\n{json.dumps(instance)[:2000]}"
        )


@functools.cache
def request_properties() -> frozenset[str]:
    """Every top-level field of CreateChatCompletionRequest, following `allOf` and `$ref`."""
    schemas = _document()["components"]["schemas"]

    def collect(node: dict[str, Any]) -> set[str]:
        if "$ref" in node:
            return collect(schemas[node["$ref"].rsplit("/", 1)[-1]])
        names = set(node.get("properties", {}))
        for part in node.get("allOf", ()):
            names |= collect(part)
        return names

    return frozenset(collect(schemas["CreateChatCompletionRequest"]))
