"""Framing of the three wire formats: parsed back with httpx-sse's decoder."""

from __future__ import annotations

import json

from httpx_sse._decoders import SSEDecoder

from app.upstreams.base import Chunk
from app.wire import ChatCompletionsEncoder, ChatStreamEncoder, ResponsesEncoder


def parse(frames: list[bytes]) -> list[tuple[str, str, str]]:
    decoder = SSEDecoder()
    events = []
    for line in b"".join(frames).decode().split("\n")[:-1]:  # drop the piece after the final newline
        sse = decoder.decode(line)
        if sse is not None:
            events.append((sse.event, sse.data, sse.id))
    return events


def test_chat_stream_ids_names_and_escaping() -> None:
    enc = ChatStreamEncoder("rid", "m", emit_timestamps=True, retry_ms=1500)
    evil = "a\n\ndata: injected\n\n"
    frames = [*enc.start(), enc.token(Chunk(delta=evil)), *enc.done("stop", {"total_tokens": 1})]
    events = parse(frames)
    assert [(e[0], e[2]) for e in events] == [("start", "0"), ("token", "1"), ("done", "2")]
    token = json.loads(events[1][1])
    assert token["delta"] == evil and isinstance(token["emitted_at"], float)
    assert b"retry: 1500\n" in frames[0]


def test_chat_completions_relays_raw_chunks_verbatim_and_ends_with_done() -> None:
    enc = ChatCompletionsEncoder("rid", "m", emit_timestamps=False, retry_ms=0, include_usage=True)
    raw = b'{"id":"up-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"}}]}'
    frames = [
        *enc.start(),
        enc.token(Chunk(delta="x", raw=raw)),
        enc.token(Chunk(delta="y")),
        *enc.done("stop", {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    ]
    datas = [e[1] for e in parse(frames)]
    assert datas[1].encode() == raw
    assert json.loads(datas[2])["choices"][0]["delta"] == {"content": "y"}
    assert json.loads(datas[3])["choices"][0]["finish_reason"] == "stop"
    assert json.loads(datas[4])["usage"]["total_tokens"] == 3
    assert datas[-1] == "[DONE]"


def test_raw_chunk_gets_emit_time_spliced_in() -> None:
    enc = ChatCompletionsEncoder("rid", "m", emit_timestamps=True, retry_ms=0)
    data = parse([enc.token(Chunk(delta="x", raw=b'{"id":"a","choices":[]}'))])[0][1]
    assert json.loads(data)["id"] == "a" and "emitted_at" in json.loads(data)


def test_responses_sequence_and_error_shape() -> None:
    enc = ResponsesEncoder("rid", "m", emit_timestamps=False, retry_ms=0)
    frames = [
        *enc.start(),
        enc.token(Chunk(delta="hi")),
        enc.error({"error": {"message": "m", "type": "upstream_error", "param": None, "code": None}}),
    ]
    events = parse(frames)
    payloads = [json.loads(e[1]) for e in events]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert [e[0] for e in events][-2:] == ["response.output_text.delta", "error"]
    assert payloads[-1]["error"]["type"] == "upstream_error"
