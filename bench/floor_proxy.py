"""The Python floor: Starlette + aiohttp passing bytes through: no parsing, no validation, no translation.

Whatever the gateway does beyond this (parse, validate, translate, re-encode) is the gateway's own cost; the
issue's targets are ratios to this proxy measured in the same run. Every POST to `/{path}` goes to
`{upstream}/{path}` with the same body; the answer comes back as is (streamed when it is an event stream).

Run: python bench/floor_proxy.py --upstream http://127.0.0.1:9001 --port 9002 [--runner-gc]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


class Upstream:
    """One pooled aiohttp session, created inside the running loop on first use (TCP_NODELAY is aiohttp's
    default)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def build_app(upstream_url: str) -> Starlette:
    upstream = Upstream(upstream_url)

    async def proxy(request: Request) -> Response:
        body = await request.body()
        response = await upstream.session.post(
            upstream.base_url + request.url.path,
            data=body,
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        content_type = response.headers.get("content-type", "application/json")
        if "event-stream" not in content_type and "eventstream" not in content_type:
            async with response:
                content = await response.read()
            return Response(content, status_code=response.status, media_type=content_type)

        async def relay() -> AsyncIterator[bytes]:
            async with response:
                async for data in response.content.iter_any():
                    yield data

        return StreamingResponse(relay(), status_code=response.status, media_type=content_type)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()

    return Starlette(routes=[Route("/{path:path}", proxy, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True, help="the mock upstream's origin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument(
        "--runner-gc",
        action="store_true",
        help="set the garbage collector up as the gateway's runner does (its start-up heap frozen, the young "
        "generation collected every 5,000 allocations) before serving",
    )
    args = parser.parse_args()
    import uvicorn

    app = build_app(args.upstream)
    if args.runner_gc:  # what asgi_llm_gateway.cli._tune_gc does, without loading the gateway here
        import gc

        gc.collect()
        gc.freeze()
        # cli.GC_GEN0_THRESHOLD, repeated so that the floor's process never imports the gateway: change both
        gc.set_threshold(5000, *gc.get_threshold()[1:])
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
