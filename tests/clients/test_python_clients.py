"""langchain-openai (`bind_tools(...).stream`) and litellm as a client (tool calls,
`reasoning_content`), pinned in mk/clients.mk, through the relay and through nginx: what each
assembles equals what it assembles straight from the upstream (issue #13, acceptance 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import VIA, Bases
from tests.conftest import ON_CI

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-clients" / "bin" / "python"


@pytest.fixture(scope="module")
def results(bases: Bases) -> dict[str, dict[str, Any]]:
    if not PYTHON.exists():
        message = "the client virtualenv is missing: run `make deps` (mk/clients.mk)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    names = ["direct", *VIA]
    arg = json.dumps({name: [bases.url(name), bases.key(name)] for name in names})
    run = subprocess.run(
        [str(PYTHON), str(Path(__file__).with_name("python_clients.py")), arg],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    found: dict[str, dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("via", VIA)
def test_langchain_bind_tools_stream_chunks_equal_direct(results: dict[str, dict[str, Any]], via: str) -> None:
    got, want = results[via]["langchain_tools"], results["direct"]["langchain_tools"]
    assert got == want
    assert [c["name"] for c in got["tool_calls"]] == ["get_weather", "get_time"]
    assert got["tool_calls"][0]["args"] == {"location": "Paris, France"}
    assert sum(len(chunks) for chunks in got["tool_call_chunks"]) == 12  # 2 openings + 10 argument pieces


@pytest.mark.parametrize("via", VIA)
def test_litellm_tool_calls_and_reasoning_equal_direct(results: dict[str, dict[str, Any]], via: str) -> None:
    for case in ("litellm_tools", "litellm_reasoning"):
        assert results[via][case] == results["direct"][case], case
    tools = results[via]["litellm_tools"]
    assert [(t["name"], t["arguments"]) for t in tools["tool_calls"]] == [
        ("get_weather", '{"location": "Paris, France"}'),
        ("get_time", '{"timezone": "Europe/Paris"}'),
    ]
    assert tools["finish_reason"] == "tool_calls"
    reasoning = results[via]["litellm_reasoning"]
    assert reasoning["reasoning_content"] == "The user asks for 2+2. That is 4."
    assert reasoning["content"] == "2 + 2 = 4."
