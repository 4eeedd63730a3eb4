"""The embeddings request contract (`embeddings_request.schema.json`) and its validation, as for the other
doors (see the package docstring: first violation → a 400 whose `param` is the JSON path, `input[3]`).

One rule is checked after the schema, because a schema could only say it with `oneOf` and then could not say
where a violation is: a list `input` holds one kind of item — strings, token ids, or token arrays — as
OpenAI requires. Token ids must be JSON integers (not `1.0`), which jsonschema-rs alone would let through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError
from . import _check, _is_json_integer, _read

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

__all__ = ["load_embeddings_request_schema", "validate_embeddings_request"]

_SCHEMA_FILE = "embeddings_request.schema.json"
_KINDS = {str: "a string", int: "a token id (an integer)", list: "a token array"}


def load_embeddings_request_schema() -> dict[str, Any]:
    """A fresh copy of the embeddings request schema (callers may change it)."""
    return _read(_SCHEMA_FILE)


def validate_embeddings_request(body: object) -> None:
    """Raise `GatewayError` 400 for the first way `body` breaks the embeddings contract."""
    _check(body, _fast_validator(), _reference_validator)
    assert isinstance(body, dict)
    if type(body.get("dimensions")) is float:  # 1.0 passed jsonschema-rs: let the reference explain it
        _check(body, None, _reference_validator)
    items = body["input"]
    if isinstance(items, list):
        _check_items(items)


def _check_items(items: list[Any]) -> None:
    """One kind of item throughout, token ids as JSON integers (inner token arrays included)."""
    kind = type(items[0])
    if kind not in _KINDS:  # `1.0`: jsonschema-rs counts it as an integer
        raise _input_error("input[0]", "expected a token id (an integer), got a number", "invalid_type")
    for index, item in enumerate(items):
        if type(item) is not kind:
            expected, got = _KINDS.get(kind, "a string"), _KINDS.get(type(item), "a number")
            raise _input_error(
                f"input[{index}]", f"expected {expected} like input[0], got {got}", "invalid_type"
            )
        if kind is list and any(type(token) is not int for token in item):
            position = next(i for i, token in enumerate(item) if type(token) is not int)
            raise _input_error(
                f"input[{index}][{position}]", "expected a token id (an integer)", "invalid_type"
            )


def _input_error(param: str, explanation: str, code: str) -> GatewayError:
    return GatewayError(f"{param}: {explanation}", status=400, param=param, code=code)


@functools.cache
def _reference_validator() -> Draft202012Validator:
    """The reference validator, with JSON's integers (see the package docstring), built on first use."""
    from jsonschema import Draft202012Validator, validators

    type_checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_json_integer)
    return validators.extend(Draft202012Validator, type_checker=type_checker)(
        load_embeddings_request_schema()
    )


@functools.cache
def _fast_validator() -> Callable[[object], bool] | None:
    """jsonschema-rs's yes/no check when it is installed (the `fast` extra), else None."""
    try:
        import jsonschema_rs  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    is_valid: Callable[[object], bool] = jsonschema_rs.Draft202012Validator(
        load_embeddings_request_schema()
    ).is_valid
    return is_valid
