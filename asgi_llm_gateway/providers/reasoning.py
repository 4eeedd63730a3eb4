"""Signed reasoning on chat completions: handed to the client, taken back, replayed only where it was made.

Claude (Anthropic, Bedrock) signs its thinking and wants the thinking of the last assistant turn back, signed,
when a tool loop continues with thinking on; a `redacted_thinking` block must come back as it was. OpenAI
messages have no place for either, so the gateway uses OpenRouter's `reasoning_details`, the de facto
extension for this, on assistant messages and stream deltas:

    {"type": "reasoning.text", "text": <thinking>, "signature": <sealed>, "format": "anthropic-claude-v1",
     "index": <n>}
    {"type": "reasoning.encrypted", "data": <sealed redacted data>, "format": "anthropic-claude-v1",
     "index": <n>}

Every signature and redacted payload is sealed (`sealing.py`) for `<provider reasoning_scope>/<model>`: a
request unseals only what was sealed for its own provider and model, and drops the rest (another provider
after a fallback, another model, a client's own): never sent, never turned into text. Without the last
turn's reasoning the provider leaves thinking off for that request, as before (`claude.thinking_lost`).

Clients that drop the field (LangChain, the Vercel AI SDK: see docs/reasoning.md) keep the tool-call ids, so
each provider also keeps a `ReasoningStore`: the reasoning of every answer that called tools, by tool-call
id, bounded and expiring, in this process only (a restart or another replica forgets it: thinking is then
left off for the next turn, and the loop still works).

Gemini's thought signatures travel in the tool-call ids themselves (`gemini/_ids.py`), which every client
keeps, so they need neither the field nor the store; each id carries a tag of the scope (`scope_for`) that
made its signature, and the signature goes back only to that scope.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .sealing import seal, unseal

__all__ = [
    "FORMAT",
    "ReasoningStore",
    "Remember",
    "StreamedThoughts",
    "Thought",
    "details_of",
    "replays",
    "scope_for",
]

#: The `format` of Claude's reasoning details (OpenRouter's name for it).
FORMAT = "anthropic-claude-v1"

Detail = dict[str, Any]


class Thought(NamedTuple):
    """One reasoning block as the upstream made it: `text` and its `signature`, or redacted `data`."""

    text: str | None = None
    signature: str | None = None
    data: str | None = None


def scope_for(provider_scope: str, model: str) -> str:
    """The seal scope of reasoning made by `model` on the provider whose `reasoning_scope` is given."""
    return f"{provider_scope}/{model}"


def details_of(thoughts: Iterable[Thought], scope: str) -> list[Detail]:
    """`reasoning_details` for the client: each thought's signature or data sealed for `scope`."""
    details: list[Detail] = []
    for index, thought in enumerate(thoughts):
        if thought.data is not None:
            details.append(
                {
                    "type": "reasoning.encrypted",
                    "data": seal(thought.data, scope),
                    "format": FORMAT,
                    "index": index,
                }
            )
        elif thought.signature:
            details.append(
                {
                    "type": "reasoning.text",
                    "text": thought.text or "",
                    "signature": seal(thought.signature, scope),
                    "format": FORMAT,
                    "index": index,
                }
            )
    return details


def thoughts_of(details: Any, scope: str) -> list[Thought]:
    """The thoughts in `reasoning_details` sealed for `scope`; everything else is dropped."""
    thoughts: list[Thought] = []
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, Mapping):
            continue
        kind = detail.get("type")
        if kind == "reasoning.text" and isinstance(detail.get("signature"), str):
            signature = unseal(detail["signature"], scope)
            if signature is not None:
                thoughts.append(Thought(text=str(detail.get("text") or ""), signature=signature))
        elif kind == "reasoning.encrypted" and isinstance(detail.get("data"), str):
            data = unseal(detail["data"], scope)
            if data is not None:
                thoughts.append(Thought(data=data))
    return thoughts


Remember = Callable[[list[str], list[Detail]], None]


