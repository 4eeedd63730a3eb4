"""The standalone runner as operators run it: a real process (`python -m asgi_llm_gateway`), a config file,
the OpenAI SDK as the client, and signals: SIGTERM with a stream in flight, SIGHUP to reload the workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.server import free_port, runner_script, serve, serve_process

KEY = "sk-gw-runner-test"
ECHO_CONFIG = """
[providers.echo]
type = "echo"

[routes]
{routes}

[auth]
keys = {{ "env:RUNNER_TEST_KEY" = "tester" }}
"""


@dataclass
class Runner:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEY, max_retries=0, timeout=10)

    def stop(self, deadline: float = 10) -> int:
        """SIGTERM, then the exit status: 0, or -SIGTERM when uvicorn re-raises the signal once done."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=deadline)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "asgi_llm_gateway", *args]


def _environment() -> dict[str, str]:
    """A clean environment: provider keys or a config path in the developer's shell must not leak in."""
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {**kept, "RUNNER_TEST_KEY": KEY, "PYTHONUNBUFFERED": "1"}


@contextmanager
def running(tmp_path: Path, *args: str) -> Iterator[Runner]:
    """Start the runner on a free port, wait until it answers /healthz; kill it and its workers afterwards."""
    port = free_port()
    log = tmp_path / f"runner-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            _command(*args, "--port", str(port)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_environment(),
            start_new_session=True,  # its own process group, so `finally` can take the workers down too
        )
    runner = Runner(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the runner exited with {process.returncode}:\n{runner.output()}")
            try:
                if httpx.get(runner.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the runner did not start:\n{runner.output()}")
            time.sleep(0.05)
        yield runner
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _exited_cleanly(status: int) -> bool:
    return status in (0, -signal.SIGTERM)


# -- serving -----------------------------------------------------------------------------------------------


def test_runner_serves_the_sdk_with_its_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(ECHO_CONFIG.format(routes='chat = "echo/echo-1"'))
    with running(tmp_path, "--config", str(config)) as runner:
        with runner.client() as client:
            completion = client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
            assert completion.choices[0].message.content == "hi"
            assert completion.model == "echo/echo-1"
            stream = client.chat.completions.create(
                model="echo/echo-1", messages=[{"role": "user", "content": "a b c"}], stream=True
            )
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "a b c"
            assert [model.id for model in client.models.list()] == ["chat", "echo/echo-1"]
        with (
            openai.OpenAI(base_url=runner.url + "/v1", api_key="sk-wrong", max_retries=0) as stranger,
            pytest.raises(openai.AuthenticationError),
        ):
            stranger.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert httpx.get(runner.url + "/readyz").json() == {"status": "ok"}
        assert _exited_cleanly(runner.stop())
        output = runner.output()
    assert "providers echo and routes chat (client keys required)" in output
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in output  # the access log
    assert '"POST /v1/chat/completions HTTP/1.1" 401' in output


def test_access_log_can_be_turned_off(tmp_path: Path) -> None:
    with running(tmp_path, "--no-access-log") as runner:
        assert httpx.get(runner.url + "/v1/models").status_code == 200
        assert _exited_cleanly(runner.stop())
        assert "GET /v1/models" not in runner.output()


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ('[providers.main]\ntype = "openai"\ntmeout = 5\n', "providers.main.tmeout"),
        ('[providers.main]\ntype = "openai"\napi_key = "env:RUNNER_TEST_UNSET"\n', "providers.main.api_key"),
        ('[routes]\nsmart = "nope/model"\n', "route 'smart'"),
        ("[providers\n", "not valid TOML"),
    ],
)
def test_bad_config_exits_2_naming_the_file_and_the_key(tmp_path: Path, config: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config)
    for extra in ((), ("--check",)):
        result = subprocess.run(
            _command("--config", str(path), "--port", str(free_port()), *extra),
            capture_output=True,
            text=True,
            env=_environment(),
            timeout=20,
        )
        assert result.returncode == 2
        assert f"{path}: " in result.stderr and where in result.stderr, result.stderr


