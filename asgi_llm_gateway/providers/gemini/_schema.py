"""A client's JSON Schema in the two forms Gemini takes.

`sanitize_json_schema` keeps full JSON Schema (`parametersJsonSchema`, `responseJsonSchema`: v1beta), reduced
to the keywords Google documents; `to_openapi_schema` converts to the OpenAPI-subset `Schema` (`parameters`,
`responseSchema`: what API v1 has). Why two: docs/providers/gemini.md ("Schemas").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import GatewayError
from ...translate import unsupported
from ._errors import KIND

__all__ = ["sanitize_json_schema", "to_openapi_schema"]

JSON = dict[str, Any]

# What `responseJsonSchema` documents (and what we also send as `parametersJsonSchema`).
_JSON_SCHEMA_KEYWORDS = frozenset({
    "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items",
    "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties",
    "additionalProperties", "required", "propertyOrdering",
})  # fmt: skip
# The OpenAPI-subset `Schema` message, minus the newest additions that older API versions lack.
_OPENAPI_KEYWORDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "anyOf", "propertyOrdering",
})  # fmt: skip
_OPENAPI_FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}


# -- JSON Schema, sanitised ------------------------------------------------------------------------------


def sanitize_json_schema(schema: Any, param: str) -> Any:
    """A client's JSON Schema (e.g. Pydantic's) reduced to the keywords Gemini documents; `$defs` kept."""
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    if "const" in schema and "enum" not in schema:
        out["enum"] = [schema["const"]]
    kinds = schema.get("type")
    split = isinstance(kinds, list) and len(kinds) > 1  # ["string", "null"] becomes an anyOf
    for key, value in schema.items():
        if key == "enum" and split:
            continue  # moved into the typed branches
        if key == "allOf":
            if not isinstance(value, list) or len(value) != 1:
                raise unsupported(KIND, param, "'allOf' with more than one schema cannot be expressed")
            _set_any_of(out, [sanitize_json_schema(value[0], f"{param}.allOf[0]")], param)
        elif key not in _JSON_SCHEMA_KEYWORDS:
            continue
        elif key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {
                name: sanitize_json_schema(sub, f"{param}.{key}.{name}") for name, sub in value.items()
            }
        elif key == "anyOf" and isinstance(value, list):
            _set_any_of(out, [sanitize_json_schema(sub, f"{param}.anyOf") for sub in value], param)
        elif key in ("oneOf", "prefixItems") and isinstance(value, list):
            out[key] = [sanitize_json_schema(sub, f"{param}.{key}") for sub in value]
        elif key in ("items", "additionalProperties"):
            out[key] = sanitize_json_schema(value, f"{param}.{key}")
        elif key == "type" and split:
            _set_any_of(out, [_typed_branch(kind, schema.get("enum")) for kind in value], param)
        elif key == "type" and isinstance(value, list):
            out[key] = value[0] if value else "object"
        else:
            out[key] = value
    if "$ref" in out and any(not key.startswith("$") for key in out):
        # "If $ref is set on a sub-schema, no other properties, except those starting with $, may be set."
        _set_any_of(out, [{"$ref": out.pop("$ref")}], param)
    return out


def _typed_branch(kind: Any, enum: Any) -> JSON:
    """One branch of a split type list, with the enum values of that type (enums hold strings and numbers)."""
    branch: JSON = {"type": kind}
    checks = {"string": (str,), "integer": (int,), "number": (int, float)}
    if isinstance(enum, list) and kind in checks:
        values = [v for v in enum if isinstance(v, checks[kind]) and not isinstance(v, bool)]
        if values:
            branch["enum"] = values
    return branch


def _set_any_of(out: JSON, branches: list[Any], param: str) -> None:
    """`allOf: [x]`, a type list and a `$ref` with siblings all become `anyOf`; two of them cannot."""
    if "anyOf" in out:
        raise unsupported(KIND, param, "this combination of anyOf/allOf/$ref/type cannot be expressed")
    out["anyOf"] = branches


# -- OpenAPI-subset Schema -------------------------------------------------------------------------------

Defs = Mapping[str, Any]


def to_openapi_schema(schema: Any, param: str) -> JSON:
    """A client's JSON Schema as Gemini's OpenAPI-subset `Schema`: refs inlined, nullability explicit."""
    if not isinstance(schema, dict):
        return {}
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _openapi(schema, defs, (), param)


def _openapi(schema: Any, defs: Defs, seen: tuple[str, ...], param: str) -> JSON:
    """One (sub)schema; `seen` holds the definitions being inlined, to refuse recursion."""
    if not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        return _inline_ref(schema, defs, seen, param)
    schema = _without_all_of_and_one_of(schema, defs, seen, param)
    kind, nullable = _split_type_list(schema)
    out: JSON = {}
    if isinstance(schema.get("anyOf"), list):
        nullable = _convert_any_of(out, schema["anyOf"], defs, seen, param) or nullable
    if isinstance(kind, str):
        out["type"] = kind.upper()
    if "const" in schema and "enum" not in schema:
        schema["enum"] = [schema["const"]]
    keywords, null_in_enum = _keywords(schema, out.get("type", ""), defs, seen, param)
    out.update(keywords)
    if nullable or null_in_enum:
        out["nullable"] = True
    return out


def _inline_ref(schema: JSON, defs: Defs, seen: tuple[str, ...], param: str) -> JSON:
    """`Schema` has no references: the definition is inlined, with the referring schema's other keys."""
    name = str(schema["$ref"]).rsplit("/", 1)[-1]
    if name not in defs:
        raise GatewayError(f"schema reference {schema['$ref']!r} is not defined", param=param)
    if name in seen:
        raise unsupported(KIND, param, "recursive schemas need api_version 'v1beta'")
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return _openapi({**defs[name], **siblings}, defs, (*seen, name), param)


