"""OpenAI and the OpenAI-compatible family: one implementation, a table of per-provider quirks.

"Compatible" means similar: several of these upstreams reject fields they do not know, rename some, or
answer in slightly different shapes. Each provider is a `Quirks` row; the translation functions below read
the row and never branch on the provider's name.

Fields the gateway's schema does not know are forwarded only to upstreams that accept unknown fields
(OpenAI, Azure and generic compatible servers); the others get a whitelist.
"""

from __future__ import annotations

import hashlib
import os
import string
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from ..errors import GatewayError
from ..model_ids import path_segment
from ..sse import ServerSentEvent
from ..translate import unsupported
from ..wire import dumps, loads, tool_call_id
from .http import HTTPProvider
from .streams import bad_upstream_data, one_by_one, translate_reads

__all__ = [
    "AzureOpenAIProvider",
    "DeepSeekProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Quirks",
    "XAIProvider",
    "build_request",
    "normalize_chunk",
    "normalize_completion",
]

Request = Mapping[str, Any]

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


OPENAI = Quirks(developer_as_system=False, reasoning_model_prefixes=("o1", "o3", "o4", "gpt-5"))
COMPATIBLE = Quirks(drop=_OPENAI_ONLY_HINTS)
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
)
GROQ = Quirks(
    drop=_OPENAI_ONLY_HINTS,
    reject=frozenset({"logprobs", "top_logprobs", "modalities", "audio"}),
    max_n=1,
)
DEEPSEEK = Quirks(
    drop=_OPENAI_ONLY_HINTS,
    reject=frozenset({"modalities", "audio"}),
    keep_reasoning_content=True,
    text_only=True,
)
XAI = Quirks(drop=_OPENAI_ONLY_HINTS - {"metadata"}, reject=frozenset({"modalities", "audio"}))


# -- requests -------------------------------------------------------------------------------------------


