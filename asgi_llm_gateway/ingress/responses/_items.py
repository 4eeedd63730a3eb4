"""Responses input items: the request's `input` as typed items, and a conversation's items as chat messages.

`input_items` gives every element of `input` a `type` (an easy-input message `{role, content}` is a
`message`; a string is one user message with an `input_text` part) and every message a list of parts
(`input_text` for user, system and developer text, `output_text` for the assistant's), ids and unknown
keys kept. The gateway keeps a conversation as such items, so history and new input read the same.

`chat_messages`, item by item:

- `message`, role `user` → a user message: `input_text` → text, `input_image` → `image_url` (a URL or a
  data URL, `detail` kept), `input_file` with `file_data` → a `file` part, `input_audio` → the same part;
  a lone text part becomes a string.
- `message`, role `system` or `developer` → a system message where it stands (text parts only).
- `message`, role `assistant` → an assistant message: its `output_text` joined, `refusal` as `refusal`.
- `function_call` (one or more in a row) → `tool_calls` on the assistant message just before them, or on
  a new one; a namespaced call under its flat name (`_tools.py`).
- `custom_tool_call` → the same, a call of the custom tool's function with `{"input": <input>}` as its
  arguments (`_custom.py`); a call without a string `call_id`, `name` or `input` is a 400 naming it.
- `function_call_output`, `custom_tool_call_output` → a `role: "tool"` message: the output string, or its
  text parts joined. Images and files in an output cannot ride in a tool message: they follow, in order,
  in a user message after the run of tool messages, and the tool message says so.
- `additional_tools` → no message: its tools join the request's (`_tools.py`).
- `reasoning` → dropped: encrypted reasoning belongs to the provider that made it, and a summary replayed
  as text would put the model's old reasoning into the prompt as if someone had written it.
- `item_reference` → a 400: a stored item is the endpoint's to resolve, before translation.
- anything else (`web_search_call`, `local_shell_call`, `mcp_call`, `compaction`, …) → dropped: the record
  of a tool only OpenAI ran.

Sources only OpenAI can resolve (`file_id` on an image or file, `file_url`) are a 400 naming the part:
`input[k]…` for this request's items, `history[i]…` for an item of the conversation it continues (one that
an OpenAI upstream took earlier in the chain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import GatewayError
from ._custom import arguments_of
from ._tools import flat_name, invalid, item_param

__all__ = ["chat_messages", "input_items"]

Item = Mapping[str, Any]
Part = dict[str, Any]
Message = dict[str, Any]

_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text"})
_DETAILS = frozenset({"auto", "low", "high", "original"})
_MOVED = "(the output's images and files follow in the next user message)"
_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
_CALLS = frozenset({"function_call", "custom_tool_call"})


def input_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's `input` as typed items (see the module docstring); [] when there is none."""
    given = body.get("input")
    if given is None:
        return []
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}]
    return [_typed(item) for item in given]


def _typed(item: Item) -> dict[str, Any]:
    if item.get("type") not in (None, "message"):
        return dict(item)
    typed = {"type": "message", **item}
    content = item["content"]
    if isinstance(content, str):
        kind = "output_text" if item["role"] == "assistant" else "input_text"
        typed["content"] = [{"type": kind, "text": content}]
    else:
        typed["content"] = [dict(part) for part in content]
    return typed


def chat_messages(items: Sequence[Item], instructions: str | None, first_input: int) -> list[Message]:
    """The chat messages for a conversation's items, `instructions` first. `first_input` is the index of
    the first item of this request's `input` (the ones before it are history): errors name `input[i]`."""
    out = _Messages(first_input)
    if instructions:
        out.messages.append({"role": "system", "content": instructions})
    for i, item in enumerate(items):
        out.add(item, i)
    out.flush_moved()
    return out.messages


