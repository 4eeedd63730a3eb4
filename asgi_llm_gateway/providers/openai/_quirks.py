"""The `Quirks` table: how each OpenAI-compatible upstream deviates from OpenAI's wire contract, as data.

One row per upstream. The translation (`_request.py`, `_response.py`) reads the row and never branches on
the provider's name, so a new compatible upstream is a new row, not new code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["COMPATIBLE", "DEEPSEEK", "GROQ", "MISTRAL", "OPENAI", "XAI", "Quirks"]

# Fields that only steer OpenAI's own platform; other upstreams get them dropped, never rejected.
_OPENAI_ONLY_HINTS = frozenset(
    {
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "safety_identifier",
        "verbosity",
        "metadata",
        "moderation",
        "logit_bias",
    }
)


@dataclass(frozen=True)
class Quirks:
    """How one upstream deviates from OpenAI's wire contract."""

    #: Top-level fields the upstream accepts; None forwards everything, unknown fields included.
    fields: frozenset[str] | None = None
    #: Fields dropped silently: pure hints with no equivalent upstream.
    drop: frozenset[str] = frozenset()
    #: Fields answered with 400, because dropping them would change the answer.
    reject: frozenset[str] = frozenset()
    #: Field renames, applied after dropping (`seed` → `random_seed`).
    renames: Mapping[str, str] = field(default_factory=dict)
    #: Send `developer` messages as `system`.
    developer_as_system: bool = True
    #: Keep `reasoning_content` on assistant messages (DeepSeek requires it back after tool calls).
    keep_reasoning_content: bool = False
    #: Forward the Anthropic-style `cache_control` extension on messages, content parts and tools (routers
    #: such as OpenRouter take it); strict upstreams answer it with a 400, so the named rows strip it.
    cache_control: bool = False
    #: Keys allowed on each message; None forwards every key.
    message_keys: frozenset[str] | None = None
    #: Tool-call ids must be exactly 9 alphanumerics (Mistral).
    short_tool_ids: bool = False
    #: The upstream understands `stream_options.include_usage`.
    stream_usage_option: bool = True
    #: Content parts other than text are refused (DeepSeek).
    text_only: bool = False
    #: The largest `n` the upstream serves.
    max_n: int | None = None
    #: `tool_choice: "required"` is spelled differently.
    required_tool_choice: str = "required"
    #: Models (by prefix) that take `max_completion_tokens` only.
    reasoning_model_prefixes: tuple[str, ...] = ()
    #: The upstream serves OpenAI's Responses API (`POST {base}/responses`) with OpenAI's exact wire format,
    #: so Responses requests pass through natively. True for OpenAI and Azure only: xAI and Groq have a
    #: `/responses` endpoint too, but its events and items are not verified to match OpenAI's.
    responses: bool = False
    #: The upstream serves `POST {base}/embeddings` (OpenAI's shape). Groq, DeepSeek and xAI have none.
    embeddings: bool = True
    #: Embedding `input` may be token arrays, which only mean something to a model that tokenizes as the
    #: client did (OpenAI's models, with tiktoken); elsewhere they are decoded to text first.
    embedding_tokens: bool = False
    #: Top-level embedding fields the upstream accepts; None forwards everything (but the gateway's own).
    embedding_fields: frozenset[str] | None = None
    #: Embedding field renames (`dimensions` → Mistral's `output_dimension`).
    embedding_renames: Mapping[str, str] = field(default_factory=dict)


OPENAI = Quirks(
    developer_as_system=False,
    reasoning_model_prefixes=("o1", "o3", "o4", "gpt-5"),
    responses=True,
    embedding_tokens=True,
)
COMPATIBLE = Quirks(drop=_OPENAI_ONLY_HINTS, cache_control=True)
MISTRAL = Quirks(
    fields=frozenset(
        {
            "model",
            "messages",
            "temperature",
            "top_p",
            "max_tokens",
            "stream",
            "stop",
            "random_seed",
            "response_format",
            "tools",
            "tool_choice",
            "presence_penalty",
            "frequency_penalty",
            "n",
            "prediction",
            "parallel_tool_calls",
            "reasoning_effort",
            "prompt_cache_key",
            "metadata",
        }
    ),
    drop=_OPENAI_ONLY_HINTS - {"prompt_cache_key", "metadata"} | {"user", "stream_options"},
    reject=frozenset({"logprobs", "top_logprobs", "modalities", "audio", "web_search_options"}),
    renames={"seed": "random_seed", "max_completion_tokens": "max_tokens"},
    message_keys=frozenset({"role", "content", "tool_calls", "tool_call_id", "name", "prefix"}),
    short_tool_ids=True,
    stream_usage_option=False,
    required_tool_choice="any",
    # Mistral's EmbeddingRequest: model, input, output_dimension, output_dtype, encoding_format, metadata.
    embedding_fields=frozenset({"model", "input", "output_dimension", "output_dtype", "metadata"}),
    embedding_renames={"dimensions": "output_dimension"},
)
GROQ = Quirks(
    drop=_OPENAI_ONLY_HINTS,
    reject=frozenset({"logprobs", "top_logprobs", "modalities", "audio"}),
    max_n=1,
    embeddings=False,
)
DEEPSEEK = Quirks(
    drop=_OPENAI_ONLY_HINTS,
    reject=frozenset({"modalities", "audio"}),
    keep_reasoning_content=True,
    text_only=True,
    embeddings=False,
)
XAI = Quirks(
    drop=_OPENAI_ONLY_HINTS - {"metadata"}, reject=frozenset({"modalities", "audio"}), embeddings=False
)
