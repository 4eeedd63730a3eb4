"""The example host apps (examples/), each served by its real framework on a loopback port and driven with the
official OpenAI SDK at `<origin>/llm/v1`: the gateway works under the mount, the host's own auth decides who
may call it, paths outside the mount stay the host's, and host shutdown closes the gateway."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from asgi_llm_gateway.providers import EchoProvider, Provider
from examples import django_app, fastapi_app, litestar_app, starlette_app
from tests.support.server import serve

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class Host:
    name: str
    create_app: Callable[[Mapping[str, Provider] | None], Any]
    key: str  # a key the host's own auth accepts, for the user "alice"


HOSTS = [
    Host("fastapi", fastapi_app.create_app, "sk-demo-alice"),
    Host("starlette", starlette_app.create_app, "sk-demo-alice"),
    Host("litestar", litestar_app.create_app, "sk-demo-alice"),
    Host("django", django_app.create_app, django_app.issue_api_key("alice")),
]


class ClosingEcho(EchoProvider):
    """The echo provider, remembering whether the gateway closed it."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


@dataclass(frozen=True)
class Served:
    host: Host
    origin: str

    def client(self, key: str | None = None, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.origin + "/llm/v1",
            api_key=key or self.host.key,
            max_retries=0,
            timeout=10,
            **options,
        )


@pytest.fixture(scope="module", params=HOSTS, ids=[host.name for host in HOSTS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    host: Host = request.param
    with serve(host.create_app(None)) as origin:
        yield Served(host, origin)


def test_plain_completion(served: Served) -> None:
    with served.client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="echo/echo-1", messages=[{"role": "user", "content": "Hello from the host"}]
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the host"
    assert completion.model == "echo/echo-1"
    assert raw.headers["x-llm-gateway-provider"] == "echo"


def test_streamed_completion(served: Served) -> None:
    with served.client() as client:
        chunks = list(
            client.chat.completions.create(
                model="echo/echo-1",
                messages=[{"role": "user", "content": "one two three four"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_tool_call(served: Served) -> None:
    with served.client() as client:
        completion = client.chat.completions.create(
            model="echo/echo-1",
            messages=[{"role": "user", "content": "What does get_weather say?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "What does get_weather say?"}  # type: ignore[union-attr]


def test_models_under_the_mount(served: Served) -> None:
    with served.client() as client:
        assert [model.id for model in client.models.list()] == ["echo/echo-1"]
        assert client.models.retrieve("echo/echo-1").owned_by == "echo"  # an id with a '/' in the path
    assert httpx.get(served.origin + "/llm/healthz").json() == {"status": "ok"}


def test_unknown_key_is_refused_by_the_hosts_auth(served: Served) -> None:
    with served.client(key="sk-demo-mallory") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="echo/echo-1", messages=[{"role": "user", "content": "x"}])
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    response = httpx.post(served.origin + "/llm/v1/chat/completions", json={"model": "echo/echo-1"})
    assert response.status_code == 401  # no key at all


def test_paths_outside_the_mount_belong_to_the_host(served: Served) -> None:
    with (
        openai.OpenAI(base_url=served.origin + "/nope/v1", api_key=served.host.key, max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.chat.completions.create(model="echo/echo-1", messages=[{"role": "user", "content": "x"}])
    assert "x-request-id" not in caught.value.response.headers  # the host answered, not the gateway
    for path in ("/nope", "/llmx/v1/models", "/llm-stats"):
        response = httpx.get(served.origin + path)
        assert response.status_code == 404, path
        assert "x-request-id" not in response.headers, path
    # Inside the mount, unknown paths are the gateway's: OpenAI's error envelope.
    response = httpx.get(served.origin + "/llm/v1/audio/speech")
    assert response.status_code == 404
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json()["error"]["code"] == "unknown_url"


def test_the_hosts_own_route_still_works(served: Served) -> None:
    response = httpx.get(served.origin + "/hello", headers={"Authorization": f"Bearer {served.host.key}"})
    assert response.status_code == 200
    assert response.json() == {"hello": "alice"}
    assert httpx.get(served.origin + "/hello").status_code == 401


@pytest.mark.parametrize("host", HOSTS, ids=[host.name for host in HOSTS])
def test_host_shutdown_closes_the_gateway(host: Host) -> None:
    provider = ClosingEcho()
    with serve(host.create_app({"echo": provider})) as origin:
        with openai.OpenAI(base_url=origin + "/llm/v1", api_key=host.key, max_retries=0) as client:
            client.chat.completions.create(model="echo/echo-1", messages=[{"role": "user", "content": "x"}])
        assert not provider.closed
    assert provider.closed


# -- Django: its session cookie also authenticates, for the site's own pages only -------------------------


@pytest.fixture(scope="module")
def django_origin() -> Iterator[str]:
    with serve(django_app.create_app(None)) as origin:
        yield origin


def test_django_session_cookie_authenticates_same_origin_requests(django_origin: str) -> None:
    login = httpx.post(django_origin + "/login", data={"api_key": django_app.issue_api_key("bob")})
    assert login.status_code == 200
    # What a page of the site sends with fetch(): its session cookie, no API key.
    browser = {"Cookie": f"sessionid={login.cookies['sessionid']}", "Sec-Fetch-Site": "same-origin"}
    body = {"model": "echo/echo-1", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(django_origin + "/llm/v1/chat/completions", json=body, headers=browser)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hi"
    assert httpx.get(django_origin + "/hello", headers=browser).json() == {"hello": "bob"}
    # Another site's page posting with our cookie, and a forged cookie, are refused.
    cross_site = {**browser, "Sec-Fetch-Site": "cross-site"}
    assert (
        httpx.post(django_origin + "/llm/v1/chat/completions", json=body, headers=cross_site).status_code
        == 401
    )
    forged = {**browser, "Cookie": "sessionid=eyJ1c2VybmFtZSI6ImV2ZSJ9:forged"}
    assert (
        httpx.post(django_origin + "/llm/v1/chat/completions", json=body, headers=forged).status_code == 401
    )
    assert httpx.post(django_origin + "/login", data={"api_key": "forged"}).status_code == 401
