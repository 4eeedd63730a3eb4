"""Freeform `custom` tools on chat upstreams: each one is a function with one string parameter, `input`.

A custom tool (`{"type": "custom", "name", "description", "format"}`) takes free text: any text (`format`
`text`, or none), or text in a grammar (`format` `grammar`, `syntax` `lark` or `regex`, `definition`).
Chat has no such tool, so the upstream is offered a function of the same (flat) name:

- `parameters`: `{"input": string}`, required, nothing else. No `strict`: a one-string schema has nothing
  for strict mode to enforce that the lenient reading below does not cover, and on Anthropic and Bedrock
  it switches on structured tool use, which not every model takes.
- `description`: the tool's own; for a grammar, then a note that `input` must follow it, with the
  definition. The model can only be asked, not constrained: a chat upstream holds arguments to a JSON
  schema at most, never to a Lark grammar or a regular expression, so the grammar goes where the model
  reads it. A definition past 4,000 characters is cut there (and the note says so): descriptions count
  against every request's prompt.
- a call's arguments → the `custom_tool_call`'s `input` (`input_of`): the `input` string of the arguments
  object; read leniently, since the upstream did not enforce the schema: an object's only string value,
  a bare JSON string, a call cut short (the text decoded so far), else the arguments as they came.
- a `custom_tool_call` item → a call of that function with `{"input": <input>}` (`arguments_of`).

`InputDecoder` reads `input` out of arguments that stream in pieces, so that a custom call streams its
input as it comes (inputs are long: patches, code-mode scripts) rather than in one piece at its end. It
emits only text it is sure of: nothing before the exact opening `{"input": "` (whitespace allowed), then
each character once it is whole (an escape once all of it has come, a `\\u` high surrogate once its low
half has). Arguments that begin otherwise (another key first, raw text) or hold what JSON does not allow in
a string stream nothing more: their input arrives whole at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...wire import dumps, loads

__all__ = ["InputDecoder", "arguments_of", "custom_function", "input_of"]

Tool = Mapping[str, Any]

INPUT = "input"
_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {INPUT: {"type": "string", "description": "The tool's whole input, as raw text."}},
    "required": [INPUT],
    "additionalProperties": False,
}
_MAX_DEFINITION = 4000
_GRAMMARS = {"lark": "this Lark grammar", "regex": "this regular expression"}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WHITESPACE = " \t\r\n"
_OPENING = ("{", f'"{INPUT}"', ":", '"')
_MORE, _OTHER = -1, -2  # the opening so far: may still come / will not


def custom_function(name: str, tool: Tool, description: str | None) -> dict[str, Any]:
    """The chat function tool standing in for a custom tool; `description` is the tool's (or its
    namespace's)."""
    text = description or ""
    form = tool.get("format")
    if isinstance(form, Mapping) and form.get("type") == "grammar":
        text = f"{text}\n\n{_grammar_note(form)}".strip()
    function: dict[str, Any] = {"name": name}
    if text:
        function["description"] = text
    function["parameters"] = _PARAMETERS
    return {"type": "function", "function": function}


def _grammar_note(form: Mapping[str, Any]) -> str:
    syntax = form.get("syntax")
    definition = str(form.get("definition") or "").strip("\n")
    cut = ""
    if len(definition) > _MAX_DEFINITION:
        definition, cut = definition[:_MAX_DEFINITION], " (the definition is cut short here)"
    what = _GRAMMARS.get(syntax if isinstance(syntax, str) else "", "this grammar")
    return (
        f"The `{INPUT}` argument is the tool's raw input, and it must follow {what}{cut}:\n"
        f"```\n{definition}\n```"
    )


def arguments_of(input: str) -> str:
    """A custom call's input as the arguments of its function."""
    return dumps({INPUT: input}).decode()


def input_of(arguments: str) -> str:
    """A custom call's input from the arguments its function was called with (see the module docstring)."""
    try:
        value = loads(arguments)
    except ValueError:
        decoder = InputDecoder()
        text = decoder.feed(arguments)
        return text if decoder.opened else arguments
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        strings = [item for item in value.values() if isinstance(item, str)]
        if isinstance(given := value.get(INPUT), str):
            return given
        if len(strings) == 1:
            return strings[0]
    return arguments


class InputDecoder:
    """The `input` string of streamed arguments, decoded as far as it is sure (see the module docstring).
    `feed` returns the new text."""

    __slots__ = ("_held", "_state", "opened")

    def __init__(self) -> None:
        self._held = ""  # raw text not decoded yet
        self._state = "opening"  # then "string", then "done" (closed, or nothing more to stream)
        #: Whether the arguments began as `{"input": "`.
        self.opened = False

    def feed(self, fragment: str) -> str:
        if self._state == "done":
            return ""
        raw = self._held + fragment
        if self._state == "opening":
            start = _value_start(raw)
            if start == _MORE:
                self._held = raw
                return ""
            if start == _OTHER:
                self._state, self._held = "done", ""
                return ""
            self._state, self.opened, raw = "string", True, raw[start:]
        text, used = self._decode(raw)
        self._held = raw[used:] if self._state == "string" else ""
        return text

    def _decode(self, raw: str) -> tuple[str, int]:
        """The text of `raw` up to the first character not whole yet, and how much of `raw` it used."""
        out: list[str] = []
        i, end = 0, len(raw)
        while i < end:
            char = raw[i]
            if char == '"' or char < " ":  # the end, or what JSON does not allow in a string
                self._state = "done"
                break
            if char != "\\":
                j = i + 1
                while j < end and raw[j] not in '"\\' and raw[j] >= " ":
                    j += 1
                out.append(raw[i:j])
                i = j
                continue
            if i + 1 == end:
                break
            escaped = raw[i + 1]
            if escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
                i += 2
                continue
            decoded, length = _unicode_escape(raw, i)
            if length == 0:
                break
            if decoded is None:
                self._state = "done"
                break
            out.append(decoded)
            i += length
        return "".join(out), i


def _value_start(raw: str) -> int:
    """Where the `input` string's text begins in `raw`; `_MORE` when `raw` may still become the opening,
    `_OTHER` when it will not."""
    i = 0
    for token in _OPENING:
        while i < len(raw) and raw[i] in _WHITESPACE:
            i += 1
        part = raw[i : i + len(token)]
        if part != token[: len(part)]:
            return _OTHER
        if len(part) < len(token):
            return _MORE
        i += len(token)
    return i


def _unicode_escape(raw: str, i: int) -> tuple[str | None, int]:
    """The character of the `\\u` escape at `raw[i]` and the escape's length: (None, 0) while it has not
    all come, (None, n) when it is not one JSON allows here (a lone surrogate is not text to stream)."""
    code = _hex4(raw, i)
    if code is None:
        return None, 0 if len(raw) < i + 6 else 1
    if not 0xD800 <= code < 0xE000:
        return chr(code), 6
    if code >= 0xDC00:
        return None, 6
    if len(raw) < i + 12:
        return None, 0
    low = _hex4(raw, i + 6) if raw[i + 6 : i + 8] == "\\u" else None
    if low is None or not 0xDC00 <= low < 0xE000:
        return None, 6
    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), 12


def _hex4(raw: str, i: int) -> int | None:
    """The four hex digits after `raw[i:i + 2]` (`\\u`), None when they are not (all) there."""
    digits = raw[i + 2 : i + 6]
    if len(digits) < 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
        return None
    return int(digits, 16)
