"""The embeddings contract every embedding provider shares, and the pieces they all need.

`Provider.embed(request, model)` gets an `EmbeddingRequest`: the client's validated `/v1/embeddings` body
with `input` always a list (a string or one token array becomes a list of one):

    input        list[str] | list[list[int]]   never empty, no empty string, no empty token array
    dimensions   int | None                    each provider maps it (`output_dimension`,
                                                `outputDimensionality`, Titan's `dimensions`) or refuses it
    user         str | None                    OpenAI's abuse-monitoring id; forwarded where understood
    input_type   str | None                    gateway extension: search_document | search_query |
                                                classification | clustering (Cohere's names)
    task_type    str | None                    gateway extension: a Gemini TaskType (RETRIEVAL_QUERY, …)
    …            the client's other top-level fields (the OpenAI family forwards them)

and returns OpenAI's answer with float vectors, in input order:

    {"object": "list", "model": <upstream id>, "data": [{"object": "embedding", "index": i,
     "embedding": [float, …]}, …], "usage": {"prompt_tokens": n, "total_tokens": n}}

The door sets `model` to the client-facing name and encodes base64 when the client asked for it
(`encode_base64`: little-endian float32, exactly as OpenAI encodes it), so no provider deals with
`encoding_format`.

Token arrays: OpenAI and Azure take them as they are. Every other upstream takes text, so `input_texts`
decodes them with tiktoken's `cl100k_base` — the encoding of OpenAI's embedding models, and the one
LangChain's `OpenAIEmbeddings` tokenizes with by default for any model name tiktoken does not know (every
`provider/model` id). That needs the optional `tiktoken` package and its `cl100k_base` file (downloaded on
first use, or read from `TIKTOKEN_CACHE_DIR` on a host without network); without them a token array to
such an upstream is a 400 naming `input`.
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import sys
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio

from ..errors import GatewayError
from .streams import bad_upstream_data

__all__ = [
    "INPUT_TYPES",
    "EmbeddingRequest",
    "decode_base64",
    "embedding_list",
    "encode_base64",
    "gather_limited",
    "input_texts",
    "is_token_input",
    "task_type_of",
    "unsupported_dimensions",
    "vector_of",
]

logger = logging.getLogger("asgi_llm_gateway")

EmbeddingRequest = Mapping[str, Any]
T = TypeVar("T")

#: The gateway's `input_type` values (Cohere's) and the Gemini task type each stands for.
INPUT_TYPES: Mapping[str, str] = {
    "search_document": "RETRIEVAL_DOCUMENT",
    "search_query": "RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}
#: The encoding token arrays are decoded with for upstreams that take text (see the module docstring).
TOKEN_ENCODING = "cl100k_base"


def embedding_list(vectors: Sequence[list[float]], model: str, prompt_tokens: int) -> dict[str, Any]:
    """OpenAI's embeddings answer for `vectors` in input order."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def vector_of(value: Any, kind: str) -> list[float]:
    """An upstream's vector, checked: a non-empty list of finite numbers (ints become floats). The checks run
    at C speed (a set of types, one sum: NaN and infinities survive a sum), ~10 us for 1536 values where a
    loop in Python took 77."""
    if not isinstance(value, list) or not value:
        raise bad_upstream_data(kind, "an embedding that is not a list of numbers")
    types = set(map(type, value))
    if not types <= _NUMBER_TYPES:  # bool is not int here: `type(True) is bool`
        raise bad_upstream_data(kind, "an embedding value that is not a number")
    vector: list[float] = [float(number) for number in value] if int in types else value
    if not math.isfinite(sum(vector)):
        raise bad_upstream_data(kind, "an embedding value that is not finite")
    return vector


_NUMBER_TYPES = frozenset({float, int})


def encode_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI's `encoding_format: "base64"` sends it: little-endian float32, base64."""
    packed = array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover - every platform the gateway runs on is little-endian
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(text: str) -> list[float]:
    """`encode_base64` undone (what the OpenAI SDK does with a base64 answer)."""
    packed = array("f")
    packed.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tolist()


def is_token_input(request: EmbeddingRequest) -> bool:
    """Whether `input` is token arrays rather than text."""
    return not isinstance(request["input"][0], str)


def task_type_of(request: EmbeddingRequest) -> str | None:
    """Gemini's task type: `task_type` as given, else the one `input_type` stands for, else None."""
    task_type = request.get("task_type")
    if task_type is not None:
        return str(task_type)
    input_type = request.get("input_type")
    return INPUT_TYPES.get(input_type) if isinstance(input_type, str) else None


def unsupported_dimensions(kind: str, model: str, allowed: Sequence[int] = ()) -> GatewayError:
    """400 naming `dimensions`: the model has a fixed size, or takes only the sizes in `allowed`."""
    if allowed:
        detail = "takes only dimensions " + ", ".join(map(str, allowed))
    else:
        detail = "does not support specifying dimensions"
    return GatewayError(
        f"dimensions: {kind} model '{model}' {detail}.", status=400, param="dimensions", code="invalid_value"
    )


async def input_texts(request: EmbeddingRequest, kind: str) -> list[str]:
    """The inputs as text, for an upstream that takes text only: token arrays decoded (module docstring)."""
    items: list[Any] = list(request["input"])
    if not is_token_input(request):
        return items
    encoding = await anyio.to_thread.run_sync(_token_encoding)  # the first call reads (or downloads) a file
    if encoding is None:
        raise GatewayError(
            f"input: {kind} takes text, not token arrays, and this gateway cannot decode them (it needs the "
            f"'tiktoken' package and its {TOKEN_ENCODING} file). Send the text itself; with LangChain's "
            "OpenAIEmbeddings, pass check_embedding_ctx_length=False.",
            status=400,
            param="input",
            code="invalid_value",
        )
    texts: list[str] = []
    for index, tokens in enumerate(items):
        try:
            texts.append(encoding.decode_bytes(tokens).decode("utf-8", errors="replace"))
        except (KeyError, ValueError, OverflowError, TypeError):
            raise GatewayError(
                f"input[{index}]: not a {TOKEN_ENCODING} token array (a token id is out of range).",
                status=400,
                param=f"input[{index}]",
                code="invalid_value",
            ) from None
    return texts


class _Decoder(Protocol):
    def decode_bytes(self, tokens: Sequence[int]) -> bytes: ...


@functools.cache
def _token_encoding() -> _Decoder | None:
    """tiktoken's `cl100k_base`, loaded once per process; None when it cannot be (and that is kept too, so
    a host without the file does not retry a download on every request)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding: _Decoder = tiktoken.get_encoding(TOKEN_ENCODING)
    except Exception as exc:  # no network and no cached file, most likely
        logger.warning("token arrays cannot be decoded: loading %s failed: %s", TOKEN_ENCODING, exc)
        return None
    return encoding


async def gather_limited(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Every call's result, in order, with at most `limit` running at once; the first failure cancels the
    rest and is raised."""
    results: list[Any] = [None] * len(calls)
    semaphore = anyio.Semaphore(limit)

    async def run(index: int) -> None:
        async with semaphore:
            results[index] = await calls[index]()

    if len(calls) == 1:
        await run(0)
        return results
    try:
        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(run, index)
    except BaseException as exc:
        inner = _first_error(exc)
        if inner is not None:
            raise inner from None
        raise
    return results


def _first_error(exc: BaseException) -> GatewayError | None:
    """The first `GatewayError` in a task group's exception group (Python 3.10 has no `except*`)."""
    if isinstance(exc, GatewayError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_error(inner)
        if found is not None:
            return found
    return None
