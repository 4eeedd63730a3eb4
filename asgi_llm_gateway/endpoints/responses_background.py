"""Background responses (`background: true`) of the `/v1/responses` door: what runs them and cancels them.

    POST /v1/responses {background: true}
      as any request: auth, validate, plan, history ─▶ request_started, admit (a refusal is answered now)
      ─▶ store `queued` ─▶ 200 `queued` (the final id, `output: []`, `usage: null`)
      ─▶ then, in the same ASGI request coroutine, detached from the client (it may leave, poll or cancel):
         store `in_progress` ─▶ attempts (retries, fallbacks, as any call) ─▶ store the final response:
         `completed` / `incomplete`, or `failed` with `error {code, message}` ─▶ settle (one record)
      with `stream: true` the events are streamed as for any stream (`response.created` says `in_progress`;
      no `response.queued`), but the run goes on to its end (and is stored) when the client leaves; when
      every attempt fails before the first byte the stream is `created`, `in_progress`, `failed`, rather
      than an HTTP error, so that the client learns the id of what was stored
    GET /v1/responses/{id}          polls it (resuming a stream with `?stream=true` is a 400: not supported)
    POST /v1/responses/{id}/cancel  queued / in_progress: `cancelled`; already final: answered as it is;
                                    a response created without `background`: 400

Where it runs: the ASGI server keeps a request's task until the app returns (as Starlette's background
tasks rely on), so no lifespan and no task of the gateway's own; mounted apps get no lifespan events.
Every run is registered by id in `BackgroundRuns` (one per endpoint instance, so per `Gateway`) with the
cancel scope around it: a cancel on this process cancels the run, whose upstream connection closes as any
abandoned call's, and waits for it to end. A run that ends any other way than by its result still stores a
terminal state: `cancelled` when asked to, `failed` when the server cancelled it (shutdown: uvicorn waits
for running requests up to its graceful-shutdown timeout, then cancels them) or an unexpected error ended
it, so a stored response never stays `in_progress` for a run that is gone (but for a process killed
outright: see below). `Gateway.aclose()` does not wait for running background responses: a host calls it
once the server has finished its requests. Deleting a running response cancels its run here.

The call's record (`request_ended`, once per run) says how the run ended, with the usage it had: 200 for a
result (also when a cancel on another replica keeps it from being stored), the error's status when every
attempt failed, 499 when cancelled or stopped, 500 after an unexpected error.

Across replicas sharing a store (Redis), a cancel on a replica that does not run the response marks it
`cancelled` in the store; the running replica re-reads the response before each state it stores, and
stores nothing over `cancelled` (or over a response deleted meanwhile). It does not notice the cancel before
then: the upstream call runs to its end on that replica (and is metered). The window: a cancel stored
between the running replica's re-read and its write (one store round trip, under a millisecond on loopback)
is overwritten by the result, and the cancel's answer (`cancelled`) disagrees with the final state. Closing
it needs a compare-and-set in the store; the stores have none. A replica killed outright (SIGKILL, OOM)
leaves its responses `in_progress` until a cancel on another replica, or their TTL, ends them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio

from ..asgi import Message, Send
from ..errors import GatewayError

__all__ = [
    "RUNNING",
    "BackgroundRun",
    "BackgroundRuns",
    "background_needs_store",
    "not_cancellable",
    "still_running",
    "stream_resume_unsupported",
    "tolerant",
    "with_status",
]

#: The states of a response whose run has not ended: it can be cancelled, and nothing may continue it yet.
RUNNING = frozenset({"queued", "in_progress"})


class BackgroundRun:
    """One background response running on this process: the scope that cancels it, whether a client asked
    for that (rather than the server shutting down), and when it ended."""

    __slots__ = ("cancel_requested", "done", "scope")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.cancel_requested = False
        self.done = anyio.Event()

    def cancel(self) -> None:
        self.cancel_requested = True
        self.scope.cancel()


class BackgroundRuns:
    """The background responses running on this process, by id."""

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: dict[str, BackgroundRun] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._runs

    @contextmanager
    def run(self, response_id: str) -> Iterator[BackgroundRun]:
        """Register the response's run for the block, which runs under the run's cancel scope (a cancel of
        it ends the block quietly); `done` is set once the block is over."""
        run = self._runs[response_id] = BackgroundRun()
        try:
            with run.scope:
                yield run
        finally:
            del self._runs[response_id]
            run.done.set()

    async def cancel(self, response_id: str) -> bool:
        """Cancel the response's run if it runs here, and wait until it ended: False if it does not."""
        run = self._runs.get(response_id)
        if run is None:
            return False
        run.cancel()
        await run.done.wait()
        return True


def with_status(
    response: Mapping[str, Any], status: str, error: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A copy of `response` in another state (`error` for `failed`)."""
    changed = copy.deepcopy(dict(response))
    changed["status"] = status
    if error is not None:
        changed["error"] = dict(error)
    return changed


def tolerant(send: Send) -> Send:
    """`send` for a detached call: once the client has gone (a send raised `OSError`), later messages are
    dropped instead of raising, so the run goes on to its end. (uvicorn drops them itself; not every server
    does.)"""
    gone = False

    async def send_while_there(message: Message) -> None:
        nonlocal gone
        if gone:
            return
        try:
            await send(message)
        except OSError:
            gone = True

    return send_while_there


def background_needs_store() -> GatewayError:
    """OpenAI refuses a background response that would not be stored: it could not be polled."""
    return GatewayError("Background mode requires store=true.", param="store", code="invalid_value")


def not_cancellable() -> GatewayError:
    """Only background responses can be cancelled (a synchronous one is over before it can be read)."""
    return GatewayError("Cannot cancel a synchronous response.", param="response_id", code="invalid_value")


def still_running(previous_id: str, status: str) -> GatewayError:
    """A response can be continued once its run has ended."""
    return GatewayError(
        f"Previous response with id '{previous_id}' is still {status.replace('_', ' ')}; wait until it "
        "has completed before continuing from it.",
        param="previous_response_id",
        code="invalid_value",
    )


def stream_resume_unsupported() -> GatewayError:
    """Resuming a background stream (`GET …?stream=true&starting_after=N`) needs its events kept: they are
    not."""
    return GatewayError(
        "Streaming a stored response (stream=true) is not supported by this gateway; retrieve it without "
        "stream to poll its state.",
        param="stream",
        code="unsupported_parameter",
    )