def _without_all_of_and_one_of(schema: JSON, defs: Defs, seen: tuple[str, ...], param: str) -> JSON:
    """A copy with a one-schema `allOf` merged in and `oneOf` read as `anyOf` (`Schema` has neither)."""
    schema = dict(schema)
    all_of = schema.pop("allOf", None)
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1 or not isinstance(all_of[0], dict):
            raise unsupported(KIND, param, "'allOf' with more than one schema cannot be expressed")
        schema = {**_openapi(all_of[0], defs, seen, f"{param}.allOf[0]"), **schema}
    one_of = schema.pop("oneOf", None)
    if isinstance(one_of, list):
        schema["anyOf"] = [*schema.get("anyOf", ()), *one_of]
    return schema


def _split_type_list(schema: JSON) -> tuple[Any, bool]:
    """(type, nullable) for `Schema`, which takes one type: "null" in a type list becomes `nullable`, and
    several other types become `anyOf` branches (added to `schema`)."""
    kind = schema.get("type")
    if not isinstance(kind, list):
        return kind, False
    kinds = [k for k in kind if k != "null"]
    if len(kinds) == 1:
        return kinds[0], "null" in kind
    schema["anyOf"] = [*schema.get("anyOf", ()), *({"type": k} for k in kinds)]
    return None, "null" in kind


def _convert_any_of(out: JSON, any_of: list[Any], defs: Defs, seen: tuple[str, ...], param: str) -> bool:
    """Converts the branches into `out` (one branch is inlined); true when a `null` branch was dropped."""
    branches = [b for b in any_of if not (isinstance(b, dict) and b.get("type") == "null")]
    converted = [_openapi(b, defs, seen, f"{param}.anyOf") for b in branches]
    if len(converted) == 1:
        out.update(converted[0])
    elif converted:
        out["anyOf"] = converted
    return len(branches) < len(any_of)


def _keywords(schema: JSON, kind: str, defs: Defs, seen: tuple[str, ...], param: str) -> tuple[JSON, bool]:
    """(the keywords `Schema` takes, converted; whether the enum held null). `type` and `anyOf` are done."""
    out: JSON = {}
    null_in_enum = False
    for key, value in schema.items():
        if key not in _OPENAPI_KEYWORDS or key in ("type", "anyOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                name: _openapi(sub, defs, seen, f"{param}.properties.{name}") for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _openapi(value, defs, seen, f"{param}.items")
        elif key == "enum" and isinstance(value, list):
            null_in_enum = null_in_enum or None in value
            values = [item for item in value if item is not None]
            if values and all(isinstance(item, str) for item in values):
                out[key] = values  # `Schema.enum` holds strings only
        elif key == "format":
            if value in _OPENAPI_FORMATS.get(kind, ()):
                out[key] = value
        else:
            out[key] = value
    return out, null_in_enum
