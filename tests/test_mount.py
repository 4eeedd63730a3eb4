"""`PathPrefixDispatcher`: the gateway under a prefix of a host without mounts, served by uvicorn on
loopback, with both lifespan modes (Django's example app covers the real framework in e2e/test_mounts.py)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway, PathPrefixDispatcher
from asgi_llm_gateway.providers import EchoProvider
from tests.support.server import serve


class ClosingEcho(EchoProvider):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


class Host:
    """A plain ASGI app with a lifespan of its own, answering every path it is given with that path."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"host: {scope['root_path']}|{scope['path']}".encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("lifespan", ["gateway", "app"])
def test_prefix_goes_to_the_gateway_and_the_rest_to_the_host(lifespan: Any) -> None:
    echo, host = ClosingEcho(), Host()
    app = PathPrefixDispatcher(host, Gateway({"echo": echo}), prefix="/llm", lifespan=lifespan)
    with serve(app, lifespan="on") as url:
        client = openai.OpenAI(base_url=f"{url}/llm/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(
            model="echo/echo-1", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
        assert httpx.get(f"{url}/llm/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/llmx/v1/models").text == "host: |/llmx/v1/models"
        assert httpx.get(f"{url}/other").text == "host: |/other"
        missing = httpx.get(f"{url}/llm/nothing")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"
    assert echo.closed == 1  # closed on shutdown in both modes
    assert host.lifespan == ([] if lifespan == "gateway" else ["lifespan.startup", "lifespan.shutdown"])


def test_the_prefix_is_moved_into_root_path_below_an_outer_root_path() -> None:
    seen: list[tuple[str, str]] = []

    async def gateway(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["root_path"], scope["path"]))

    async def host(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the host must not see the gateway's paths")

    async def call(path: str) -> None:
        scope = {"type": "http", "path": path, "root_path": "/outer", "method": "GET"}
        await PathPrefixDispatcher(host, gateway, prefix="/llm")(scope, None, None)  # type: ignore[arg-type]

    anyio.run(call, "/outer/llm/v1/models")
    anyio.run(call, "/outer/llm")
    assert seen == [("/outer/llm", "/outer/llm/v1/models"), ("/outer/llm", "/outer/llm")]


@pytest.mark.parametrize("prefix", ["llm", "/llm/", ""])
def test_a_malformed_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        PathPrefixDispatcher(Host(), Gateway(), prefix=prefix)


def test_an_unknown_lifespan_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="lifespan"):
        PathPrefixDispatcher(Host(), Gateway(), lifespan="both")  # type: ignore[arg-type]
