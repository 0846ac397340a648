"""Bad input gets a 4xx with an OpenAI-style error body, never a 500 or a hang (issue #2, acceptance 6)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.settings import FAKE_MODEL, Settings
from tests.app.conftest import RunningApp

DEFAULTS = Settings()
CHAT = "/v1/chat/completions"
GOOD_MESSAGES = [{"role": "user", "content": "hi"}]


def assert_openai_error(
    response: httpx.Response, status: int, type: str, param: str | None = None, code: str | None = None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == type and body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param, body
    if code is not None:
        assert body["error"]["code"] == code, body


@pytest.fixture(scope="module")
def http(running_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_app.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"model": FAKE_MODEL}, "messages"),
        (CHAT, {"messages": GOOD_MESSAGES}, "model"),
        (CHAT, {"model": FAKE_MODEL, "messages": []}, "messages"),
        (CHAT, {"model": FAKE_MODEL, "messages": GOOD_MESSAGES, "stream": "yes"}, "stream"),
        (CHAT, {"model": 42, "messages": GOOD_MESSAGES}, "model"),
        (CHAT, {"model": FAKE_MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (CHAT, {"model": FAKE_MODEL, "messages": GOOD_MESSAGES, "max_tokens": 0}, "max_tokens"),
        (CHAT, {"model": FAKE_MODEL, "messages": GOOD_MESSAGES, "fake": {"tokens": -1}}, "fake.tokens"),
        (CHAT, {"model": FAKE_MODEL, "messages": GOOD_MESSAGES, "fake": {"bogus": 1}}, "fake.bogus"),
        ("/v1/responses", {"model": FAKE_MODEL}, "input"),
        ("/v1/responses", {"model": FAKE_MODEL, "input": 7}, "input.str"),
    ],
)
def test_wrong_types_and_missing_fields(http: httpx.Client, path: str, body: dict[str, Any], param: str) -> None:
    assert_openai_error(http.post(path, json=body), 400, "invalid_request_error", param)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", '{"model": "\u00e9'.encode()])
def test_invalid_json(http: httpx.Client, raw: bytes) -> None:
    response = http.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, "invalid_request_error")


def test_unknown_model(http: httpx.Client) -> None:
    response = http.post(CHAT, json={"model": "gpt-unknown", "messages": GOOD_MESSAGES, "stream": True})
    assert_openai_error(response, 404, "not_found_error", "model", "model_not_found")
    assert_openai_error(
        http.get("/v1/chat/stream", params={"prompt": "x", "model": "nope"}),
        404,
        "not_found_error",
        "model",
        "model_not_found",
    )


def test_body_over_the_limit(http: httpx.Client) -> None:
    big = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x" * (DEFAULTS.max_body_bytes + 10)}]}
    assert_openai_error(http.post(CHAT, json=big), 413, "invalid_request_error", code="request_too_large")


def test_chunked_body_over_the_limit_without_content_length(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "streamkit-fake", "messages": [{"role": "user", "content": "'
        for _ in range(DEFAULTS.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}]}'

    response = http.post(CHAT, content=chunks(), headers={"Content-Type": "application/json"})
    assert_openai_error(response, 413, "invalid_request_error", code="request_too_large")


def test_prompt_over_the_limit(http: httpx.Client) -> None:
    long = "y" * (DEFAULTS.max_prompt_chars + 1)
    response = http.post(CHAT, json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": long}]})
    assert_openai_error(response, 400, "invalid_request_error", "messages", "context_length_exceeded")
    stream = http.get("/v1/chat/stream", params={"prompt": long})
    assert_openai_error(stream, 400, "invalid_request_error", "prompt", "context_length_exceeded")


def test_stream_endpoint_query_validation(http: httpx.Client) -> None:
    assert_openai_error(http.get("/v1/chat/stream"), 400, "invalid_request_error", "prompt")
    assert_openai_error(
        http.get("/v1/chat/stream", params={"prompt": "x", "tokens": "many"}), 400, "invalid_request_error", "tokens"
    )
    assert_openai_error(
        http.get("/v1/chat/stream", params={"prompt": "x", "first_token_delay": -1}),
        400,
        "invalid_request_error",
        "first_token_delay",
    )


def test_unknown_route_and_method(http: httpx.Client) -> None:
    assert_openai_error(http.get("/v1/nothing-here"), 404, "not_found_error")
    assert_openai_error(http.delete(CHAT), 405, "invalid_request_error")


def test_server_still_healthy_after_bad_input(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
