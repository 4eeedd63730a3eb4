"""Native Responses text deltas relayed as the upstream's bytes (`providers/openai/_delta_runs.py`): the
Responses door over an OpenAI upstream must give the client the same events, and the same error, whether
its reader takes a read's text deltas as one run of bytes or decodes and parses each (the path before)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llm_gateway.endpoints.responses_native import NativeResponseEvents, NativeResponseProgress
from asgi_llm_gateway.errors import GatewayError
from asgi_llm_gateway.pipeline.call import Call
from asgi_llm_gateway.providers.base import EventRun
from asgi_llm_gateway.providers.openai._delta_runs import DeltaTemplate, NativeEventsReader
from asgi_llm_gateway.providers.openai._responses import ResponsesStreamTranslator
from asgi_llm_gateway.sse import SSEDecoder

RESPONSE = {"id": "resp_1", "object": "response", "status": "in_progress", "model": "gpt-4.1", "output": []}
WORLD = '"delta":" wörld"'.encode()
TEXTS = ["Hello", " wörld", ' "quoted"', " \\ back", " \n\ndata: x", " 😀", " \u2028", "", " end"]


def _event(payload: dict[str, Any], *, ascii_only: bool = True) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only)
    return b"event: " + payload["type"].encode() + b"\ndata: " + data.encode() + b"\n\n"


def _delta(number: int, text: str, pad: str | None = "Zk3q", **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "response.output_text.delta",
        "sequence_number": number,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": text,
        "logprobs": [],
        **extra,
    }
    if pad is not None:
        payload["obfuscation"] = pad[: number % 5]
    return payload


def stream(
    texts: list[str] = TEXTS, *, pad: str | None = "Zk3q", ascii_only: bool = True, final: bool = True
) -> list[bytes]:
    """A native Responses stream as OpenAI writes it, one event each; numbers from 0."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": RESPONSE},
        {"type": "response.in_progress", "response": RESPONSE},
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "msg_1", "type": "message"}},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0},
    ]
    events += [_delta(0, text, pad) for text in texts]
    events.append({"type": "response.output_text.done", "item_id": "msg_1", "text": "".join(texts)})
    if final:
        events.append({"type": "response.completed", "response": {**RESPONSE, "status": "completed"}})
    out = []
    for number, payload in enumerate(events):
        rest = {key: value for key, value in payload.items() if key not in ("type", "sequence_number")}
        payload = {"type": payload["type"], "sequence_number": number, **rest}
        if payload["type"] == "response.output_text.delta" and pad is not None:
            payload["obfuscation"] = pad[: number % 5]
        out.append(_event(payload, ascii_only=ascii_only))
    return out


def relay(reads: list[bytes], fast: bool) -> tuple[list[Any], list[tuple[str, Any]], str | None, Any]:
    """Through the door's encoder: (the items the translator gave, the events the client reads as (name,
    JSON), the error that ended the stream, the final response kept)."""
    translator = ResponsesStreamTranslator("openai", "openai")
    reader: Any = NativeEventsReader() if fast else SSEDecoder()
    encoder = NativeResponseEvents({"model": "openai/gpt-4.1"})
    progress = NativeResponseProgress(Call("req_1", "responses", None, "openai/gpt-4.1", {}, 0.0))
    items: list[Any] = []
    wire = b""
    error = None
    try:
        for read in [*reads, None]:
            events = reader.feed(read) if read is not None else reader.flush()
            batch: list[Any] = []
            try:
                for event in events:
                    batch.extend(translator.feed(event))
            finally:
                items += batch
                progress.see(batch)
                wire += encoder.encode(batch) if batch else b""
            if translator.done:
                break
        else:
            translator.end()
    except GatewayError as exc:
        error = exc.message
        wire += encoder.close(exc)
    sent = [
        (name.removeprefix("event: "), json.loads(data))
        for name, _, data in (event.partition("\ndata: ") for event in wire.decode().split("\n\n") if event)
    ]
    return items, sent, error, progress.response


def in_reads(raw: bytes, size: int | None) -> list[bytes]:
    return [raw] if size is None else [raw[at : at + size] for at in range(0, len(raw), size)]


def assert_same_either_way(raw: bytes, *, runs: bool | None = None) -> str | None:
    """Both paths give the client the same events and error at every read size; whole, the fast path took a
    run of bytes exactly when `runs` (unless None). The error, if any."""
    for size in (None, 1, 7, 64):
        fast_items, fast, fast_error, fast_final = relay(in_reads(raw, size), fast=True)
        _, slow, slow_error, slow_final = relay(in_reads(raw, size), fast=False)
        assert fast == slow and fast_error == slow_error and fast_final == slow_final, size
        if size is None and runs is not None:
            assert any(isinstance(item, EventRun) for item in fast_items) == runs
    return fast_error


