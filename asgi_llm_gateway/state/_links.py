"""What both stores share: a response split into its record, its link and its own items, and put back.

A stored response is two JSON values:
- its record: every field of `StoredResponse` but `items` (`response` is the bulk of it), and its link: the
  ids of the responses it continues, oldest first, and the length of its whole history;
- its own items: `items[len(previous.items):]`, this request's input and this response's output.

`get` needs the record of one response and the own items of it and of every response in its chain, never
the records of the others (a `response` object carries the request's tools and instructions, often tens of
KB: reading them for every ancestor would cost more than the history itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..wire import dumps, loads
from . import StoredResponse

#: Bumped when the stored shape changes; values of another version read as missing.
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Link:
    #: The responses this one continues, oldest first (empty: its own items are the whole history).
    chain: tuple[str, ...]
    #: How many items the whole history has, through this response.
    length: int


def split(stored: StoredResponse, previous: Link | None) -> tuple[Link, list[dict[str, Any]]]:
    """This response's link and own items, given the link of the response it continues (`None`: it
    continues none, or that one is gone). Whenever linking cannot be right, the items are kept whole."""
    parent = stored.previous_response_id
    if (
        parent is None
        or previous is None
        or previous.length > len(stored.items)
        or parent == stored.id
        or stored.id in previous.chain  # replacing an ancestor of its own: no cycle
    ):
        return Link((), len(stored.items)), stored.items
    return Link((*previous.chain, parent), len(stored.items)), stored.items[previous.length :]


def encode_record(stored: StoredResponse, link: Link) -> bytes:
    """Every field but `items`, and the link."""
    return dumps(
        {
            "v": FORMAT,
            "id": stored.id,
            "owner": stored.owner,
            "response": stored.response,
            "input_count": stored.input_count,
            "provider": stored.provider,
            "created_at": stored.created_at,
            "previous_response_id": stored.previous_response_id,
            "chain": link.chain,
            "length": link.length,
        }
    )


def decode_record(data: bytes | str) -> tuple[dict[str, Any], Link] | None:
    """The fields of `StoredResponse` but `items`, and the link; `None` for a value of another format."""
    fields = loads(data)
    if not isinstance(fields, dict) or fields.pop("v", None) != FORMAT:
        return None
    return fields, Link(tuple(fields.pop("chain")), fields.pop("length"))


def assemble(
    fields: dict[str, Any], link: Link, parts: Sequence[bytes | str | None]
) -> StoredResponse | None:
    """The response from its record's fields and the own items of its chain and of itself, in order;
    `None` when a part is missing or the history does not add up (a response in the chain was replaced)."""
    items: list[dict[str, Any]] = []
    for part in parts:
        if part is None:
            return None
        items.extend(loads(part))
    if len(items) != link.length:
        return None
    return StoredResponse(items=items, **fields)
