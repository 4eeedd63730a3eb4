"""Responses `tools` and `tool_choice` → chat's, and the names that carry a call back.

Tools, by `type`:

- `function` (flat: `name`, `description`, `parameters`, `strict` at the top level) → a chat function tool.
  No `parameters` (absent, null or `{}`) becomes `{"type": "object", "properties": {}}`: chat upstreams
  (Gemini, Bedrock) want an object schema even for a function that takes nothing. `strict` is kept when
  it is a boolean; `defer_loading`, `output_schema` and `allowed_callers` are OpenAI's and stay behind.
- `namespace` (Codex groups its MCP and app tools this way: `{"type": "namespace", "name", "description",
  "tools": [function, …]}`) → one chat function per member, named `<namespace>__<name>` (no second `__`
  when the namespace already ends in one, as Codex's `mcp__server__` do). A name past chat's 64 characters
  is cut to 55 and given 8 hex digits of its hash, so it stays unique. The answer's calls carry the
  namespace and the member's own name again (`namespaced_names`), which is how Codex finds the tool. A
  member without a description gets the namespace's.
- Anything else is a tool only OpenAI runs (`web_search`, `file_search`, `code_interpreter`,
  `computer_use_preview`, `image_generation`, `local_shell`, `shell`, `mcp`, `tool_search`, `apply_patch`,
  freeform `custom` grammar tools, and types not invented yet): dropped and its type reported, or, with
  `strict_tools`, a 400 naming `tools[i].type`. A custom tool inside a namespace counts as `custom`.

`tool_choice`: the strings pass as they are; `{"type": "function", "name"}` names the chat function (a
namespace member by its flat name, or by its own name when no other member has it; a 400 when no function
of that name is left); `{"type": "allowed_tools", "mode", "tools"}` becomes chat's
`allowed_tools` with its function entries (a 400 when `mode: required` allows none; with `mode: auto` and
none left, `none`); forcing anything else (a built-in, `mcp`, `custom`, …) is a 400 whatever
`strict_tools` says, since the client asked for exactly the tool no other upstream can run. Without any
chat tool left, neither `tool_choice` nor `parallel_tool_calls` is sent: OpenAI refuses both without tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import GatewayError

__all__ = ["add_tools", "flat_name", "namespaced_names"]

Tool = Mapping[str, Any]

_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_MAX_NAME = 64
_HASHED_PREFIX = 55  # + "_" + 8 hex digits = 64
_CHOICE_STRINGS = frozenset({"auto", "none", "required"})


def add_tools(chat: dict[str, Any], body: Mapping[str, Any], *, strict_tools: bool) -> list[str]:
    """Put the request's function tools, `tool_choice` and `parallel_tool_calls` on `chat`; returns the
    types of the tools that were dropped (each once, in order)."""
    tools, dropped = _chat_tools(body.get("tools") or (), strict_tools)
    choice = body.get("tool_choice")
    if not tools:
        if isinstance(choice, Mapping):
            _chat_choice(choice, set(), ())  # a choice that names or forces a tool is a 400 even so
        return dropped
    chat["tools"] = tools
    names = {tool["function"]["name"] for tool in tools}
    if choice is not None:
        chat_choice = _chat_choice(choice, names, body.get("tools") or ())
        if chat_choice is not None:
            chat["tool_choice"] = chat_choice
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        chat["parallel_tool_calls"] = parallel
    return dropped


def flat_name(namespace: str | None, name: str) -> str:
    """The chat function name for a member of a namespace (the name itself without one)."""
    if not namespace:
        return name
    joined = f"{namespace}{name}" if namespace.endswith("__") else f"{namespace}__{name}"
    if len(joined) <= _MAX_NAME:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{joined[:_HASHED_PREFIX]}_{digest}"


def namespaced_names(tools: Sequence[Tool] | None) -> dict[str, tuple[str, str]]:
    """Chat function name → (namespace, name) for every function inside a namespace tool: how a call the
    upstream made by the flat name goes back to the client."""
    names: dict[str, tuple[str, str]] = {}
    for tool in tools or ():
        if tool.get("type") != "namespace":
            continue
        namespace = tool["name"]
        for member in tool.get("tools") or ():
            if member.get("type") == "function":
                names[flat_name(namespace, member["name"])] = (namespace, member["name"])
    return names


def _chat_tools(tools: Sequence[Tool], strict_tools: bool) -> tuple[list[dict[str, Any]], list[str]]:
    chat: list[dict[str, Any]] = []
    dropped: list[str] = []
    for i, tool in enumerate(tools):
        kind = tool["type"]
        if kind == "function":
            chat.append(_function(tool, None, None))
            continue
        if kind == "namespace":
            for j, member in enumerate(tool.get("tools") or ()):
                if member.get("type") == "function":
                    chat.append(_function(member, tool["name"], tool.get("description")))
                else:
                    _drop(member.get("type") or "", f"tools[{i}].tools[{j}].type", strict_tools, dropped)
            continue
        _drop(kind, f"tools[{i}].type", strict_tools, dropped)
    return chat, dropped


def _function(tool: Tool, namespace: str | None, namespace_description: str | None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": flat_name(namespace, tool["name"])}
    if description := tool.get("description") or namespace_description:
        function["description"] = description
    function["parameters"] = tool.get("parameters") or _NO_PARAMETERS
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _drop(kind: str, param: str, strict_tools: bool, dropped: list[str]) -> None:
    if strict_tools:
        raise GatewayError(
            f"{param}: '{kind}' is a tool only OpenAI runs, and this model is served by another provider; "
            "leave the tool out, or use a model served by OpenAI",
            status=400,
            param=param,
            code="unsupported_parameter",
        )
    if kind not in dropped:
        dropped.append(kind)


def _chat_choice(
    choice: str | Mapping[str, Any], names: set[str], tools: Sequence[Tool]
) -> str | dict[str, Any] | None:
    if isinstance(choice, str):
        return choice if choice in _CHOICE_STRINGS else None
    kind = choice["type"]
    if kind == "function":
        name = flat_name(choice.get("namespace"), choice["name"])
        if name not in names:  # a namespace member named by its own name, when only one has it
            members = [flat for flat, (_, member) in namespaced_names(tools).items() if member == name]
            if len(members) > 1:
                raise GatewayError(
                    f"tool_choice.name: '{name}' names a function in more than one namespace "
                    f"({', '.join(members)} here); give the namespace too",
                    status=400,
                    param="tool_choice.name",
                    code="invalid_value",
                )
            name = members[0] if members else name
        if name not in names:
            raise GatewayError(
                f"tool_choice.name: '{choice['name']}' is not one of the functions in tools",
                status=400,
                param="tool_choice.name",
                code="invalid_value",
            )
        return {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        return _allowed_tools(choice)
    raise GatewayError(
        f"tool_choice.type: '{kind}' forces a tool only OpenAI runs, and this model is served by another "
        "provider",
        status=400,
        param="tool_choice.type",
        code="unsupported_parameter",
    )


def _allowed_tools(choice: Mapping[str, Any]) -> str | dict[str, Any]:
    mode = choice["mode"]
    allowed = [
        {"type": "function", "function": {"name": flat_name(tool.get("namespace"), tool["name"])}}
        for tool in choice.get("tools") or ()
        if tool.get("type") == "function" and isinstance(tool.get("name"), str)
    ]
    if allowed:
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
    if mode == "auto":
        return "none"
    raise GatewayError(
        "tool_choice.tools: mode 'required' allows only tools that OpenAI runs, and this model is served "
        "by another provider",
        status=400,
        param="tool_choice.tools",
        code="unsupported_parameter",
    )