@pytest.mark.parametrize("pad", ["Zk3q", None], ids=["padded", "unpadded"])
@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "raw-utf8"])
def test_the_client_reads_the_same_events_either_way(pad: str | None, ascii_only: bool) -> None:
    raw = b"".join(stream(pad=pad, ascii_only=ascii_only))
    assert assert_same_either_way(raw, runs=True) is None
    items, sent, _, final = relay([raw], fast=True)
    deltas = [event["delta"] for name, event in sent if name == "response.output_text.delta"]
    assert "".join(deltas) == "".join(TEXTS) and final["status"] == "completed"
    numbers = [event["sequence_number"] for _, event in sent]
    assert numbers == list(range(len(numbers)))
    [run] = [item for item in items if isinstance(item, EventRun)]
    assert run.count == len(TEXTS) and (run.first, run.last) == (4, 3 + len(TEXTS))
    assert run.data == b"".join(stream(pad=pad, ascii_only=ascii_only)[4 : 4 + len(TEXTS)])


def test_a_run_is_relayed_as_the_upstreams_bytes() -> None:
    events = stream()
    _, _, _, _ = relay([b"".join(events)], fast=True)
    translator = ResponsesStreamTranslator("openai", "openai")
    reader = NativeEventsReader()
    items = [item for event in reader.feed(b"".join(events)) for item in translator.feed(event)]
    wire = NativeResponseEvents({"model": "m"}).encode(items)
    assert b"".join(events[4 : 4 + len(TEXTS)]) in wire


@pytest.mark.parametrize("position", [1, 4], ids=["inside-a-run", "at-a-runs-start"])
def test_a_delta_whose_number_does_not_increase_fails_the_stream_as_its_parsed_event_would(
    position: int,
) -> None:
    events = stream()
    at = 4 + position
    events[at] = events[at].replace(b'"sequence_number":%d' % at, b'"sequence_number":%d' % (at - 2))
    error = assert_same_either_way(b"".join(events), runs=True)
    assert error is not None and "has no sequence_number above" in error


def test_text_deltas_before_response_created_fail_the_stream() -> None:
    events = stream()
    error = assert_same_either_way(b"".join(events[4:]), runs=False)
    assert error is not None and "before response.created" in error


def test_deltas_after_the_final_event_are_not_relayed() -> None:
    events = stream()
    late = [_event(_delta(90 + n, f" late{n}")) for n in range(3)]
    raw = b"".join([*events, *late])
    assert assert_same_either_way(raw, runs=True) is None
    _, sent, _, _ = relay([raw], fast=True)
    assert sent[-1][0] == "response.completed" and not any("late" in json.dumps(e) for _, e in sent)


def test_a_cut_stream_ends_in_an_error_on_both_paths() -> None:
    error = assert_same_either_way(b"".join(stream(final=False)), runs=True)
    assert error is not None


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        (WORLD, b'"delta":" w\xffrld"', "not UTF-8"),
        (WORLD, b'"delta":" w\\x"', "a bad escape"),
        (WORLD, b'"delta":" w"rld"', "a raw quote"),
        (b'"sequence_number":5', b'"sequence_number":05', "a leading zero"),
        (b'"sequence_number":5', b'"sequence_number":5.0', "a fraction"),
        (b'"obfuscation":"', b'"obfuscation":"\\"', "a pad outside the alphabet"),
        (b'"logprobs":[]', b'"logprobs":[{}]', "another field changed"),
    ],
)
def test_a_delta_that_is_not_the_template_is_parsed_and_judged_as_before(
    old: bytes, new: bytes, what: str
) -> None:
    events = stream(ascii_only=False)
    assert old in events[5], what
    events[5] = events[5].replace(old, new, 1)
    # bytes that are not UTF-8 send the read's whole run to the parser, which says what is wrong
    assert_same_either_way(b"".join(events), runs=what != "not UTF-8")


def test_a_template_is_learnt_only_from_a_text_delta_that_parses() -> None:
    good = stream()[4].rstrip(b"\n")
    assert DeltaTemplate.learn(good) is not None
    assert DeltaTemplate.learn(good.replace(b'"logprobs":[]', b'"logprobs":[')) is None  # not JSON
    assert DeltaTemplate.learn(good.replace(b"output_text.delta", b"refusal.delta")) is None
    assert DeltaTemplate.learn(good.replace(b'"delta":"Hello"', b'"delta":1')) is None
    spaced = json.dumps(json.loads(good.split(b"\ndata: ")[1])).encode()
    assert DeltaTemplate.learn(b"event: response.output_text.delta\ndata: " + spaced) is None


def test_a_stream_in_another_spelling_is_parsed_all_along() -> None:
    events = [
        b"event: "
        + e.split(b"\n")[0][7:]
        + b"\ndata: "
        + json.dumps(json.loads(e.split(b"\ndata: ")[1])).encode()
        for e in stream()
    ]
    raw = b"\n\n".join(events) + b"\n\n"
    assert assert_same_either_way(raw, runs=False) is None
