"""The official `anthropic` SDK on a mock transport: requests never leave the process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic

__all__ = ["sdk_client", "sdk_http"]


def sdk_http() -> Any:
    """The HTTP library the installed SDK is built on (httpx2 from SDK 2, httpx before), for its
    MockTransport and Response."""
    from anthropic import _base_client

    return getattr(_base_client, "httpx2", None) or getattr(_base_client, "httpx")  # noqa: B009


def sdk_client(handler: Callable[[Any], Any], *, max_retries: int = 0) -> anthropic.Anthropic:
    """A client whose every request `handler` answers."""
    http = sdk_http()
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        max_retries=max_retries,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
