"""Anthropic `system` and `messages` → canonical chat messages.

Blocks, and where each goes:

- `text` → a text part; `image` → an `image_url` part (base64 as a data URL); `document` → a `file` part
  with a PDF data URL, or text for text documents; `search_result` → text.
- `tool_use` (assistant) → `tool_calls`, its `input` object as a JSON string.
- `tool_result` (user) → a `role: "tool"` message, placed before the rest of that user turn (OpenAI wants
  the tool messages right after the assistant's calls). Its text is the message's content; `is_error` puts
  `Error: ` in front, since chat has no error flag and the model should still read that the call failed.
  Images and documents in a result cannot ride in a tool message: they go, in order, to the user message
  that follows, and the tool message says so.
- `thinking` and `redacted_thinking` are dropped, never turned into text: the signature binds a thinking
  block to the model that wrote it, no other upstream can verify or use it, and replaying it as text would
  put the model's old reasoning into its prompt as if the user had written it.
- Server-tool blocks (`server_tool_use`, `web_search_tool_result`, `web_fetch_tool_result`,
  `code_execution_tool_result`, `mcp_tool_use`, …), `tool_reference`, `container_upload` and every type not
  named above are dropped: they record what Anthropic ran on its side, and no other upstream ran it. So are
  blocks a role cannot hold (a `tool_use` in a user turn), which Anthropic itself would refuse.
- `cache_control` is dropped everywhere (see `DROPPED_FIELDS` in `_request.py`).

Sources that only Anthropic can resolve (Files API ids, documents by URL) are a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...wire import dumps
from ._errors import anthropic_only

__all__ = ["chat_messages"]

Block = Mapping[str, Any]
Part = dict[str, Any]
Message = dict[str, Any]

_ERROR = "Error"
_MOVED = "(the result's images and documents follow in the next user message)"


def chat_messages(body: Mapping[str, Any]) -> list[Message]:
    """The canonical messages: the `system` prompt first, then each message in order (a mid-conversation
    system message stays where it is)."""
    messages: list[Message] = []
    system = body.get("system")
    if system is not None and (text := _text_of(system)):
        messages.append({"role": "system", "content": text})
    for i, message in enumerate(body["messages"]):
        role, content = message["role"], message["content"]
        if role == "user":
            messages.extend(_user(content, f"messages[{i}].content"))
        elif role == "assistant":
            if (assistant := _assistant(content)) is not None:
                messages.append(assistant)
        elif text := _text_of(content):
            messages.append({"role": "system", "content": text})
    return messages


def _text_of(content: str | Sequence[Block]) -> str:
    """A system prompt's text: its text blocks joined by blank lines (`cache_control` dropped)."""
    if isinstance(content, str):
        return content
    return "\n\n".join(block["text"] for block in content if block["text"])


def _user(content: str | Sequence[Block], where: str) -> list[Message]:
    """One user turn: its tool results as tool messages, then a user message with the rest, if any."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[Message] = []
    parts: list[Part] = []
    for j, block in enumerate(content):
        if block["type"] == "tool_result":
            message, moved = _tool_result(block, f"{where}[{j}]")
            messages.append(message)
            parts.extend(moved)
        else:
            parts.extend(_parts(block, f"{where}[{j}]"))
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        messages.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return messages


def _parts(block: Block, where: str) -> list[Part]:
    """The chat parts for one user block; none for the blocks that are dropped."""
    kind = block["type"]
    if kind == "text":
        return [{"type": "text", "text": block["text"]}] if block["text"] else []
    if kind == "image":
        return [_image(block["source"], f"{where}.source")]
    if kind == "document":
        return _document(block, f"{where}.source")
    if kind == "search_result":
        return [{"type": "text", "text": _search_result_text(block)}]
    return []


def _image(source: Block, where: str) -> Part:
    kind = source["type"]
    if kind == "base64":
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url":
        url = source["url"]
    else:
        raise anthropic_only(f"{where}.type", "an image from the Files API")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: Block, where: str) -> list[Part]:
    source = block["source"]
    kind = source["type"]
    title = block.get("title")
    if kind == "base64":
        data_url = f"data:{source['media_type']};base64,{source['data']}"
        return [{"type": "file", "file": {"filename": title or "document.pdf", "file_data": data_url}}]
    if kind == "text":
        text = f"{title}\n\n{source['data']}" if title else source["data"]
        return [{"type": "text", "text": text}] if text else []
    if kind == "content":
        inner = source["content"]
        if isinstance(inner, str):
            return [{"type": "text", "text": inner}] if inner else []
        return [part for k, item in enumerate(inner) for part in _parts(item, f"{where}.content[{k}]")]
    if kind == "url":
        raise anthropic_only(f"{where}.type", "a document by URL", "send the PDF as base64")
    raise anthropic_only(f"{where}.type", "a document from the Files API")


def _search_result_text(block: Block) -> str:
    body = "\n".join(item["text"] for item in block["content"] if item["text"])
    return f"{block['title']} ({block['source']})\n{body}"


def _tool_result(block: Block, where: str) -> tuple[Message, list[Part]]:
    """(the tool message, the images and documents that move to the next user message)."""
    content = block.get("content")
    texts: list[str] = []
    moved: list[Part] = []
    if isinstance(content, str):
        texts.append(content)
    elif content:
        for k, item in enumerate(content):
            if item["type"] in ("text", "search_result"):
                texts.extend(part["text"] for part in _parts(item, f"{where}.content[{k}]"))
            else:
                moved.extend(_parts(item, f"{where}.content[{k}]"))
    if moved:
        texts.append(_MOVED)
    text = "\n".join(text for text in texts if text)
    if block.get("is_error"):
        text = f"{_ERROR}: {text}" if text else _ERROR
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, moved


def _assistant(content: str | Sequence[Block]) -> Message | None:
    """The assistant message: its text, joined as written, and its tool calls; None when neither is left
    (a turn that only thought)."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content} if content else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            function = {"name": block["name"], "arguments": dumps(block["input"]).decode()}
            calls.append({"id": block["id"], "type": "function", "function": function})
    text = "".join(texts)
    if not text and not calls:
        return None
    message: Message = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
