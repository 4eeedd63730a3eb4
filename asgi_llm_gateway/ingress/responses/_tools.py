"""Responses `tools` and `tool_choice` → chat's, and the names that carry a call back.

The tools are the request's `tools`, then those of the conversation's `additional_tools` items (Codex sends
its tools there for the models it knows: `{"type": "additional_tools", "role": "developer", "tools": […]}`),
in order (`offered_tools`); such an item becomes no message. By `type`:

- `function` (flat: `name`, `description`, `parameters`, `strict` at the top level) → a chat function tool.
  No `parameters` (absent, null or `{}`) becomes `{"type": "object", "properties": {}}`: chat upstreams
  (Gemini, Bedrock) want an object schema even for a function that takes nothing. `strict` is kept when
  it is a boolean; `defer_loading`, `output_schema` and `allowed_callers` are OpenAI's and stay behind.
- `custom` (freeform: `name`, `description`, `format` text or a Lark or regex grammar) → a chat function
  with one string parameter, `input`; its calls come back as `custom_tool_call` items (see `_custom.py`).
- `namespace` (Codex groups its MCP and app tools, and its code-mode `exec`, this way: `{"type":
  "namespace", "name", "description", "tools": [function or custom, …]}`) → one chat function per member,
  named `<namespace>__<name>` (no second `__` when the namespace already ends in one, as Codex's
  `mcp__server__` do). A name past chat's 64 characters is cut to 55 and given 8 hex digits of its hash,
  so it stays unique. The answer's calls carry the namespace and the member's own name again
  (`tool_names`), which is how Codex finds the tool. A member without a description gets the namespace's.
- Anything else is a tool only OpenAI runs (`web_search`, `file_search`, `code_interpreter`,
  `computer_use_preview`, `image_generation`, `local_shell`, `shell`, `mcp`, `tool_search`, `apply_patch`,
  and types not invented yet): dropped and its type reported, or, with `strict_tools`, a 400 naming
  `tools[i].type` (`input[k].tools[j].type` in an `additional_tools` item).

A function or custom tool without a string `name`, a namespace without a string `name` or a `tools` list,
and an `additional_tools` item without a `tools` list are 400s naming the field (the request schema checks
the top-level `tools` only).

`tool_choice`: the strings pass as they are; `{"type": "function", "name"}` and `{"type": "custom",
"name"}` name the chat function (a namespace member by its flat name, or by its own name when no other
member has it; a 400 when no tool of that kind and name is left); `{"type": "allowed_tools", "mode",
"tools"}` becomes chat's `allowed_tools` with its function and custom entries (a 400 when `mode: required`
allows none; with `mode: auto` and none left, `none`); forcing anything else (a built-in, `mcp`, …) is a
400 whatever `strict_tools` says, since the client asked for exactly the tool no other upstream can run.
Without any chat tool left, neither `tool_choice` nor `parallel_tool_calls` is sent: OpenAI refuses both
without tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...errors import GatewayError
from ._custom import custom_function

__all__ = ["ToolName", "add_tools", "flat_name", "invalid", "item_param", "offered_tools", "tool_names"]

Tool = Mapping[str, Any]

_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_MAX_NAME = 64
_HASHED_PREFIX = 55  # + "_" + 8 hex digits = 64
_CHOICE_STRINGS = frozenset({"auto", "none", "required"})
_CALLABLE = frozenset({"function", "custom"})  # the tool types a chat upstream is offered
ADDITIONAL_TOOLS = "additional_tools"


class ToolName(NamedTuple):
    """Who a chat function stands for: the namespace (None for a tool outside one), the tool's own name,
    and whether it is a freeform custom tool."""

    namespace: str | None
    name: str
    custom: bool


def add_tools(
    chat: dict[str, Any],
    body: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    first_input: int,
    *,
    strict_tools: bool,
) -> list[str]:
    """Put the conversation's function and custom tools (`offered_tools`), `tool_choice` and
    `parallel_tool_calls` on `chat`; returns the types of the tools that were dropped (each once, in
    order). `first_input` is the index of this request's first item in `items` (for `item_param`)."""
    tools, dropped = _chat_tools(_sourced(body, items, first_input), strict_tools)
    choice = body.get("tool_choice")
    if not tools:
        if isinstance(choice, Mapping):
            _chat_choice(choice, {})  # a choice that names or forces a tool is a 400 even so
        return dropped
    chat["tools"] = tools
    if choice is not None:
        chat_choice = _chat_choice(choice, _kinds(offered_tools(body, items)))
        if chat_choice is not None:
            chat["tool_choice"] = chat_choice
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        chat["parallel_tool_calls"] = parallel
    return dropped


