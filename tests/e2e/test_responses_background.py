"""Background responses through the official `openai` SDK over loopback: `background: true` answered `queued`,
polled to its end, chained, cancelled (on this replica and on another one sharing Redis), streamed, metered
once; behind echo, OpenAI's fake (native Responses) and a chat upstream that holds its answers until the test
releases them (tests/support/held_upstream.py), so that a run can be caught while it waits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import openai
import pytest

from asgi_llm_gateway import Gateway, Hooks, Policy, UsageRecord, api_keys
from asgi_llm_gateway.asgi import Message
from asgi_llm_gateway.endpoints.responses import Conversation, ResponsesEndpoint
from asgi_llm_gateway.endpoints.responses_background import BackgroundRuns, tolerant
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.pipeline.call import Call
from asgi_llm_gateway.providers import EchoProvider, OpenAIProvider
from asgi_llm_gateway.providers.openai import OpenAICompatibleProvider
from asgi_llm_gateway.routing import Target
from asgi_llm_gateway.state import ResponseStore
from tests.fakes import openai as fake_openai
from tests.support import held_upstream
from tests.support.held_upstream import HeldUpstream
from tests.support.redis_server import redis_url_fixture  # noqa: F401  (the redis_url fixture)
from tests.support.server import ServedURL, serve
from tests.support.waiting import wait_for

KEY = "sk-gw-background-0001"
OTHER_KEY = "sk-gw-background-0002"
HELD = "held/slow-1"
ECHO = "echo/echo-1"
NATIVE = "openai/gpt-4.1"


class Recorder(Hooks):
    """Every call's start and end, as the hooks see them."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[UsageRecord] = []

    async def request_started(self, call: Call) -> None:
        self.started.append(call.request_id)

    async def admit(self, call: Call, targets: Sequence[Target]) -> None:
        if "[refuse]" in json.dumps(call.body.get("input")):
            raise GatewayError("Too many requests; slow down.", status=429, code="rate_limit_exceeded")

    async def request_ended(self, call: Call, record: UsageRecord) -> None:
        self.ended.append(record)

    def ended_for(self, request_id: str, timeout: float = 3.0) -> list[UsageRecord]:
        """The records of that request, once there is one: a call is settled after its answer is sent, so
        a client can read the answer before the hooks have the record (this raced in a loaded run)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.ended if record.request_id == request_id]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.01)


@dataclass
class Rig:
    url: ServedURL
    gateway: Gateway
    held: HeldUpstream
    native: fake_openai.FakeOpenAI
    hooks: Recorder

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)

    @property
    def runs(self) -> Any:
        endpoint = self.gateway.routes["/responses"]
        assert isinstance(endpoint, ResponsesEndpoint)
        return endpoint.runs

    def tasks(self) -> int:
        return len(asyncio.all_tasks(self.url.loop))


def make_gateway(
    held_url: str, hooks: Recorder, store: ResponseStore | None = None, **providers: Any
) -> Gateway:
    return Gateway(
        providers={
            "echo": EchoProvider(),
            "held": OpenAICompatibleProvider(api_key=held_upstream.KEY, base_url=held_url + "/v1"),
            **providers,
        },
        auth=api_keys({KEY: "agent", OTHER_KEY: "someone-else"}),
        policy=Policy(max_attempts=1),
        hooks=[hooks],
        response_store=store,
    )


@pytest.fixture(scope="module")
def module_rig() -> Iterator[Rig]:
    held, native, hooks = HeldUpstream(), fake_openai.FakeOpenAI(), Recorder()
    with serve(held) as held_url, serve(native.app()) as native_url:
        gateway = make_gateway(
            held_url, hooks, openai=OpenAIProvider(api_key=fake_openai.KEY, base_url=native_url + "/v1")
        )
        with serve(gateway) as url:
            yield Rig(url, gateway, held, native, hooks)


@pytest.fixture
def rig(module_rig: Rig) -> Iterator[Rig]:
    module_rig.held.reset()
    yield module_rig
    module_rig.held.release.set()  # nothing stays held for the next test
    wait_for(lambda: len(module_rig.runs) == 0)


def poll(client: openai.OpenAI, response_id: str) -> Any:
    """Retrieve the response until its run has ended, as the OpenAI guide polls."""
    deadline = time.monotonic() + 10
    response = client.responses.retrieve(response_id)
    while response.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"{response_id} is still {response.status}"
        time.sleep(0.02)
        response = client.responses.retrieve(response_id)
    return response


def create_raw(rig: Rig, key: str = KEY, **body: Any) -> httpx.Response:
    return httpx.post(rig.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"})


# -- create, poll, chain ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [ECHO, NATIVE, HELD])
def test_background_is_queued_at_once_then_polled_to_completed(rig: Rig, model: str) -> None:
    rig.held.release.set()
    client = rig.client()
    raw = client.responses.with_raw_response.create(
        model=model, input="Hello in the background", background=True
    )
    queued = raw.parse()
    assert queued.status == "queued" and queued.background is True
    assert queued.output == [] and queued.usage is None
    final = poll(client, queued.id)
    assert final.id == queued.id and final.status == "completed" and final.background is True
    assert "Hello in the background" in final.output_text
    assert final.model == model and final.usage is not None and final.usage.output_tokens > 0
    [record] = rig.hooks.ended_for(raw.headers["x-request-id"])  # one settle for the whole run
    assert record.status == 200 and record.endpoint == "responses" and record.usage is not None
    assert record.usage["completion_tokens"] == final.usage.output_tokens  # the real usage
    assert rig.hooks.started.count(raw.headers["x-request-id"]) == 1


def test_in_progress_is_visible_while_the_upstream_holds(rig: Rig) -> None:
    client = rig.client()
    queued = client.responses.create(model=HELD, input="[hold] wait for it", background=True)
    wait_for(lambda: rig.held.holding == 1)
    assert client.responses.retrieve(queued.id).status == "in_progress"
    rig.held.release.set()
    final = poll(client, queued.id)
    assert final.status == "completed" and final.output_text == "held: [hold] wait for it"


def test_background_chains_by_previous_response_id(rig: Rig) -> None:
    client = rig.client()
    first = client.responses.create(model=HELD, input="[hold] My name is Ada.", background=True)
    wait_for(lambda: rig.held.holding == 1)
    with pytest.raises(openai.BadRequestError) as caught:  # not completed yet: nothing to continue from
        client.responses.create(model=ECHO, previous_response_id=first.id, input="And again")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert "in progress" in caught.value.body["message"]  # type: ignore[index]
    rig.held.release.set()
    assert poll(client, first.id).status == "completed"
    second = client.responses.create(
        model=HELD, previous_response_id=first.id, input="Who am I?", background=True
    )
    final = poll(client, second.id)
    assert final.status == "completed" and final.previous_response_id == first.id
    seen = json.dumps(rig.held.requests[-1]["messages"])
    assert "My name is Ada." in seen and "held: [hold] My name is Ada." in seen  # the whole history
    items = client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["message"]  # only this request's input


def test_background_native_response_keeps_the_gateways_id(rig: Rig) -> None:
    client = rig.client()
    queued = client.responses.create(model=NATIVE, input="native in the background", background=True)
    final = poll(client, queued.id)
    assert final.id == queued.id and final.background is True
    sent = rig.native.requests[-1]["body"]
    assert "background" not in sent and sent["store"] is False  # the upstream is asked synchronously


# -- refusals ---------------------------------------------------------------------------------------------


def test_background_with_store_false_is_a_400(rig: Rig) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        rig.client().responses.create(model=ECHO, input="hi", background=True, store=False)
    assert caught.value.body["param"] == "store"  # type: ignore[index]
    assert rig.held.requests == []


def test_background_validates_as_any_request(rig: Rig) -> None:
    response = create_raw(rig, model=ECHO, input=5, background=True)
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
    response = create_raw(rig, model="nowhere/none", input="hi", background=True)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    response = create_raw(rig, key="sk-wrong", model=ECHO, input="hi", background=True)
    assert response.status_code == 401
    response = create_raw(rig, model=ECHO, input="hi", background="yes")
    assert response.status_code == 400 and response.json()["error"]["param"] == "background"


def test_a_refusal_at_admission_is_answered_at_once(rig: Rig) -> None:
    raw = create_raw(rig, model=HELD, input="[refuse] me", background=True)
    assert raw.status_code == 429 and raw.json()["error"]["code"] == "rate_limit_exceeded"
    [record] = rig.hooks.ended_for(raw.headers["x-request-id"])
    assert record.status == 429 and rig.held.requests == [] and len(rig.runs) == 0


def test_resuming_a_stream_is_a_clear_400(rig: Rig) -> None:
    client = rig.client()
    done = poll(client, client.responses.create(model=ECHO, input="hi", background=True).id)
    response = httpx.get(
        rig.url + f"/v1/responses/{done.id}?stream=true&starting_after=3",
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


# -- failure ----------------------------------------------------------------------------------------------


def test_an_upstream_failure_is_stored_failed_with_its_error(rig: Rig) -> None:
    client = rig.client()
    raw = client.responses.with_raw_response.create(model=HELD, input="[fail] please", background=True)
    final = poll(client, raw.parse().id)
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "server_error" and final.error.message
    [record] = rig.hooks.ended_for(raw.headers["x-request-id"])
    assert record.status >= 500 and record.error is not None


def test_a_background_stream_that_fails_before_it_begins_still_names_its_response(rig: Rig) -> None:
    body = {"model": HELD, "input": "[fail] stream", "background": True, "stream": True}
    response = httpx.post(rig.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    stored = rig.client().responses.retrieve(failed["id"])
    assert stored.status == "failed" and stored.error is not None and stored.background is True
    [record] = rig.hooks.ended_for(response.headers["x-request-id"])
    assert record.status >= 500


def test_an_unexpected_error_still_ends_the_response_failed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Conversation, model: str) -> dict[str, Any]:
        raise RuntimeError("a bug after the upstream answered")

    monkeypatch.setattr(Conversation, "fields", broken)
    client = rig.client()
    raw = client.responses.with_raw_response.create(model=ECHO, input="break after this", background=True)
    final = poll(client, raw.parse().id)
    assert final.status == "failed" and final.error is not None and final.error.code == "server_error"
    [record] = rig.hooks.ended_for(raw.headers["x-request-id"])
    assert record.status == 500 and record.usage is not None  # the upstream call happened: metered
    assert "a bug after the upstream answered" in caplog.text  # logged with its traceback


# -- cancel -----------------------------------------------------------------------------------------------


def test_cancel_while_the_upstream_holds_closes_its_connection(rig: Rig) -> None:
    client = rig.client()
    poll(client, client.responses.create(model=ECHO, input="warm up", background=True).id)
    wait_for(lambda: len(rig.runs) == 0)
    baseline = rig.tasks()
    raw = client.responses.with_raw_response.create(model=HELD, input="[hold] never mind", background=True)
    queued = raw.parse()
    wait_for(lambda: rig.held.holding == 1)
    cancelled = client.responses.cancel(queued.id)
    assert cancelled.id == queued.id and cancelled.status == "cancelled" and cancelled.background is True
    assert len(rig.runs) == 0  # the cancel answers once the run has ended
    wait_for(lambda: rig.held.closed == 1)  # the upstream saw its connection closed
    assert rig.held.answered == 0
    assert client.responses.retrieve(queued.id).status == "cancelled"
    assert client.responses.cancel(queued.id).status == "cancelled"  # idempotent
    wait_for(lambda: rig.tasks() <= baseline)  # no task of the run is left
    [record] = rig.hooks.ended_for(raw.headers["x-request-id"])
    assert record.status == 499
    rig.held.release.set()
    assert client.responses.retrieve(queued.id).status == "cancelled"


def test_cancel_of_a_finished_background_response_answers_it_as_it_is(rig: Rig) -> None:
    client = rig.client()
    final = poll(client, client.responses.create(model=ECHO, input="done already", background=True).id)
    answer = client.responses.cancel(final.id)
    assert answer.status == "completed" and answer.output_text == final.output_text


def test_cancel_of_a_synchronous_response_is_a_400(rig: Rig) -> None:
    client = rig.client()
    response = client.responses.create(model=ECHO, input="not in the background")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(response.id)
    assert caught.value.body["message"] == "Cannot cancel a synchronous response."  # type: ignore[index]
    assert client.responses.retrieve(response.id).status == "completed"


def test_only_the_owner_may_cancel(rig: Rig) -> None:
    queued = rig.client().responses.create(model=HELD, input="[hold] mine", background=True)
    wait_for(lambda: rig.held.holding == 1)
    other = rig.client(OTHER_KEY)
    with pytest.raises(openai.NotFoundError):
        other.responses.cancel(queued.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(queued.id)
    assert rig.held.closed == 0 and rig.client().responses.retrieve(queued.id).status == "in_progress"
    rig.held.release.set()
    assert poll(rig.client(), queued.id).status == "completed"


def test_deleting_a_running_background_response_stops_its_run(rig: Rig) -> None:
    client = rig.client()
    queued = client.responses.create(model=HELD, input="[hold] forget me", background=True)
    wait_for(lambda: rig.held.holding == 1)
    client.responses.delete(queued.id)
    wait_for(lambda: rig.held.closed == 1)
    assert len(rig.runs) == 0
    with pytest.raises(openai.NotFoundError):  # the run's end did not bring it back
        client.responses.retrieve(queued.id)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/responses/%2e%2e/cancel",
        "/v1/responses/resp_%00x/cancel",
        "/v1/responses/" + "r" * 5000 + "/cancel",
        "/v1/responses/r%C3%A9sp%E2%80%AE/cancel",
        "/v1/responses/resp_a%2Fb/cancel",
        "/v1/responses/resp_a%0D%0Aset-cookie:%20x=1/cancel",
        "/v1/responses//cancel",
        "/v1/responses/resp_x/cancel/again",
    ],
)
def test_odd_ids_are_a_404_in_openais_envelope(rig: Rig, path: str) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    for method in ("POST", "GET", "DELETE"):
        target = path if method == "POST" else path.removesuffix("/cancel")
        response = httpx.request(method, rig.url + target, headers=headers)
        assert response.status_code in (404, 405), (method, target, response.status_code)
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        assert "set-cookie" not in response.headers


# -- the client going away --------------------------------------------------------------------------------


def test_the_client_leaving_does_not_cancel_a_background_run(rig: Rig) -> None:
    with httpx.Client(base_url=rig.url, headers={"authorization": f"Bearer {KEY}"}) as http:
        queued = http.post("/v1/responses", json={"model": HELD, "input": "[hold] bye", "background": True})
        assert queued.status_code == 200
    response_id = queued.json()["id"]  # the client and its connection are gone
    wait_for(lambda: rig.held.holding == 1)
    rig.held.release.set()
    final = poll(rig.client(), response_id)
    assert final.status == "completed" and rig.held.closed == 0


def test_a_background_stream_runs_to_its_end_after_the_client_left(rig: Rig) -> None:
    body = {"model": HELD, "input": "[hold] stream me", "background": True, "stream": True}
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", rig.url + "/v1/responses", json=body, headers=headers) as response:
        lines = response.iter_lines()
        created = next(json.loads(line[6:]) for line in lines if line.startswith("data: "))
        # the client leaves here, in the middle of the stream
    assert created["type"] == "response.created" and created["response"]["background"] is True
    response_id = created["response"]["id"]
    wait_for(lambda: rig.held.holding == 1)
    assert rig.client().responses.retrieve(response_id).status == "in_progress"
    rig.held.release.set()
    final = poll(rig.client(), response_id)
    assert final.status == "completed" and final.output_text == "held: [hold] stream me"
    assert rig.held.closed == 0 and rig.held.answered == 1


@pytest.mark.parametrize("model", [ECHO, NATIVE])
def test_a_background_stream_is_a_normal_stream_and_is_stored(rig: Rig, model: str) -> None:
    client = rig.client()
    with client.responses.stream(model=model, input="streamed in the background", background=True) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert final.background is True and "streamed in the background" in final.output_text
    stored = client.responses.retrieve(final.id)  # the events' id is the stored one, native too
    assert stored.status == "completed" and stored.output_text == final.output_text


# -- shutdown ---------------------------------------------------------------------------------------------


def test_a_run_the_server_cancels_at_shutdown_ends_failed() -> None:
    held, hooks = HeldUpstream(), Recorder()
    with serve(held) as held_url:
        gateway = make_gateway(held_url, hooks)
        with serve(gateway, timeout_graceful_shutdown=0.5) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
            queued = client.responses.create(model=HELD, input="[hold] until shutdown", background=True)
            wait_for(lambda: held.holding == 1)
        # uvicorn waited, then cancelled the request's task: the run stored how it ended
        stored = asyncio.run(gateway.response_store.get(queued.id))
        assert stored is not None and stored.response["status"] == "failed"
        assert stored.response["error"]["code"] == "server_error"
        wait_for(lambda: held.closed == 1)
        assert [record.status for record in hooks.ended] == [499]


# -- two replicas sharing Redis -----------------------------------------------------------------------------


def test_a_cancel_on_another_replica_is_not_overwritten_by_the_run(redis_url: str) -> None:
    from asgi_llm_gateway.state.redis import RedisResponseStore

    prefix = f"test-background:{uuid.uuid4().hex}:"
    held, hooks_a, hooks_b = HeldUpstream(), Recorder(), Recorder()
    with serve(held) as held_url:
        replica_a = make_gateway(held_url, hooks_a, RedisResponseStore(redis_url, prefix=prefix))
        replica_b = make_gateway(held_url, hooks_b, RedisResponseStore(redis_url, prefix=prefix))
        with serve(replica_a) as url_a, serve(replica_b) as url_b:
            a = openai.OpenAI(base_url=url_a + "/v1", api_key=KEY, max_retries=0)
            b = openai.OpenAI(base_url=url_b + "/v1", api_key=KEY, max_retries=0)
            raw = a.responses.with_raw_response.create(model=HELD, input="[hold] race", background=True)
            queued = raw.parse()
            wait_for(lambda: held.holding == 1)
            assert b.responses.retrieve(queued.id).status == "in_progress"  # one store for both
            with pytest.raises(openai.NotFoundError):
                b.with_options(api_key=OTHER_KEY).responses.cancel(queued.id)
            cancelled = b.responses.cancel(queued.id)  # B does not run it: it marks it in the store
            assert cancelled.status == "cancelled"
            assert a.responses.retrieve(queued.id).status == "cancelled"
            held.release.set()  # A's run gets its answer, and must not store it over the cancel
            runs_a = replica_a.routes["/responses"]
            assert isinstance(runs_a, ResponsesEndpoint)
            wait_for(lambda: held.answered == 1 and len(runs_a.runs) == 0)
            assert a.responses.retrieve(queued.id).status == "cancelled"
            assert b.responses.retrieve(queued.id).status == "cancelled"
            [record] = hooks_a.ended_for(raw.headers["x-request-id"])  # the upstream call is metered
            assert record.usage is not None and record.usage["total_tokens"] == 10
            assert hooks_b.ended == []


# -- units ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tolerant_send_drops_what_follows_a_client_gone() -> None:
    """Servers other than uvicorn raise from `send` once the client left: the detached run must go on."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == 2:
            raise ConnectionResetError("the client went away")
        sent.append(message)

    send_while_there = tolerant(send)
    for index in range(5):
        await send_while_there({"type": "http.response.body", "body": b"%d" % index, "more_body": True})
    assert [message["body"] for message in sent] == [b"0", b"1"]


@pytest.mark.anyio
async def test_cancelling_a_run_waits_for_its_end_and_forgets_it() -> None:
    runs = BackgroundRuns()
    ended: list[str] = []

    async def background() -> None:
        with runs.run("resp_1") as run:
            try:
                await anyio.sleep_forever()
            finally:
                ended.append("cancelled" if run.cancel_requested else "other")

    async with anyio.create_task_group() as group:
        group.start_soon(background)
        await wait_until(lambda: "resp_1" in runs)
        assert await runs.cancel("resp_1") is True
        assert ended == ["cancelled"] and "resp_1" not in runs and len(runs) == 0
    assert await runs.cancel("resp_1") is False  # not running here (any more)


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.001)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_background_responses_run_under_trio(anyio_backend: str) -> None:
    """anyio code throughout: under trio (httpx's ASGI transport waits for the app, so the run has ended
    when the create call returns)."""
    async with Gateway() as gateway:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw/v1") as http:
            queued = (
                await http.post("/responses", json={"model": ECHO, "input": "trio", "background": True})
            ).json()
            assert queued["status"] == "queued"
            final = (await http.get(f"/responses/{queued['id']}")).json()
            assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "trio"
            cancelled = await http.post(f"/responses/{queued['id']}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "completed"
