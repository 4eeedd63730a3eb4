"""The request contracts, as JSON Schema, and their validation into `GatewayError`s that name the field.

Each contract is data (draft 2020-12): `chat_completion_request.schema.json` for the chat-completions door,
`messages_request.schema.json` for the Anthropic Messages door (and, without `max_tokens` and `stream`, for
its count_tokens request), `responses_request.schema.json` for the Responses door. This module reads each
once, compiles its validators per process on first use, and turns the first violation into a `GatewayError`
400 whose `param` is the JSON path in OpenAI's style (`messages[1].content[0].type`); every door renders
that error in its own envelope.

What follows describes the chat contract; the Messages and Responses contracts follow the same rules (each
schema's `description` says where it differs: open block, item and tool types, null only where Anthropic
accepts it).

Policy for what the schema does not list (the schema's `description` says the same):

- Unknown top-level fields are accepted: OpenAI adds fields often and rejecting them would break every new
  SDK version. The gateway forwards them only to OpenAI-family upstreams.
- Unknown keys inside messages, content parts, tools and tool calls are accepted too; but the
  discriminators are closed enums (message `role`, part `type`, tool and tool call `type`,
  `response_format.type`, the `tool_choice` strings), because translation must know them.
- An optional top-level field set to null means the same as leaving it out.
- Cross-field rules: `top_logprobs` needs `logprobs: true`; `stream_options` needs `stream: true`; an
  assistant message needs `content` unless it has `tool_calls` (or `function_call`, `audio`, `refusal`); a
  tool message needs `tool_call_id`.

Error codes: `missing_required_parameter` when a value is missing, `invalid_type` when a value has the wrong
JSON type (including null where null is not allowed), `invalid_value` for everything else (out of range, not
one of the allowed values, too long, bad pattern). A body that cannot be parsed gets `invalid_json`; when
what breaks it is a number JSON does not allow (`NaN`, `Infinity`, `1e999`), `param` names where it is.

Integers: "integer" here means a JSON integer, written without fraction or exponent. JSON Schema counts
1.0 as an integer, and both validators follow it, so the gateway narrows the type itself: in the reference
validator's type checker, and after jsonschema-rs with a look at the few integer fields (top-level ones and
`logit_bias` values), which costs next to nothing when a request has none. The integer fields are bounded,
with the range listed before the type, so that an integer too large for the parser (orjson reads one past
64 bits as a float, 1e+20) is reported as out of range, not as a float.

The schema is written so that no violation is hidden inside `anyOf`/`oneOf` (alternatives are JSON type lists,
variants are `if`/`then`/`else` chains on their discriminator): every error the validator yields is already
the precise one, so the first error is the one reported, and validation stops there.

Speed: the `jsonschema` package needs about 200 us for a typical request. When `jsonschema-rs` is installed
(the `fast` extra), it answers "valid?" in 1 to 2 us, and `jsonschema` only runs to explain a rejection.
`jsonschema` has the last word: if the two ever disagree on a body, it is judged as `jsonschema` judges it.
Both are built per contract and kept (`_reference_validator`, `_fast_validator`); `_validator` and
`_fast_check` are the chat contract's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError
from ..wire import loads

if TYPE_CHECKING:
    # jsonschema ships no type information; `unused-ignore` keeps this clean once types-jsonschema is there.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "load_chat_request_schema",
    "load_messages_request_schema",
    "load_responses_request_schema",
    "parse_json_body",
    "validate_chat_request",
    "validate_messages_request",
    "validate_responses_request",
]

_SCHEMA_FILE = "chat_completion_request.schema.json"
_MESSAGES_SCHEMA_FILE = "messages_request.schema.json"
_RESPONSES_SCHEMA_FILE = "responses_request.schema.json"
# The contracts, by name; the count_tokens one is derived from the Messages schema.
_CHAT = "chat"
_MESSAGES = "messages"
_COUNT_TOKENS = "count_tokens"
_RESPONSES = "responses"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_SHOWN_CHARS = 40


def load_chat_request_schema() -> dict[str, Any]:
    """A fresh copy of the request schema (callers may change it)."""
    return _read(_SCHEMA_FILE)


def load_messages_request_schema(*, count_tokens: bool = False) -> dict[str, Any]:
    """A fresh copy of the Messages request schema; with `count_tokens`, the count_tokens request's: the same
    without `max_tokens` and `stream` (sent anyway, they are unknown fields, accepted and ignored)."""
    schema = _read(_MESSAGES_SCHEMA_FILE)
    if count_tokens:
        schema["$id"] += ":count-tokens"
        schema["title"] = "Messages count_tokens request (POST /v1/messages/count_tokens)"
        schema["required"] = [name for name in schema["required"] if name != "max_tokens"]
        del schema["properties"]["max_tokens"], schema["properties"]["stream"]
    return schema


def load_responses_request_schema() -> dict[str, Any]:
    """A fresh copy of the Responses request schema."""
    return _read(_RESPONSES_SCHEMA_FILE)


def _read(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = loads(resources.files(__name__).joinpath(name).read_bytes())
    return schema


def _load(contract: str) -> dict[str, Any]:
    if contract == _CHAT:
        return load_chat_request_schema()
    if contract == _RESPONSES:
        return load_responses_request_schema()
    return load_messages_request_schema(count_tokens=contract == _COUNT_TOKENS)


@functools.cache
def _validator() -> Draft202012Validator:
    """The chat contract's reference validator."""
    return _reference_validator(_CHAT)


