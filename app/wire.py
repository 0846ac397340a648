"""Wire formats: how one generation is framed for each endpoint.

Every encoder turns the same stream of upstream chunks into SSE bytes, and each stream ends with
exactly one terminal event (`done`/`[DONE]`/`response.completed`, or `error`). Framing is done
by hand into bytes (no model object per token) because this is the per-token hot path.
All JSON is compact and escapes control characters, so no prompt text can inject an SSE field.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app.upstreams.base import Chunk

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def sse(data: str, event: str | None = None, id: int | None = None, retry: int | None = None) -> bytes:
    head = ""
    if id is not None:
        head += f"id: {id}\n"
    if event is not None:
        head += f"event: {event}\n"
    if retry is not None:
        head += f"retry: {retry}\n"
    return f"{head}data: {data}\n\n".encode()


def data_frame(data: bytes) -> bytes:
    """One SSE event whose `data` is these bytes. Data the upstream sent over several `data:`
    lines (joined with LF by the EventSplitter, which also turned every CR into LF) goes out as
    several `data:` lines again: a bare newline inside one `data:` line would end the field and
    leave the client broken JSON."""
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    return b"data: " + data + b"\n\n"


def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class Encoder:
    """Base: subclasses frame start, token, done and error for one endpoint."""

    def __init__(self, request_id: str, model: str, emit_timestamps: bool, retry_ms: int) -> None:
        self.request_id = request_id
        self.model = model
        self.emit_timestamps = emit_timestamps
        self.retry_ms = retry_ms
        self.created = int(time.time())
        self.text_parts: list[str] = []

    def start(self) -> list[bytes]:
        return []

    def token(self, chunk: Chunk) -> bytes:
        """The frame for one chunk; empty when this endpoint has nothing to send for it."""
        raise NotImplementedError

    def done(self, finish_reason: str, usage: dict[str, int] | None) -> list[bytes]:
        raise NotImplementedError

    def error(self, error: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def body(self, text: str, finish_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
        """The endpoint's answer when it is not streamed (also served by `streamkit fake-upstream`)."""
        raise NotImplementedError


