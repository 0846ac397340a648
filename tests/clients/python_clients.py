"""langchain-openai and litellm as clients, run in .venv-clients (mk/clients.mk: their openai 2.x
pin clashes with the kit's 3.x), by tests/clients/test_python_clients.py:

    .venv-clients/bin/python tests/clients/python_clients.py '{"direct": ["URL", "KEY"], ...}'

For every base URL it runs each case and prints one JSON object {base: {case: assembled}}: what the
client library itself assembled (no relay-specific post-processing), compared by the test.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# litellm fetches its model cost map from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "fake-upstream"
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
ASK = "weather and time in Paris? fake.replay="


def langchain_tools(base: str, key: str) -> dict[str, Any]:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=MODEL, base_url=base, api_key=key, max_retries=0, timeout=30, stream_usage=True)
    chunks = list(llm.bind_tools(TOOLS).stream(ASK + "tool_calls"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return {
        "tool_call_chunks": [list(c.tool_call_chunks) for c in chunks],
        "tool_calls": total.tool_calls,  # type: ignore[attr-defined]
        "usage": total.usage_metadata,  # type: ignore[attr-defined]
        "response_metadata": total.response_metadata,
    }


def litellm_case(base: str, key: str, fixture: str) -> dict[str, Any]:
    import litellm

    litellm.telemetry = False
    messages = [{"role": "user", "content": ASK + fixture}]
    stream = litellm.completion(
        model=f"openai/{MODEL}",
        api_base=base,
        api_key=key,
        messages=messages,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
    )
    chunks = list(stream)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    built = litellm.stream_chunk_builder(chunks, messages=messages)
    message = built.choices[0].message  # type: ignore[union-attr]
    return {
        "content": message.content,
        "reasoning_content": reasoning,
        "tool_calls": [
            {"id": t.id, "name": t.function.name, "arguments": t.function.arguments} for t in message.tool_calls or []
        ],
        "finish_reason": built.choices[0].finish_reason,  # type: ignore[union-attr]
        "usage": built.usage.model_dump() if getattr(built, "usage", None) else None,  # type: ignore[union-attr]
    }


def main() -> None:
    bases: dict[str, list[str]] = json.loads(sys.argv[1])
    out: dict[str, dict[str, Any]] = {}
    for name, (base, key) in bases.items():
        out[name] = {
            "langchain_tools": langchain_tools(base, key),
            "litellm_tools": litellm_case(base, key, "tool_calls"),
            "litellm_reasoning": litellm_case(base, key, "reasoning"),
        }
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
