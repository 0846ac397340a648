"""The official openai SDK as a client of the app (issue #2, acceptance 4)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from app.fakellm import fake_text
from app.settings import FAKE_MODEL
from tests.app.conftest import RunningApp

FAST: dict[str, Any] = {"tokens": 24, "tokens_per_second": 0, "first_token_delay": 0}


@pytest.fixture(scope="module")
def client(running_app: RunningApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{running_app.url}/v1", api_key="unused-by-the-fake", max_retries=0)


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [FAKE_MODEL]


def test_streaming_chat_completion_full_text_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=FAKE_MODEL,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "sdk stream"}],
        extra_body={"fake": FAST},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake_text("sdk stream", 24)
    assert len({c.id for c in chunks}) == 1
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24


def test_non_streaming_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=FAKE_MODEL, messages=[{"role": "user", "content": "sdk plain"}], extra_body={"fake": FAST}
    )
    assert completion.choices[0].message.content == fake_text("sdk plain", 24)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 24


def test_streaming_responses_api(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(model=FAKE_MODEL, input="sdk responses", stream=True, extra_body={"fake": FAST})
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == fake_text("sdk responses", 24)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.output_text == deltas
    assert completed.usage is not None and completed.usage.output_tokens == 24


def test_responses_stream_helper_accumulates_the_text(client: openai.OpenAI) -> None:
    with client.responses.stream(model=FAKE_MODEL, input="helper", extra_body={"fake": FAST}) as stream:
        final = stream.get_final_response()
    assert final.output_text == fake_text("helper", 24)


def test_non_streaming_responses_api(client: openai.OpenAI) -> None:
    response = client.responses.create(model=FAKE_MODEL, input="plain responses", extra_body={"fake": FAST})
    assert response.output_text == fake_text("plain responses", 24)


def test_in_band_error_reaches_the_sdk_as_an_api_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=FAKE_MODEL,
        stream=True,
        messages=[{"role": "user", "content": "boom"}],
        extra_body={"fake": {**FAST, "fail_at": 3}},
    )
    received = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            received.append(chunk)
    assert raised.value.body == {
        "message": "fake upstream failure at token 3",
        "type": "upstream_error",
        "param": None,
        "code": None,
    }
    assert len(received) == 1 + 3  # role chunk, three tokens


def test_unknown_model_is_a_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert raised.value.code == "model_not_found"