def offered_tools(body: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[Tool]:
    """The tools a conversation offers: the request's `tools`, then those of its `additional_tools` items,
    in order (what a response echoes as its `tools`)."""
    tools = [tool for tool in body.get("tools") or () if isinstance(tool, Mapping)]
    for item in items:
        if item.get("type") == ADDITIONAL_TOOLS and isinstance(item.get("tools"), list):
            tools.extend(tool for tool in item["tools"] if isinstance(tool, Mapping))
    return tools


def item_param(index: int, first_input: int) -> str:
    """How an error names the item at `index` of a conversation: `input[k]` for this request's items,
    `history[i]` for the earlier ones."""
    return f"input[{index - first_input}]" if index >= first_input else f"history[{index}]"


def flat_name(namespace: str | None, name: str) -> str:
    """The chat function name for a member of a namespace (the name itself without one)."""
    if not namespace:
        return name
    joined = f"{namespace}{name}" if namespace.endswith("__") else f"{namespace}__{name}"
    if len(joined) <= _MAX_NAME:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{joined[:_HASHED_PREFIX]}_{digest}"


def tool_names(tools: Sequence[Tool] | None) -> dict[str, ToolName]:
    """Chat function name → `ToolName` for every namespace member and every custom tool: how a call the
    upstream made by the flat name goes back to the client, as a function_call or a custom_tool_call."""
    names: dict[str, ToolName] = {}
    for tool in tools or ():
        kind = tool.get("type")
        if kind == "custom" and isinstance(tool.get("name"), str):
            names[tool["name"]] = ToolName(None, tool["name"], True)
        if kind != "namespace" or not isinstance(tool.get("name"), str):
            continue
        namespace = tool["name"]
        for member in tool.get("tools") or ():
            if not isinstance(member, Mapping):
                continue
            if member.get("type") in _CALLABLE and isinstance(member.get("name"), str):
                names[flat_name(namespace, member["name"])] = ToolName(
                    namespace, member["name"], member["type"] == "custom"
                )
    return names


def _sourced(
    body: Mapping[str, Any], items: Sequence[Mapping[str, Any]], first_input: int
) -> list[tuple[str, Tool]]:
    """`offered_tools`, each with the param that names it in an error."""
    tools: list[tuple[str, Tool]] = [(f"tools[{i}]", tool) for i, tool in enumerate(body.get("tools") or ())]
    for index, item in enumerate(items):
        if item.get("type") != ADDITIONAL_TOOLS:
            continue
        where = item_param(index, first_input)
        given = item.get("tools")
        if not isinstance(given, list):
            raise invalid(f"{where}.tools", "an additional_tools item needs a list of tools")
        for j, tool in enumerate(given):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
                raise invalid(f"{where}.tools[{j}].type", "a tool needs a string type")
            tools.append((f"{where}.tools[{j}]", tool))
    return tools


def _chat_tools(
    tools: Sequence[tuple[str, Tool]], strict_tools: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    chat: list[dict[str, Any]] = []
    dropped: list[str] = []
    for param, tool in tools:
        kind = tool["type"]
        if kind in _CALLABLE:
            chat.append(_callable(tool, param, None, None))
            continue
        if kind == "namespace":
            namespace, members = tool.get("name"), tool.get("tools")
            if not isinstance(namespace, str) or not namespace:
                raise invalid(f"{param}.name", "a namespace needs a name")
            if not isinstance(members, list):
                raise invalid(f"{param}.tools", "a namespace needs a list of tools")
            for j, member in enumerate(members):
                where = f"{param}.tools[{j}]"
                if not isinstance(member, Mapping):
                    raise invalid(f"{where}.type", "a tool needs a string type")
                if member.get("type") in _CALLABLE:
                    chat.append(_callable(member, where, namespace, tool.get("description")))
                else:
                    _drop(str(member.get("type") or ""), f"{where}.type", strict_tools, dropped)
            continue
        _drop(kind, f"{param}.type", strict_tools, dropped)
    return chat, dropped


def _callable(
    tool: Tool, param: str, namespace: str | None, namespace_description: str | None
) -> dict[str, Any]:
    """The chat function for a function or custom tool."""
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"{param}.name", f"a {tool['type']} tool needs a name")
    description = tool.get("description") or namespace_description
    if description is not None and not isinstance(description, str):
        raise invalid(f"{param}.description", "a description is a string")
    if tool["type"] == "custom":
        return custom_function(flat_name(namespace, name), tool, description)
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise invalid(f"{param}.parameters", "a function's parameters are a JSON schema object")
    function: dict[str, Any] = {"name": flat_name(namespace, name)}
    if description:
        function["description"] = description
    function["parameters"] = parameters or _NO_PARAMETERS
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def invalid(param: str, what: str) -> GatewayError:
    """A 400 naming `param`: `what` a valid value is."""
    return GatewayError(f"{param}: {what}", status=400, param=param, code="invalid_value")


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


def _kinds(tools: Sequence[Tool]) -> dict[str, ToolName]:
    """Every chat function the tools make (flat name → `ToolName`), top-level functions included."""
    names = {
        tool["name"]: ToolName(None, tool["name"], False)
        for tool in tools
        if tool.get("type") == "function" and isinstance(tool.get("name"), str)
    }
    names.update(tool_names(tools))
    return names


def _chat_choice(
    choice: str | Mapping[str, Any], names: Mapping[str, ToolName]
) -> str | dict[str, Any] | None:
    if isinstance(choice, str):
        return choice if choice in _CHOICE_STRINGS else None
    kind = choice["type"]
    if kind in _CALLABLE:
        return {"type": "function", "function": {"name": _chosen(choice, kind, names)}}
    if kind == "allowed_tools":
        return _allowed_tools(choice)
    raise GatewayError(
        f"tool_choice.type: '{kind}' forces a tool only OpenAI runs, and this model is served by another "
        "provider",
        status=400,
        param="tool_choice.type",
        code="unsupported_parameter",
    )


def _chosen(choice: Mapping[str, Any], kind: str, names: Mapping[str, ToolName]) -> str:
    """The chat function a `{"type": "function" | "custom", "name", "namespace"?}` choice names."""
    custom = kind == "custom"
    what = "custom tool" if custom else "function"
    given = choice.get("name")
    name = flat_name(_namespace(choice), given) if isinstance(given, str) else ""
    if name not in names:  # a namespace member named by its own name, when only one has it
        members = [
            flat
            for flat, tool in names.items()
            if tool.namespace and (tool.name, tool.custom) == (name, custom)
        ]
        if len(members) > 1:
            raise GatewayError(
                f"tool_choice.name: '{name}' names a {what} in more than one namespace "
                f"({', '.join(members)} here); give the namespace too",
                status=400,
                param="tool_choice.name",
                code="invalid_value",
            )
        name = members[0] if members else name
    if name not in names or names[name].custom != custom:
        raise GatewayError(
            f"tool_choice.name: '{given}' is not one of the {what}s in tools",
            status=400,
            param="tool_choice.name",
            code="invalid_value",
        )
    return name


def _namespace(choice: Mapping[str, Any]) -> str | None:
    """The namespace a tool choice names; anything but a string is none."""
    namespace = choice.get("namespace")
    return namespace if isinstance(namespace, str) else None


def _allowed_tools(choice: Mapping[str, Any]) -> str | dict[str, Any]:
    mode = choice["mode"]
    allowed = [
        {"type": "function", "function": {"name": flat_name(_namespace(tool), tool["name"])}}
        for tool in choice.get("tools") or ()
        if tool.get("type") in _CALLABLE and isinstance(tool.get("name"), str)
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
