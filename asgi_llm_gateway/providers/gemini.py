"""Placeholder: being written (see the issue for this provider)."""

from __future__ import annotations

from .base import HTTPProvider

__all__ = ["GeminiProvider"]


class GeminiProvider(HTTPProvider):
    kind = "gemini"
