"""The official openai SDK as the client, through the app, against fake-upstream: exactly the
text fake-upstream sends, chunk ids kept, usage passed through (issue #3, acceptance 3)."""

from __future__ import annotations

import re

import httpx
from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from app.fakellm import fake_text
from tests.relay.conftest import ADAPTER, API_KEY, MODEL, Relay, rid

# A prompt that asks fake-upstream for 12 tokens at full speed.
PROMPT = "relay exactly this fake.tokens=12 fake.tokens_per_second=0 fake.first_token_delay=0"
EXPECTED = fake_text(PROMPT, 12)
USAGE = {"prompt_tokens": len(PROMPT.split()), "completion_tokens": 12, "total_tokens": len(PROMPT.split()) + 12}


def client(base_url: str, key: str = "client-side-key") -> OpenAI:
    return OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)


def stream_chunks(base_url: str, key: str, request_id: str) -> list[ChatCompletionChunk]:
    return list(
        client(base_url, key).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Request-ID": request_id},
        )
    )


def test_chat_completions_stream_text_ids_and_usage(relay: Relay) -> None:
    request_id = rid()
    chunks = stream_chunks(relay.url + "/v1", "client-side-key", request_id)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED
    # What fake-upstream itself sends for the same request (the SDK straight at it).
    direct_chunks = stream_chunks(relay.upstream.url, API_KEY, request_id)
    assert "".join(c.choices[0].delta.content or "" for c in direct_chunks if c.choices) == text
    # Every content chunk is fake-upstream's own chunk, its id kept.
    upstream_id = direct_chunks[0].id
    assert upstream_id == f"chatcmpl-upstream-{request_id}"
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 12
    assert {c.id for c in content} == {upstream_id}
    # include_usage: the last chunk carries the upstream's usage.
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.model_dump(include=set(USAGE)) == USAGE
    assert direct_chunks[-1].usage is not None and direct_chunks[-1].usage.model_dump(include=set(USAGE)) == USAGE


def test_chat_completions_raw_chunks_pass_through_verbatim(relay: Relay) -> None:
    request_id = rid()
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"X-Request-ID": request_id}
    through = httpx.post(relay.url + "/v1/chat/completions", json=body, headers=headers, timeout=30).text
    direct = httpx.post(
        relay.upstream.url + "/chat/completions",
        json=body,
        headers={**headers, "Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    ).text
    content_line = re.compile(r'^data: .*"delta":\{"content":.*$', re.MULTILINE)
    relayed = content_line.findall(through)
    assert len(relayed) == 12

    def same_second(lines: list[str]) -> list[str]:  # the two requests may straddle a second
        return [re.sub(r'"created":\d+', '"created":0', line) for line in lines]

    assert same_second(relayed) == same_second(content_line.findall(direct))  # otherwise byte for byte


def test_chat_completions_non_streaming(relay: Relay) -> None:
    completion = client(relay.url + "/v1").chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}]
    )
    assert completion.choices[0].message.content == EXPECTED
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.model_dump(include=set(USAGE)) == USAGE


def test_responses_stream_and_non_stream(relay: Relay) -> None:
    sdk = client(relay.url + "/v1")
    events = list(sdk.responses.create(model=MODEL, input=PROMPT, stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == EXPECTED
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == EXPECTED
    assert events[-1].response.usage is not None and events[-1].response.usage.output_tokens == 12
    assert sdk.responses.create(model=MODEL, input=PROMPT).output_text == EXPECTED


def test_fake_upstream_serves_responses_and_models_itself(relay: Relay) -> None:
    sdk = client(relay.upstream.url, API_KEY)
    assert [m.id for m in sdk.models.list()] == [MODEL, ADAPTER]
    events = list(sdk.responses.create(model=MODEL, input=PROMPT, stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == EXPECTED
    assert sdk.responses.create(model=MODEL, input=PROMPT).output_text == EXPECTED
    completion = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])
    assert completion.choices[0].message.content == EXPECTED
