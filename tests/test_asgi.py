"""Where a request points below the mount, whatever convention the host follows."""

from __future__ import annotations

import pytest

from asgi_llm_gateway.asgi import local_path


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/v1/chat/completions", "", "/chat/completions"),  # standalone
        ("/chat/completions", "", "/chat/completions"),  # base_url without /v1
        ("/llm/v1/chat/completions", "/llm", "/chat/completions"),  # Starlette/FastAPI Mount: full path
        ("/api/llm/v1/models/echo/echo-1", "/api/llm", "/models/echo/echo-1"),  # nested mounts
        ("/v1/chat/completions/", "", "/chat/completions"),  # Litestar: prefix stripped, slash added
        ("/v1/chat/completions/", "/api", "/chat/completions"),  # Litestar under a server root_path
        ("/llmx/v1/models", "/llm", "/llmx/v1/models"),  # a sibling path is not below the mount
        ("/llm", "/llm", "/"),
        ("/", "", "/"),
    ],
)
def test_local_path(path: str, root_path: str, expected: str) -> None:
    assert local_path({"path": path, "root_path": root_path}) == expected