class ChatStreamEncoder(Encoder):
    """GET /v1/chat/stream: EventSource-friendly named events, `id:` on each, `retry:` first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seq = 0

    def _next_id(self) -> int:
        self.seq += 1
        return self.seq - 1

    def start(self) -> list[bytes]:
        data = _dumps({"id": self.request_id, "model": self.model})
        return [sse(data, "start", self._next_id(), self.retry_ms)]

    def token(self, chunk: Chunk) -> bytes:
        if not chunk.delta:
            return b""  # this endpoint carries text only (tool calls, reasoning: use /v1/chat/completions)
        payload: dict[str, Any] = {"delta": chunk.delta}
        if self.emit_timestamps:
            payload["emitted_at"] = time.time()
        return sse(_dumps(payload), "token", self._next_id())

    def done(self, finish_reason: str, usage: dict[str, int] | None) -> list[bytes]:
        data = _dumps({"finish_reason": finish_reason, "usage": usage})
        return [sse(data, "done", self._next_id())]

    def error(self, error: dict[str, Any]) -> bytes:
        return sse(_dumps(error), "error", self._next_id())


class ChatCompletionsEncoder(Encoder):
    """POST /v1/chat/completions with stream=true: OpenAI chunks, then `data: [DONE]`.

    `relay`: the chunks are an upstream's, relayed as they came (`Chunk.raw`): no opening, closing
    or usage chunk of the app's own, so every event carries the upstream's identity (id, created,
    model, system_fingerprint) and the stream is the upstream's stream. Without it (the built-in
    fake LLM, and fake-upstream itself) the encoder frames the whole stream.
    """

    def __init__(self, *args: Any, include_usage: bool = False, relay: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.include_usage = include_usage
        self.relay = relay
        self.completion_id = f"chatcmpl-{self.request_id}"
        self._prefix = (
            '{"id":'
            + _dumps(self.completion_id)
            + ',"object":"chat.completion.chunk","created":'
            + str(self.created)
            + ',"model":'
            + _dumps(self.model)
            + ","
        )

    def _chunk(self, body: str) -> bytes:
        stamp = f',"emitted_at":{time.time()}' if self.emit_timestamps else ""
        return b"data: " + (self._prefix + body + stamp + "}").encode() + b"\n\n"

    def start(self) -> list[bytes]:
        if self.relay:
            return []
        return [self._chunk('"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]')]

    def token(self, chunk: Chunk) -> bytes:
        if chunk.raw is not None:
            if self.emit_timestamps and chunk.raw.endswith(b"}"):
                return data_frame(chunk.raw[:-1] + f',"emitted_at":{time.time()}}}'.encode())
            return data_frame(chunk.raw)
        return self._chunk(
            '"choices":[{"index":0,"delta":{"content":' + _dumps(chunk.delta) + '},"finish_reason":null}]'
        )

    def done(self, finish_reason: str, usage: dict[str, int] | None) -> list[bytes]:
        if self.relay:
            return [b"data: [DONE]\n\n"]  # the upstream's finish and usage chunks went through as they came
        out = [self._chunk('"choices":[{"index":0,"delta":{},"finish_reason":' + _dumps(finish_reason) + "}]")]
        if self.include_usage and usage is not None:
            out.append(self._chunk('"choices":[],"usage":' + _dumps(usage)))
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, error: dict[str, Any]) -> bytes:
        return b"data: " + _dumps(error).encode() + b"\n\n"

    def body(self, text: str, finish_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
        """A non-streaming `chat.completion` object."""
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }


class ResponsesEncoder(Encoder):
    """POST /v1/responses with stream=true: Responses API events through `response.completed`.

    `relay`: the upstream's own Responses events, relayed as they came (UPSTREAM_RESPONSES=native),
    each under its own type as the SSE event name; nothing of the app's own but its error event
    when the kit itself fails (timeout, broken connection).

    Otherwise (translate) it builds the events from Chat Completions chunks: text becomes a
    `message` item, each tool call a `function_call` item with `response.function_call_arguments`
    delta/done events, in the order they start; usage details are carried over. `echo` holds the
    request's parameters the response object repeats (tools, tool_choice, temperature, ...).
    """

    def __init__(self, *args: Any, relay: bool = False, echo: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relay = relay
        self.echo = echo or {}
        self.seq = 0
        self.response_id = f"resp_{self.request_id}"
        self.item_id = f"msg_{self.request_id}"
        self.message_index: int | None = None  # output index of the message item, once opened
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its function_call item
        self.next_index = 0

    def _event(self, type: str, **fields: Any) -> bytes:
        payload = {"type": type, "sequence_number": self.seq, **fields}
        if self.emit_timestamps and type == "response.output_text.delta":
            payload["emitted_at"] = time.time()
        self.seq += 1
        return sse(_dumps(payload), type)

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": usage,
            "error": error,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **self.echo,
        }

    def message(self, status: str) -> dict[str, Any]:
        content = [self.text_part()] if status == "completed" else []
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def text_part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": "".join(self.text_parts), "annotations": []}

    def start(self) -> list[bytes]:
        if self.relay:
            return []
        created = self.response("in_progress", [])
        return [
            self._event("response.created", response=created),
            self._event("response.in_progress", response=created),
        ]

    def token(self, chunk: Chunk) -> bytes:
        if self.relay and chunk.raw is not None and chunk.obj is not None:
            name = str(chunk.obj["type"])
            if "\n" in name or "\r" in name:  # a line end in a field would start another field
                return data_frame(chunk.raw)
            return b"event: " + name.encode() + b"\n" + data_frame(chunk.raw)
        frames = []
        if chunk.delta:
            frames += self._text(chunk.delta)
        choices = chunk.obj.get("choices") if chunk.obj is not None else None
        if choices:
            for call in (choices[0].get("delta") or {}).get("tool_calls") or []:
                frames += self._tool_call(call)
        return b"".join(frames)

    def _text(self, delta: str) -> list[bytes]:
        frames = []
        if self.message_index is None:
            self.message_index = self._open()
            frames.append(
                self._event(
                    "response.output_item.added", output_index=self.message_index, item=self.message("in_progress")
                )
            )
            frames.append(
                self._event(
                    "response.content_part.added",
                    item_id=self.item_id,
                    output_index=self.message_index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            )
        self.text_parts.append(delta)
        frames.append(
            self._event(
                "response.output_text.delta",
                item_id=self.item_id,
                output_index=self.message_index,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return frames

    def _open(self) -> int:
        self.next_index += 1
        return self.next_index - 1

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        frames = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            call_id = call.get("id") or f"call_{self.request_id}_{index}"
            item = {
                "id": f"fc_{self.request_id}_{index}",
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": call_id,
                "name": function.get("name") or "",
                "output_index": self._open(),
            }
            self.calls[index] = item
            frames.append(
                self._event("response.output_item.added", output_index=item["output_index"], item=_item(item))
            )
        pieces = function.get("arguments") or ""
        if pieces:
            item["arguments"] += pieces
            frames.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=item["output_index"],
                    delta=pieces,
                )
            )
        return frames

    def usage(self, usage: dict[str, Any] | None) -> dict[str, Any] | None:
        if usage is None:
            return None
        prompt = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens_details") or {}
        return {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
            "input_tokens_details": {"cached_tokens": prompt.get("cached_tokens") or 0},
            "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
        }

    def output(self) -> list[dict[str, Any]]:
        """The finished output items, in the order they started."""
        items: list[tuple[int, dict[str, Any]]] = [
            (c["output_index"], _item(c, "completed")) for c in self.calls.values()
        ]
        if self.message_index is not None:
            items.append((self.message_index, self.message("completed")))
        return [item for _, item in sorted(items, key=lambda pair: pair[0])]

    def done(self, finish_reason: str, usage: dict[str, Any] | None) -> list[bytes]:
        if self.relay:
            return []  # the upstream's response.completed went through as it came
        frames = []
        if self.message_index is not None:
            index = self.message_index
            text = "".join(self.text_parts)
            frames += [
                self._event(
                    "response.output_text.done",
                    item_id=self.item_id,
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done",
                    item_id=self.item_id,
                    output_index=index,
                    content_index=0,
                    part=self.text_part(),
                ),
                self._event("response.output_item.done", output_index=index, item=self.message("completed")),
            ]
        for call in self.calls.values():
            index = call["output_index"]
            frames += [
                self._event(
                    "response.function_call_arguments.done",
                    item_id=call["id"],
                    output_index=index,
                    arguments=call["arguments"],
                ),
                self._event("response.output_item.done", output_index=index, item=_item(call, "completed")),
            ]
        final = self.response("completed", self.output(), self.usage(usage))
        frames.append(self._event("response.completed", response=final))
        return frames

    def error(self, error: dict[str, Any]) -> bytes:
        inner = error["error"]
        return self._event(
            "error",
            code=inner.get("code") or inner["type"],
            message=inner["message"],
            param=inner.get("param"),
            error=inner,
        )

    def body(self, text: str, finish_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
        """A non-streaming Responses `response` object: the items assembled from the chunks fed to
        `token`, or else one message with `text`."""
        if self.message_index is None and not self.calls:
            self.text_parts = [text]
            self.message_index = 0
        return self.response("completed", self.output(), self.usage(usage))


def _item(call: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """A function_call output item (without the encoder's bookkeeping)."""
    item = {k: v for k, v in call.items() if k != "output_index"}
    if status:
        item["status"] = status
    return item
