"""The Vercel AI SDK's `streamText` with tools on Node (tests/clients/node: `ai` and
`@ai-sdk/openai-compatible` pinned in package.json, installed by `make deps`) through the relay and
through nginx: the tool calls with their inputs, text, reasoning, finish reason and usage it
assembles equal what it assembles straight from the upstream (issue #13, acceptance 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import VIA, Bases
from tests.conftest import ON_CI, require_binary

NODE_DIR = Path(__file__).with_name("node")


@pytest.fixture(scope="module")
def results(bases: Bases) -> dict[str, dict[str, Any]]:
    node = require_binary("node")
    if not (NODE_DIR / "node_modules" / "ai").exists():
        message = "the AI SDK is not installed: run `make deps` (mk/clients.mk)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    arg = json.dumps({name: [bases.url(name), bases.key(name)] for name in ["direct", *VIA]})
    run = subprocess.run([node, "stream_text.mjs", arg], cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-4000:]
    found: dict[str, dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("via", VIA)
def test_stream_text_with_tools_equals_direct(results: dict[str, dict[str, Any]], via: str) -> None:
    assert results[via] == results["direct"]
    tools = results[via]["tools"]
    assert [(c["name"], c["input"]) for c in tools["toolCalls"]] == [
        ("get_weather", {"location": "Paris, France"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    assert tools["finishReason"] == "tool-calls"
    assert tools["usage"]["inputTokens"] == 81 and tools["usage"]["outputTokens"] == 44
    reasoning = results[via]["reasoning"]
    assert reasoning["reasoning"] == "The user asks for 2+2. That is 4."
    assert reasoning["text"] == "2 + 2 = 4."