class _Messages:
    """The messages built so far, and the parts that wait for the run of tool messages to end."""

    __slots__ = ("first_input", "messages", "moved")

    def __init__(self, first_input: int) -> None:
        self.first_input = first_input
        self.messages: list[Message] = []
        self.moved: list[Part] = []

    def where(self, i: int) -> str:
        return item_param(i, self.first_input)

    def add(self, item: Item, i: int) -> None:
        kind = item.get("type", "message")
        if kind in _OUTPUTS:
            self.messages.append(self._tool_message(item, self.where(i)))
        elif kind == "message":
            message = _message(item, self.where(i))
            if message is not None:
                self.flush_moved()
                self.messages.append(message)
        elif kind in _CALLS:
            self.flush_moved()
            self._call(item, self.where(i))
        elif kind == "item_reference":
            where = self.where(i)
            raise GatewayError(
                f"{where}: an item_reference ('{item.get('id')}') must be resolved before translation",
                status=400,
                param=where,
                code="invalid_value",
            )

    def flush_moved(self) -> None:
        if self.moved:
            self.messages.append({"role": "user", "content": self.moved})
            self.moved = []

    def _call(self, item: Item, where: str) -> None:
        if item["type"] == "custom_tool_call":
            _require_strings(item, ("call_id", "name", "input"), where)
            arguments = arguments_of(item["input"])
        else:
            arguments = item["arguments"]
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": flat_name(item.get("namespace"), item["name"]), "arguments": arguments},
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})

    def _tool_message(self, item: Item, where: str) -> Message:
        _require_strings(item, ("call_id",), where)
        output = item.get("output")
        if not isinstance(output, (str, list)):
            raise invalid(f"{where}.output", "a tool output is a string or a list of content parts")
        if isinstance(output, str):
            text = output
        else:
            texts: list[str] = []
            moved = len(self.moved)
            for j, part in enumerate(output):
                if not isinstance(part, Mapping):
                    raise invalid(f"{where}.output[{j}]", "a content part is an object")
                if part.get("type") in _TEXT_PARTS:
                    texts.append(part.get("text") or "")
                else:
                    self.moved.append(_user_part(part, f"{where}.output[{j}]"))
            if len(self.moved) > moved:
                texts.append(_MOVED)
            text = "\n".join(t for t in texts if t)
        return {"role": "tool", "tool_call_id": item["call_id"], "content": text}


def _message(item: Item, where: str) -> Message | None:
    role = item["role"]
    content = item["content"]
    if role == "assistant":
        return _assistant(content)
    if role in ("system", "developer"):
        text = _instructions_text(content, where)
        return {"role": "system", "content": text} if text else None
    if isinstance(content, str):
        return {"role": "user", "content": content}
    parts = [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    parts = [part for part in parts if part["type"] != "text" or part["text"]]
    if not parts:
        return None
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": "user", "content": parts[0]["text"]}
    return {"role": "user", "content": parts}


def _assistant(content: str | Sequence[Item]) -> Message | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content} if content else None
    text = "".join(part.get("text") or "" for part in content if part.get("type") in _TEXT_PARTS)
    refusal = "".join(part.get("refusal") or "" for part in content if part.get("type") == "refusal")
    if not text and not refusal:
        return None
    message: Message = {"role": "assistant", "content": text or None}
    if refusal:
        message["refusal"] = refusal
    return message


def _instructions_text(content: str | Sequence[Item], where: str) -> str:
    """A system or developer message's text; a part that is not text is a 400 (chat system messages hold
    text only)."""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.get("type") not in _TEXT_PARTS:
            param = f"{where}.content[{j}].type"
            raise GatewayError(
                f"{param}: a system or developer message holds text only, got '{part.get('type')}'",
                status=400,
                param=param,
                code="invalid_value",
            )
        texts.append(part.get("text") or "")
    return "\n\n".join(text for text in texts if text)


def _user_part(part: Item, where: str) -> Part:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _file(part, where)
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": dict(part["input_audio"])}
    raise GatewayError(  # not reached for a body the schema accepted
        f"{where}.type: '{kind}' is not a content part type", status=400, param=f"{where}.type"
    )


def _image(part: Item, where: str) -> Part:
    url = part.get("image_url")
    if not url:
        if part.get("file_id"):
            raise _openai_only(f"{where}.file_id", "an image from the Files API", "send it as image_url")
        raise GatewayError(
            f"{where}.image_url: an input_image needs image_url (a URL or a data URL)",
            status=400,
            param=f"{where}.image_url",
            code="missing_required_parameter",
        )
    image: dict[str, Any] = {"url": url}
    if part.get("detail") in _DETAILS:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file(part: Item, where: str) -> Part:
    data = part.get("file_data")
    if not data:
        if part.get("file_id"):
            raise _openai_only(f"{where}.file_id", "a file from the Files API", "send it as file_data")
        if part.get("file_url"):
            raise _openai_only(f"{where}.file_url", "a file by URL", "send it as file_data")
        raise GatewayError(
            f"{where}.file_data: an input_file needs file_data",
            status=400,
            param=f"{where}.file_data",
            code="missing_required_parameter",
        )
    file: dict[str, Any] = {"file_data": data}
    if part.get("filename"):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _require_strings(item: Item, fields: Sequence[str], where: str) -> None:
    """A 400 naming the first of `fields` that is not a string (the request schema does not check the items
    of custom tools)."""
    for name in fields:
        if not isinstance(item.get(name), str):
            raise invalid(f"{where}.{name}", f"a {item['type']} item needs a string {name}")


def _openai_only(param: str, what: str, hint: str) -> GatewayError:
    return GatewayError(
        f"{param}: {what} is served by OpenAI upstreams only, and this model is served by another "
        f"provider; {hint}",
        status=400,
        param=param,
        code="unsupported_parameter",
    )