@functools.cache
def _fast_check() -> Callable[[object], bool] | None:
    """The chat contract's fast check (None without jsonschema-rs); cached itself, so that the chat door
    pays one lookup, as before there were two contracts."""
    return _fast_validator(_CHAT)


@functools.cache
def _reference_validator(contract: str) -> Draft202012Validator:
    """The reference validator of a contract, built on first use; no format checker (`format` costs time,
    adds nothing).

    Imported here, not at the top: with `jsonschema-rs` a process that only sees valid requests never needs
    it, and it (with `referencing`, `rpds`, `attrs`) is about 10 MB of resident memory."""
    from jsonschema import Draft202012Validator, validators

    type_checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_json_integer)
    validator_class = validators.extend(Draft202012Validator, type_checker=type_checker)
    return validator_class(_load(contract))


def _is_json_integer(checker: object, instance: object) -> bool:
    """An integer as JSON writes one: `1`, not `1.0` nor `1e3` (which parse to floats)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _fast_validator(contract: str) -> Callable[[object], bool] | None:
    """`jsonschema-rs`'s yes/no check of a contract when it is installed, with floats in integer fields ruled
    out; else None."""
    try:
        import jsonschema_rs  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    schema = _load(contract)
    is_valid: Callable[[object], bool] = jsonschema_rs.Draft202012Validator(schema).is_valid
    scalars, maps = _integer_fields(schema)
    nested = _nested_integer_fields(schema)
    names = frozenset(scalars + maps + tuple(parent for parent, _ in nested))

    def check(body: object) -> bool:
        if not is_valid(body):
            return False
        assert isinstance(body, dict)  # the schema's root is an object
        if names.isdisjoint(body):  # most chat requests: one C-level pass over their few keys
            return True
        for name in scalars:
            if type(body.get(name)) is float:
                return False
        for name in maps:
            values = body.get(name)
            if values and float in map(type, values.values()):
                return False
        for parent, name in nested:
            value = body.get(parent)
            if type(value) is dict and type(value.get(name)) is float:
                return False
        return True

    return check


def _integer_fields(schema: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The top-level fields that hold an integer, and those that hold an object of integers (`logit_bias`).

    Besides these, a schema has integers only in the fields `_nested_integer_fields` finds (a test keeps it
    so): that is what makes the check after jsonschema-rs a handful of dict lookups."""
    scalars: list[str] = []
    maps: list[str] = []
    for name, field in schema["properties"].items():
        values = field.get("additionalProperties")
        if "integer" in _as_list(field.get("type", [])):
            scalars.append(name)
        elif isinstance(values, dict) and "integer" in _as_list(values.get("type", [])):
            maps.append(name)
    return tuple(scalars), tuple(maps)