class StreamedThoughts:
    """The thoughts of one stream, gathered block by block (by the upstream's block index); each finished
    block becomes one `reasoning_details` item, sent in its own delta and kept in `details`. At the end
    (`finish`), `remember(tool-call ids, details)` is told what an answer that called tools thought."""

    __slots__ = ("_open", "_remember", "_scope", "_tool_call_ids", "details")

    def __init__(self, scope: str, remember: Remember | None = None) -> None:
        self._scope = scope
        self._remember = remember
        self._open: dict[int, list[str | None]] = {}  # index → [text, signature]
        self._tool_call_ids: list[str] = []
        #: Every detail sent so far, in order.
        self.details: list[Detail] = []

    def tool_call(self, tool_call_id: str) -> None:
        """Note a tool call of the answer: its id will find the answer's reasoning in the store."""
        self._tool_call_ids.append(tool_call_id)

    def finish(self) -> None:
        """The stream is complete: hand the reasoning of an answer that called tools to `remember`."""
        if self._remember is not None and self.details and self._tool_call_ids:
            self._remember(self._tool_call_ids, self.details)

    def text(self, index: int, fragment: str) -> None:
        block = self._open.setdefault(index, ["", None])
        block[0] = (block[0] or "") + fragment

    def signature(self, index: int, signature: str) -> None:
        self._open.setdefault(index, ["", None])[1] = signature

    def redacted(self, data: str) -> list[Detail]:
        """The detail of a redacted block (it comes whole)."""
        return self._add(Thought(data=data))

    def stop(self, index: int) -> list[Detail]:
        """The detail of a thinking block that just ended; none for an unsigned one (nothing to replay)."""
        block = self._open.pop(index, None)
        if block is None or not block[1]:
            return []
        return self._add(Thought(text=block[0], signature=block[1]))

    def _add(self, thought: Thought) -> list[Detail]:
        [detail] = details_of([thought], self._scope)
        detail["index"] = len(self.details)
        self.details.append(detail)
        return [detail]


class ReasoningStore:
    """The `reasoning_details` of recent answers that called tools, by tool-call id: for clients that echo
    the assistant message without them. At most `max_entries` ids, each kept `ttl` seconds; per process."""

    def __init__(
        self, max_entries: int = 4096, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("ReasoningStore needs max_entries >= 1 and ttl > 0")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, list[Detail]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, tool_call_ids: Iterable[str], details: list[Detail]) -> None:
        """Keep `details` for each of the answer's tool calls (the oldest entries go first when full)."""
        if not details:
            return
        expires = self._clock() + self.ttl
        for tool_call_id in tool_call_ids:
            self._entries[tool_call_id] = (expires, details)
            self._entries.move_to_end(tool_call_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def recall(self, tool_call_id: Any) -> list[Detail] | None:
        """The details kept for a tool call, or None (never kept, expired or pushed out)."""
        entry = self._entries.get(tool_call_id) if isinstance(tool_call_id, str) else None
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[tool_call_id]
            return None
        return entry[1]

    def remember_completion(self, completion: Mapping[str, Any]) -> None:
        """Keep the reasoning of a `chat.completion` that called tools."""
        for choice in completion.get("choices") or ():
            message = choice.get("message") or {}
            calls = message.get("tool_calls")
            if calls and message.get("reasoning_details"):
                self.remember((call["id"] for call in calls), message["reasoning_details"])


def replays(
    request: Mapping[str, Any], scope: str, store: ReasoningStore | None
) -> dict[int, list[Thought]] | None:
    """The thoughts to send back before each assistant message (by index in `messages`), from the message's
    `reasoning_details` or else from `store` by its first tool-call id, unsealed for `scope`. None when the
    request asks for no thinking: then nothing is replayed, and this costs one key lookup."""
    effort = request.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    found: dict[int, list[Thought]] = {}
    messages: Sequence[Mapping[str, Any]] = request["messages"]
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        details = message.get("reasoning_details")
        calls = message.get("tool_calls")
        if not details and calls and store is not None:
            details = store.recall(calls[0].get("id"))
        thoughts = thoughts_of(details, scope) if details else []
        if thoughts:
            found[i] = thoughts
    return found
