"""Placeholder: being written (see the issue for this provider)."""

from __future__ import annotations

from .base import HTTPProvider

__all__ = ["AnthropicProvider"]


class AnthropicProvider(HTTPProvider):
    kind = "anthropic"