def test_check_accepts_the_example_config_named_by_the_environment() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "standalone" / "gateway.toml"
    result = subprocess.run(
        _command("--check"),
        capture_output=True,
        text=True,
        env={**_environment(), "ASGI_LLM_GATEWAY_CONFIG": str(path), "GATEWAY_KEY_ALICE": "sk-gw-alice"},
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK: providers echo and routes chat (client keys required)" in result.stderr


def test_check_without_a_config_serves_gemini_from_google_api_key() -> None:
    result = subprocess.run(
        _command("--check"),
        capture_output=True,
        text=True,
        env={**_environment(), "GOOGLE_API_KEY": "g-runner-test"},
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert "environment: OK: providers echo, gemini (no client keys required)" in result.stderr


def test_help_names_the_key_variables_of_the_providers_it_serves_without_a_config() -> None:
    result = subprocess.run(
        _command("--help"), capture_output=True, text=True, env=_environment(), timeout=20
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps the epilog
    for variable in ("OPENAI_API_KEY", "GEMINI_API_KEY or GOOGLE_API_KEY", "AWS_BEARER_TOKEN_BEDROCK"):
        assert variable in text


# -- graceful shutdown ---------------------------------------------------------------------------------


def slow_upstream(words: int, interval: float) -> Starlette:
    """An OpenAI-compatible server whose streams send one word every `interval` seconds."""

    async def chat(request: Request) -> StreamingResponse:
        model = (await request.json())["model"]

        def event(delta: dict[str, str], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 0, "model": model}
            return f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n"

        async def events() -> AsyncIterator[str]:
            yield event({"role": "assistant", "content": ""})
            for index in range(words):
                yield event({"content": f"w{index} "})
                await asyncio.sleep(interval)
            yield event({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextmanager
def slow_runner(tmp_path: Path, words: int, interval: float, graceful: int) -> Iterator[Runner]:
    with serve(slow_upstream(words, interval), timeout_graceful_shutdown=1) as upstream:
        config = tmp_path / "gateway.toml"
        config.write_text(f'[providers.slow]\ntype = "openai-compatible"\nbase_url = "{upstream}/v1"\n')
        with running(tmp_path, "--config", str(config), "--graceful-timeout", str(graceful)) as runner:
            yield runner


def _stream_with_sigterm(runner: Runner) -> tuple[str, str | None, Exception | None, float]:
    """Read a stream, sending SIGTERM after its first word: (text, finish_reason, error, seconds to exit)."""
    text, finish, error = "", None, None
    with openai.OpenAI(base_url=runner.url + "/v1", api_key="x", max_retries=0, timeout=20) as client:
        stream = client.chat.completions.create(
            model="slow/slow-1", messages=[{"role": "user", "content": "go"}], stream=True
        )
        signalled: float | None = None
        try:
            for chunk in stream:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
                if text and signalled is None:
                    runner.process.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
        except (openai.APIError, httpx.HTTPError) as exc:
            error = exc
    assert signalled is not None
    status = runner.process.wait(timeout=30)
    assert _exited_cleanly(status), runner.output()
    return text, finish, error, time.monotonic() - signalled


def test_sigterm_lets_a_stream_finish_within_the_graceful_timeout(tmp_path: Path) -> None:
    with slow_runner(tmp_path, words=8, interval=0.1, graceful=10) as runner:
        text, finish, error, seconds = _stream_with_sigterm(runner)
    assert error is None
    assert text == "".join(f"w{index} " for index in range(8))
    assert finish == "stop"
    assert seconds < 5


def test_sigterm_cuts_a_stream_that_outlives_the_graceful_timeout(tmp_path: Path) -> None:
    with slow_runner(tmp_path, words=200, interval=0.05, graceful=1) as runner:
        started = time.monotonic()
        text, finish, error, seconds = _stream_with_sigterm(runner)
        output = runner.output()
    assert error is not None, "the client must see the cut, not a stream that ends as if complete"
    assert text.startswith("w0 ") and finish is None
    assert 1 <= seconds < 4
    assert time.monotonic() - started < 6
    assert "timeout graceful shutdown exceeded" in output


# -- workers and reload ------------------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], seconds: float, what: str, runner: Runner) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{runner.output()}")
        time.sleep(0.1)


def test_workers_reload_the_config_on_sighup_and_survive_a_broken_one(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(ECHO_CONFIG.format(routes='old = "echo/echo-1"'))
    with running(tmp_path, "--config", str(config), "--workers", "2", "--graceful-timeout", "5") as runner:
        started = "Application startup complete."
        _wait_for(lambda: runner.output().count(started) == 2, 20, "both workers", runner)

        def served_routes() -> set[str]:
            response = httpx.get(runner.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
            return {model["id"] for model in response.json()["data"]} - {"echo/echo-1"}

        assert served_routes() == {"old"}
        config.write_text(ECHO_CONFIG.format(routes='new = "echo/echo-1"'))
        runner.process.send_signal(signal.SIGHUP)
        # Both workers replaced: both replacements started (uvicorn replaces workers one at a time, so eight
        # answers in a row from the first could come while the second old worker still serves, and a
        # config written then would be the one the second replacement loads), and every answer, whichever
        # worker gives it, has the new route.
        _wait_for(
            lambda: runner.output().count(started) == 4 and all(served_routes() == {"new"} for _ in range(8)),
            20,
            "the reload",
            runner,
        )

        config.write_text("[routes\n")
        runner.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: "aborting the restart" in runner.output(), 20, "the failed reload", runner)
        assert all(served_routes() == {"new"} for _ in range(8))  # the old workers still serve
        assert runner.output().count(started) == 4
        assert "asgi-llm-gateway: config error: " in runner.output() and "Traceback" not in runner.output()
        assert runner.stop() == 0


# -- observability: --metrics, --log-requests, --otel (the console script, as operators run it) -------------


def _observed_runner(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """The `asgi-llm-gateway` console script serving the echo config with `args`, on a free port."""
    config = tmp_path / "gateway.toml"
    config.write_text(ECHO_CONFIG.format(routes='chat = "echo/echo-1"'))
    port = free_port()
    command = [runner_script(), "--config", str(config), "--port", str(port), *args]
    return serve_process(command, port, tmp_path / f"runner-{port}.log", {**_environment(), **(env or {})})


def test_metrics_flag_serves_prometheus_beside_the_gateway(tmp_path: Path) -> None:
    from prometheus_client import parser

    with _observed_runner(tmp_path, "--metrics", "--log-requests") as runner:
        own = {"x-request-id": "scrape-test-1"}
        with openai.OpenAI(
            base_url=runner.url + "/v1", api_key=KEY, max_retries=0, timeout=10, default_headers=own
        ) as client:
            completion = client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "zebra-prompt"}]
            )
        assert completion._request_id == "scrape-test-1"
        scraped = httpx.get(runner.url + "/metrics", timeout=10)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
        families = {family.name: family for family in parser.text_string_to_metric_families(scraped.text)}
        [served] = [
            sample
            for sample in families["llm_gateway_requests"].samples
            if sample.name == "llm_gateway_requests_total" and sample.labels["endpoint"] == "chat.completions"
        ]
        assert served.labels == {
            "endpoint": "chat.completions",
            "model": "chat",
            "provider": "echo",
            "status_class": "2xx",
        }
        assert served.value == 1
        assert "process_cpu_seconds" in families  # the process registry's own collectors come along
        # The scrape endpoint sits beside the gateway, not in it: /v1/metrics is still the gateway's 404.
        assert httpx.get(runner.url + "/v1/metrics").status_code == 404
        assert runner.stop() in (0, -signal.SIGTERM)
        output = runner.output()
    assert "request logs, Prometheus metrics on /metrics at http://127.0.0.1:" in output
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [record] = [record for record in logged if record.get("request_id") == "scrape-test-1"]
    assert record["endpoint"] == "chat.completions" and record["status"] == 200
    assert record["principal"] == "tester" and record["model"] == "chat"
    assert KEY not in output and "zebra-prompt" not in output  # no key, no prompt without include_content


class Collector:
    """A tiny OTLP/HTTP collector on loopback: records what is POSTed to /v1/traces and /v1/metrics."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.posts.append(
                (request.url.path, request.headers.get("content-type", ""), await request.body())
            )
            return Response(b"", media_type="application/x-protobuf")

        return Starlette(
            routes=[
                Route("/v1/traces", receive, methods=["POST"]),
                Route("/v1/metrics", receive, methods=["POST"]),
            ]
        )

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with its resource's attributes."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        found: list[tuple[dict[str, Any], Any]] = []
        for path, _, body in list(self.posts):
            if path != "/v1/traces":
                continue
            for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                found.extend((resource, span) for scope in resource_spans.scope_spans for span in scope.spans)
        return found

    def metric_names(self) -> set[str]:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        return {
            metric.name
            for path, _, body in list(self.posts)
            if path == "/v1/metrics"
            for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics
            for scope in resource_metrics.scope_metrics
            for metric in scope.metrics
        }


def test_otel_flag_exports_genai_spans_and_metrics_to_the_otlp_collector(tmp_path: Path) -> None:
    collector = Collector()
    with serve(collector.app()) as collector_url:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            "OTEL_SERVICE_NAME": "gateway-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: export spans soon rather than every 5 s
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
        }
        with _observed_runner(tmp_path, "--otel", env=env) as runner:
            with openai.OpenAI(base_url=runner.url + "/v1", api_key=KEY, max_retries=0, timeout=10) as client:
                client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
            deadline = time.monotonic() + 20
            while not (collector.spans() and "gen_ai.client.operation.duration" in collector.metric_names()):
                assert time.monotonic() < deadline, f"nothing exported:\n{runner.output()}"
                time.sleep(0.05)
            assert runner.stop() in (0, -signal.SIGTERM)
            output = runner.output()
    assert f"OpenTelemetry to {collector_url}/v1/traces" in output
    assert {content_type for _, content_type, _ in collector.posts} == {"application/x-protobuf"}
    spans = {span.name: (resource, span) for resource, span in collector.spans()}
    resource, request = spans["chat chat"]
    assert resource["service.name"] == "gateway-under-test"
    attributes = {kv.key: kv.value for kv in request.attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.request.model"].string_value == "chat"
    _, attempt = spans["chat echo-1"]
    assert attempt.parent_span_id == request.span_id and attempt.trace_id == request.trace_id


def test_otel_flag_without_the_exporter_exits_2_naming_it(tmp_path: Path) -> None:
    """The exporter hidden from the runner's interpreter (a stand-in package that fails to import)."""
    shadow = tmp_path / "shadow" / "opentelemetry" / "exporter"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden', name='opentelemetry.exporter')\n")
    (shadow.parent / "__init__.py").write_text(
        "import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n"
    )
    env = {**_environment(), "PYTHONPATH": str(tmp_path / "shadow")}
    result = subprocess.run(
        [runner_script(), "--otel", "--port", str(free_port())], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert (
        b"--otel needs the OpenTelemetry SDK and its OTLP/HTTP exporter (opentelemetry.exporter is missing): "
        b"pip install 'asgi-llm-gateway[otel-exporter]'" in result.stderr
    )


def test_workers_get_the_observability_flags(tmp_path: Path) -> None:
    """With `--workers N` each worker builds its own gateway: the flags reach them through the environment."""
    with _observed_runner(tmp_path, "--workers", "2", "--log-requests") as runner:
        for number in range(4):
            response = httpx.post(
                runner.url + "/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {KEY}", "x-request-id": f"worker-call-{number}"},
            )
            assert response.status_code == 200
        assert runner.stop() in (0, -signal.SIGTERM)
        output = runner.output()
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert sorted(record["request_id"] for record in logged) == [f"worker-call-{n}" for n in range(4)]


def test_otel_spans_still_buffered_are_sent_when_the_runner_stops(tmp_path: Path) -> None:
    collector = Collector()
    with serve(collector.app()) as collector_url:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # ten minutes: only the exit flush can send them
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        }
        with _observed_runner(tmp_path, "--otel", env=env) as runner:
            with openai.OpenAI(base_url=runner.url + "/v1", api_key=KEY, max_retries=0, timeout=10) as client:
                client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
            assert collector.posts == []
            assert runner.stop() in (0, -signal.SIGTERM)
    [resource] = [resource for resource, span in collector.spans() if span.name == "chat chat"]
    assert resource["service.name"] == "asgi-llm-gateway"  # no OTEL_SERVICE_NAME: the runner's default
    assert "gen_ai.client.operation.duration" in collector.metric_names()