def _nested_integer_fields(schema: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(top-level field, its property) for the integers one level down, in an object field whose definition
    lists them under `properties` (the Messages `thinking.budget_tokens`; none in the chat contract)."""
    found: list[tuple[str, str]] = []
    for parent, field in schema["properties"].items():
        if "$ref" in field:
            field = schema["$defs"][field["$ref"].removeprefix("#/$defs/")]
        for name, sub in (field.get("properties") or {}).items():
            if isinstance(sub, dict) and "integer" in _as_list(sub.get("type", [])):
                found.append((parent, name))
    return tuple(found)


def validate_chat_request(body: object) -> None:
    """Raise `GatewayError` 400 for the first way `body` breaks the chat-completions contract."""
    _check(body, _fast_check(), _validator)
    assert isinstance(body, dict)
    _check_named_tool(body)


def validate_messages_request(body: object, *, count_tokens: bool = False) -> None:
    """Raise `GatewayError` 400 for the first way `body` breaks the Messages contract (with `count_tokens`,
    the count_tokens request's)."""
    contract = _COUNT_TOKENS if count_tokens else _MESSAGES
    _check(body, _fast_validator(contract), functools.partial(_reference_validator, contract))
    assert isinstance(body, dict)
    _check_named_messages_tool(body)


def validate_responses_request(body: object) -> None:
    """Raise `GatewayError` 400 for the first way `body` breaks the Responses contract."""
    _check(body, _fast_validator(_RESPONSES), functools.partial(_reference_validator, _RESPONSES))
    assert isinstance(body, dict)
    _check_named_responses_tool(body)


def _check(
    body: object, fast: Callable[[object], bool] | None, reference: Callable[[], Draft202012Validator]
) -> None:
    """The fast check says "valid" (most bodies) or the reference validator names the first violation."""
    valid = False
    if fast is not None:
        with contextlib.suppress(ValueError):  # not made of JSON types: jsonschema judges it
            valid = fast(body)
    if not valid:
        error = next(reference().iter_errors(body), None)
        if error is not None:
            raise _gateway_error(error)


def _check_named_tool(body: dict[str, Any]) -> None:
    """A `tool_choice` that names a function must name one of `tools` (OpenAI answers 400 too): a schema
    cannot say that, and an upstream would otherwise fail in its own words, or not at all."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return
    name = choice.get("function", {}).get("name")
    declared = {
        tool.get("function", {}).get("name")
        for tool in body.get("tools") or ()
        if tool.get("type") == "function"
    }
    if name not in declared:
        raise GatewayError(
            f"tool_choice.function.name: '{name}' is not one of the functions in tools",
            status=400,
            param="tool_choice.function.name",
            code="invalid_value",
        )


def _check_named_messages_tool(body: dict[str, Any]) -> None:
    """The Messages spelling of `_check_named_tool`: `tool_choice` `{"type": "tool", "name"}`."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return
    name = choice.get("name")
    if name not in {tool.get("name") for tool in body.get("tools") or ()}:
        raise GatewayError(
            f"tool_choice.name: '{name}' is not one of the tools in tools",
            status=400,
            param="tool_choice.name",
            code="invalid_value",
        )


def _check_named_responses_tool(body: dict[str, Any]) -> None:
    """The Responses spelling of `_check_named_tool`: `tool_choice` `{"type": "function", "name"}` names a
    function tool, or a function inside a namespace tool, of `tools` or of an `additional_tools` input item
    (Codex's). A request that continues a stored response may name one its history offers: the translation
    checks it there, with the whole conversation."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "function" or body.get("previous_response_id"):
        return
    name = choice.get("name")
    given = body.get("input")
    groups = [body.get("tools") or ()]
    if isinstance(given, list):
        groups += [
            item.get("tools") or ()
            for item in given
            if isinstance(item, dict) and item.get("type") == "additional_tools"
        ]
    declared: set[Any] = set()
    for tools in groups:
        for tool in tools if isinstance(tools, list) else ():
            if not isinstance(tool, dict):
                continue
            members = tool.get("tools") or () if tool.get("type") == "namespace" else (tool,)
            declared.update(
                member.get("name")
                for member in members
                if isinstance(member, dict) and member.get("type") == "function"
            )
    if name not in declared:
        raise GatewayError(
            f"tool_choice.name: '{name}' is not one of the functions in tools",
            status=400,
            param="tool_choice.name",
            code="invalid_value",
        )


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a dict; a 400 that says what is wrong when it is not a JSON object."""
    if not raw:
        raise _body_error("the request body is empty; send a JSON object")
    try:
        body = loads(raw)
    except RecursionError:  # the stdlib parser's way to say so (orjson stops at 1024 levels itself)
        raise _body_error("the request body is not valid JSON: it is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are ValueErrors
        if not raw.strip():
            raise _body_error("the request body is empty; send a JSON object") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _body_error("the request body is not valid UTF-8") from None
        raise _bad_number_error(text) or _body_error(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise GatewayError("the request body must be a JSON object", status=400, code="invalid_type")
    return body


def _body_error(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(message, status=400, type="invalid_request_error", param=param, code="invalid_json")


#: A path as links from the leaf up: (key, parent's link), None at the root.
_Link = tuple[str | int, "_Link"] | None


class _BadNumber:
    """Stands in, during a re-parse, for a number JSON does not allow."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _bad_number_error(text: str) -> GatewayError | None:
    """For a body the parser rejected: if what breaks it is a number JSON does not allow (`NaN`,
    `Infinity`, `-Infinity`, or a number past the float range, `1e999`), an error that names where it is;
    else None.

    Only the error path pays for this: the stdlib parser reads the body again, with hooks that turn such
    numbers into markers (orjson only says at which character it stopped), and the first marker's path
    becomes `param`. A body that is broken some other way (the stdlib fails too, or finds no such number)
    gives None, and keeps the parser's own message."""
    try:
        tree = json.loads(
            text,
            parse_constant=_BadNumber,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except (ValueError, RecursionError):
        return None
    found = _find_bad_number(tree)
    if found is None:
        return None
    bad, path = found
    shown = _clip(bad.text)
    if bad.text.lstrip("-") in ("NaN", "Infinity"):
        explanation = f"{shown} is not valid JSON (JSON has no NaN or Infinity); send a number or null"
    else:
        explanation = f"{shown} is out of range: a number must fit in a 64-bit float"
    if not path:
        return _body_error(f"the request body is not valid JSON: {explanation}")
    param = _param(path)
    return _body_error(f"{param}: {explanation}", param)


def _finite_float(text: str) -> float | _BadNumber:
    value = float(text)
    return value if math.isfinite(value) else _BadNumber(text)


def _finite_int(text: str) -> int | _BadNumber:
    # Past the float range orjson gives up (and past 4300 digits the stdlib would): a marker, before int().
    return _BadNumber(text) if math.isinf(float(text)) else int(text)


def _find_bad_number(tree: object) -> tuple[_BadNumber, list[str | int]] | None:
    """The first marker in document order, and its path. Iterative, so any depth the parser took is fine;
    a path is a chain of (key, parent) links, made into a list only for the marker found."""
    stack: list[tuple[object, _Link]] = [(tree, None)]
    while stack:
        node, link = stack.pop()
        items: Iterable[tuple[str | int, object]]
        if isinstance(node, _BadNumber):
            path: list[str | int] = []
            while link is not None:
                key, link = link
                path.append(key)
            return node, path[::-1]
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        stack.extend(reversed([(child, (key, link)) for key, child in items]))
    return None


def _gateway_error(error: ValidationError) -> GatewayError:
    keyword = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    path: list[str | int] = list(error.absolute_path)
    if keyword == "required":
        path.append(next(name for name in value if name not in instance))
        code = "missing_required_parameter"
    else:
        code = "invalid_type" if keyword == "type" else "invalid_value"
    if not path:  # the only error without a path: the body itself is not an object
        return GatewayError(
            "the request body must be a JSON object", status=400, type="invalid_request_error", code=code
        )
    param = _param(path)
    schema: Any = error.schema
    override = schema.get("x-error", {}).get(keyword) if isinstance(schema, dict) else None
    if override is not None:
        explanation = str(override).replace("{value}", _show(instance))
    else:
        explanation = _explain(keyword, value, instance)
    return GatewayError(
        f"{param}: {explanation}", status=400, type="invalid_request_error", param=param, code=code
    )


def _param(path: Iterable[str | int]) -> str:
    """`["messages", 1, "content"]` -> `messages[1].content`."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def _explain(keyword: str, value: Any, instance: Any) -> str:
    """What is wrong and what is allowed, for the keyword that failed with `value` on `instance`."""
    if keyword == "required":
        return "a value is required"
    if keyword == "type":
        expected = _as_list(value)
        hint = ""
        if "integer" in expected and isinstance(instance, float) and instance.is_integer():
            if abs(instance) >= 2**63:
                hint = " (an integer past the 64-bit range, read as a float)"
            else:
                hint = " (write an integer without a decimal point or exponent)"
        return f"expected {_either([_TYPE_NAMES[t] for t in expected])}, got {_show(instance)}{hint}"
    if keyword == "enum":
        allowed = [_show(v) for v in value if v is not None]
        if len(allowed) == 1:
            return f"expected {allowed[0]}, got {_show(instance)}"
        return f"{_show(instance)} is not one of {', '.join(allowed)}"
    if keyword == "const":
        return f"expected {_show(value)}, got {_show(instance)}"
    if keyword == "minimum":
        return f"{_show(instance)} is less than the minimum of {value}"
    if keyword == "maximum":
        return f"{_show(instance)} is greater than the maximum of {value}"
    if keyword == "minItems":
        return f"expected at least {value} item{'s' if value != 1 else ''}, got {len(instance)}"
    if keyword == "maxItems":
        return f"expected at most {value} items, got {len(instance)}"
    if keyword == "maxProperties":
        return f"expected at most {value} entries, got {len(instance)}"
    if keyword == "minLength":
        if value == 1:
            return "must not be empty"
        return f"expected at least {value} characters, got {len(instance)}"
    if keyword == "maxLength":
        return f"too long: {len(instance)} characters, the maximum is {value}"
    if keyword == "pattern":
        return f"{_show(instance)} does not match the pattern {value}"
    # Not reached: every keyword the schema uses is handled above.
    return f"{_show(instance)} fails the schema's {keyword!r} rule ({value})"


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def _show(value: object) -> str:
    """A short rendering of a JSON value for a message: strings quoted and cut, containers named."""
    if isinstance(value, str):
        return repr(_clip(value))
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _clip(repr(value))  # a number: an integer may have thousands of digits


def _clip(text: str) -> str:
    """`text`, cut to what a message shows."""
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