def build_request(
    request: Request, model: str, quirks: Quirks, *, provider: str, stream: bool
) -> dict[str, Any]:
    """The upstream body for `request`. Pure: the client's request is never modified."""
    body: dict[str, Any] = {}
    for key, value in request.items():
        if key in quirks.drop:
            continue
        if key in quirks.reject and value not in (None, False):
            raise unsupported(provider, key)
        key = quirks.renames.get(key, key)
        if quirks.fields is not None and key not in quirks.fields:
            continue
        body[key] = value
    body["model"] = model
    if quirks.max_n is not None and (request.get("n") or 1) > quirks.max_n:
        raise unsupported(provider, "n", f"at most {quirks.max_n} choice(s)")
    reasoning_model = bool(quirks.reasoning_model_prefixes) and model.startswith(
        quirks.reasoning_model_prefixes
    )
    if reasoning_model and "max_tokens" in body and "max_completion_tokens" not in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    if body.get("tool_choice") == "required":
        body["tool_choice"] = quirks.required_tool_choice
    if stream:
        body["stream"] = True
        if quirks.stream_usage_option:
            # Always ask for usage so the gateway can meter; it forwards the usage chunk only if asked.
            body["stream_options"] = {**(request.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    if _messages_need_rewrite(quirks):
        body["messages"] = [_message(m, i, quirks, provider) for i, m in enumerate(request["messages"])]
    return body


def _messages_need_rewrite(quirks: Quirks) -> bool:
    return (
        quirks.developer_as_system
        or not quirks.keep_reasoning_content
        or quirks.message_keys is not None
        or quirks.short_tool_ids
        or quirks.text_only
    )


def _message(message: Mapping[str, Any], index: int, quirks: Quirks, provider: str) -> Mapping[str, Any]:
    """The message as the upstream wants it; the client's own dict when nothing changes (no copy)."""
    if quirks.text_only and isinstance(message.get("content"), list):
        for part_index, part in enumerate(message["content"]):
            if part.get("type") != "text":
                raise unsupported(
                    provider, f"messages[{index}].content[{part_index}].type", f"'{part.get('type')}' parts"
                )
    if (
        not (quirks.developer_as_system and message.get("role") == "developer")
        and (quirks.keep_reasoning_content or "reasoning_content" not in message)
        and quirks.message_keys is None
        and not quirks.short_tool_ids
    ):
        return message
    out = dict(message)
    if quirks.developer_as_system and out.get("role") == "developer":
        out["role"] = "system"
    if not quirks.keep_reasoning_content:
        out.pop("reasoning_content", None)
    if quirks.message_keys is not None:
        for key in [k for k in out if k not in quirks.message_keys]:
            del out[key]
        if out.get("role") == "user":
            out.pop("name", None)
    if quirks.short_tool_ids:
        if out.get("tool_calls"):
            out["tool_calls"] = [
                {**call, "id": short_tool_id(call.get("id", ""))} for call in out["tool_calls"]
            ]
        if "tool_call_id" in out:
            out["tool_call_id"] = short_tool_id(out["tool_call_id"])
    return out


_ALPHANUMERIC = string.ascii_letters + string.digits


def short_tool_id(original: str) -> str:
    """A 9-character alphanumeric id, derived deterministically so that a call and its result still match."""
    if len(original) == 9 and original.isalnum() and original.isascii():
        return original
    number = int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


# -- responses ------------------------------------------------------------------------------------------

_FINISH_REASONS = {"model_length": "length", "eos": "stop", "end_turn": "stop"}
_KNOWN_FINISH = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def _finish_reason(value: Any, provider: str) -> str | None:
    if value is None:
        return None
    if value == "error":
        raise GatewayError(
            f"{provider}: the upstream model failed while generating", status=502, code="upstream_error"
        )
    value = _FINISH_REASONS.get(value, value)
    return value if value in _KNOWN_FINISH else "stop"


def _flatten_content(content: Any, target: dict[str, Any]) -> None:
    """Mistral's reasoning models answer content as a list of chunks: text joins, thinking moves aside."""
    if not isinstance(content, list):
        return
    texts: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if part.get("type") == "thinking":
            for inner in part.get("thinking") or ():
                if isinstance(inner, dict) and inner.get("type") == "text":
                    thoughts.append(inner.get("text", ""))
        elif part.get("type") == "text":
            texts.append(part.get("text", ""))
    target["content"] = "".join(texts) if texts or not thoughts else None
    if thoughts:
        target["reasoning_content"] = (target.get("reasoning_content") or "") + "".join(thoughts)


def _normalize_message(message: dict[str, Any]) -> None:
    if "reasoning" in message and "reasoning_content" not in message:
        reasoning = message.pop("reasoning")
        if isinstance(reasoning, str):
            message["reasoning_content"] = reasoning
    _flatten_content(message.get("content"), message)


def _normalize_tool_calls(calls: Any, provider: str) -> None:
    """`message.tool_calls` in OpenAI's exact shape, in place: `id`, `type`, `function: {name, arguments}`.

    Mistral omits `type` and numbers each call with an `index` (a chunk-only field); the SDKs then see
    `type=None` and their tool loops stop (openai-node's `runTools`, the Vercel AI SDK). Unconditional
    rather than a quirk: a call already in shape costs a few dict lookups, only answers with tool calls pay
    them, and a compatible server that deviates the same way is fixed without anyone listing it.
    """
    if not isinstance(calls, list):
        raise bad_upstream_data(provider, "tool_calls that are not a list")
    for call in calls:
        if not isinstance(call, dict):
            raise bad_upstream_data(provider, "a tool call that is not an object")
        call.pop("index", None)
        if not call.get("id") or not isinstance(call["id"], str):
            call["id"] = tool_call_id()
        if call.get("type") is None:
            call["type"] = "function"
        if call["type"] != "function":
            continue  # OpenAI's own `custom` tool calls pass through as they are
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_upstream_data(provider, "a tool call without a function name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # absent, or an object instead of its JSON text
            function["arguments"] = "{}" if arguments is None else dumps(arguments).decode()


def _normalize_tool_call_deltas(deltas: Any) -> None:
    """Streamed tool-call fragments as OpenAI sends them, in place: `index` stays (chunks require it), and
    the fragment that opens a call (the one with its `id`) says `type: "function"`."""
    for delta in deltas if isinstance(deltas, list) else ():
        if isinstance(delta, dict) and delta.get("id") is not None and delta.get("type") is None:
            delta["type"] = "function"


def _normalize_usage(usage: dict[str, Any]) -> dict[str, Any]:
    hit = usage.get("prompt_cache_hit_tokens")
    if hit is not None:  # DeepSeek
        details = dict(usage.get("prompt_tokens_details") or {})
        details.setdefault("cached_tokens", hit)
        usage = {**usage, "prompt_tokens_details": details}
    return usage


def normalize_completion(native: Any, provider: str) -> dict[str, Any]:
    """An upstream `chat.completion`, made canonical (reasoning field, finish reasons, usage)."""
    if not isinstance(native, dict) or not isinstance(native.get("choices"), list):
        raise bad_upstream_data(provider, "a chat.completion without choices")
    for choice in native["choices"]:
        message = choice.get("message")
        if not isinstance(message, dict):
            raise bad_upstream_data(provider, "a choice without a message")
        _normalize_message(message)
        choice["finish_reason"] = _finish_reason(choice.get("finish_reason"), provider) or "stop"
        if message.get("tool_calls"):
            _normalize_tool_calls(message["tool_calls"], provider)
            choice["finish_reason"] = "tool_calls"
        choice.setdefault("logprobs", None)
    native["object"] = "chat.completion"
    for key in ("prompt_filter_results", "x_groq"):
        native.pop(key, None)
    if isinstance(native.get("usage"), dict):
        native["usage"] = _normalize_usage(native["usage"])
    return native


def normalize_chunk(chunk: Any, provider: str) -> dict[str, Any] | None:
    """An upstream `chat.completion.chunk`, made canonical; None for chunks with nothing to say."""
    if not isinstance(chunk, dict):
        raise bad_upstream_data(provider, "a stream event that is not a JSON object")
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise GatewayError(f"{provider}: {message}", status=502, code="upstream_error")
    extra = chunk.pop("x_groq", None)
    if isinstance(extra, dict):
        if extra.get("error"):
            raise GatewayError(f"{provider}: {extra['error']}", status=502, code="upstream_error")
        if extra.get("usage") and not chunk.get("usage"):
            chunk["usage"] = extra["usage"]
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise bad_upstream_data(provider, "a chunk without choices")
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        chunk["usage"] = _normalize_usage(usage)
    if not choices:
        return chunk if isinstance(usage, dict) else None  # Azure's prompt-filter chunks carry nothing
    for choice in choices:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            raise bad_upstream_data(provider, "a chunk choice without a delta")
        _normalize_message(delta)
        if delta.get("tool_calls"):
            _normalize_tool_call_deltas(delta["tool_calls"])
        choice["finish_reason"] = _finish_reason(choice.get("finish_reason"), provider)
        choice.pop("content_filter_results", None)
    chunk.pop("prompt_filter_results", None)
    chunk["object"] = "chat.completion.chunk"
    return chunk


class ChunkReader:
    """An OpenAI-style upstream's stream events → normalised chunks, up to `data: [DONE]`."""

    __slots__ = ("done", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = False

    def feed(self, event: ServerSentEvent) -> list[dict[str, Any]]:
        data = event.data
        if self.done or not data.strip():
            return []
        if data.startswith("[DONE]"):
            self.done = True
            return []
        try:
            parsed = loads(data)
        except ValueError:
            raise bad_upstream_data(self.kind, "a stream event that is not JSON") from None
        chunk = normalize_chunk(parsed, self.kind)
        return split_usage(chunk) if chunk is not None else []

    def end(self) -> list[dict[str, Any]]:
        """Nothing to add: the relay itself fails a stream whose choices never finished."""
        return []


def split_usage(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI sends usage in its own chunk with `choices: []`; some upstreams attach it to the last one."""
    usage = chunk.get("usage")
    if not chunk["choices"] or not isinstance(usage, dict):
        return [chunk]
    content = {**chunk, "usage": None}
    return [content, {**chunk, "choices": [], "usage": usage}]


# -- the providers -------------------------------------------------------------------------------------


class OpenAICompatibleProvider(HTTPProvider):
    """Any server that speaks OpenAI chat completions: vLLM, Ollama, llama.cpp, LM Studio…

    `base_url` includes `/v1` (what the OpenAI SDK means by it); requests go to `{base_url}/chat/completions`.
    """

    kind = "openai-compatible"
    quirks: ClassVar[Quirks] = COMPATIBLE

    def chat_url(self, model: str) -> str:
        return f"{self.base_url}/chat/completions"

    def _body(self, request: Request, model: str, stream: bool) -> dict[str, Any]:
        return build_request(request, model, self.quirks, provider=self.kind, stream=stream)

    def error_details(self, status: int, body: Any, text: str) -> tuple[str, str | None]:
        message, code = super().error_details(status, body, text)
        if isinstance(body, dict) and isinstance(body.get("message"), (dict, list)):  # Mistral's 422 detail
            message = text[:1000]
        return message, code

    async def complete(self, request: Request, model: str) -> dict[str, Any]:
        native = await self.post_json(self.chat_url(model), self._body(request, model, stream=False))
        return normalize_completion(native, self.kind)

    def stream(self, request: Request, model: str) -> AsyncIterator[dict[str, Any]]:
        return one_by_one(self.stream_batches(request, model))

    def stream_batches(self, request: Request, model: str) -> AsyncIterator[list[dict[str, Any]]]:
        reader = ChunkReader(self.kind)
        reads = self.post_sse(self.chat_url(model), self._body(request, model, stream=True))
        return translate_reads(reads, reader)

    async def list_models(self) -> list[str]:
        if self.models is not None:
            return list(self.models)
        if not self.base_url:
            return []
        listing = await self.get_json(f"{self.base_url}/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        return [
            item["id"] for item in data or () if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI itself: the request passes through with only what reasoning models require changed."""

    kind = "openai"
    api_key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    quirks = OPENAI


class MistralProvider(OpenAICompatibleProvider):
    kind = "mistral"
    api_key_env = "MISTRAL_API_KEY"
    default_base_url = "https://api.mistral.ai/v1"
    quirks = MISTRAL


class GroqProvider(OpenAICompatibleProvider):
    kind = "groq"
    api_key_env = "GROQ_API_KEY"
    default_base_url = "https://api.groq.com/openai/v1"
    quirks = GROQ


class DeepSeekProvider(OpenAICompatibleProvider):
    kind = "deepseek"
    api_key_env = "DEEPSEEK_API_KEY"
    default_base_url = "https://api.deepseek.com"
    quirks = DEEPSEEK


class XAIProvider(OpenAICompatibleProvider):
    kind = "xai"
    api_key_env = "XAI_API_KEY"
    default_base_url = "https://api.x.ai/v1"
    quirks = XAI


class AzureOpenAIProvider(OpenAICompatibleProvider):
    """Azure OpenAI. `base_url` is the resource endpoint (`https://<resource>.openai.azure.com`).

    With an `api_version` (argument or OPENAI_API_VERSION) requests use the deployments URL, the model being
    the deployment name; without one they use the v1 API (`/openai/v1/chat/completions`).
    """

    kind = "azure"
    api_key_env = "AZURE_OPENAI_API_KEY"
    quirks = OPENAI

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 600.0,
        *,
        api_version: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, base_url or os.environ.get("AZURE_OPENAI_ENDPOINT"), timeout, **options)
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION")

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def chat_url(self, model: str) -> str:
        if self.base_url.endswith("/openai/v1"):
            return f"{self.base_url}/chat/completions"
        if self.api_version:
            return (
                f"{self.base_url}/openai/deployments/{path_segment(model)}/chat/completions"
                f"?api-version={quote(self.api_version, safe='')}"
            )
        return f"{self.base_url}/openai/v1/chat/completions"

    async def list_models(self) -> list[str]:
        return list(self.models or ())
