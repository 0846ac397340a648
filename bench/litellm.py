"""LiteLLM proxy, the peer users would deploy instead, in its own virtualenv (mk/bench.mk installs it).

It runs with one worker on the server core, pointed at fake-upstream as an `openai/` model, with a
master key (LiteLLM's proxy refuses to run its auth without one). Settings that keep it offline:
LITELLM_LOCAL_MODEL_COST_MAP (the bundled cost map instead of fetching it) and `--telemetry False`.
Docs: https://docs.litellm.ai/docs/proxy/configs
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

from bench import servers
from bench.servers import Server
from streamkit.local import Process, free_port

MASTER_KEY = "sk-bench-master-key"
# `make bench` installs it here (mk/bench.mk); BENCH_LITELLM_VENV points elsewhere.
VENV = Path(os.environ.get("BENCH_LITELLM_VENV", ".venv-litellm"))


def python() -> Path | None:
    """The LiteLLM virtualenv's Python, when `make bench` installed it."""
    candidate = VENV / "bin" / "python"
    return candidate if candidate.exists() else None


def version(python: Path) -> str:
    import subprocess

    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip()


def start(workdir: Path, python: Path, upstream: Server) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "model_list": [
            {
                "model_name": servers.FAKE_MODEL,
                "litellm_params": {
                    "model": f"openai/{servers.FAKE_MODEL}",
                    "api_base": f"http://{upstream.host}:{upstream.port}/v1",
                    "api_key": servers.FAKE_KEY,
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = workdir / "litellm.json"
    path.write_text(json.dumps(config))  # YAML is a superset of JSON
    port = free_port()
    argv = [str(python.parent / "litellm"), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1", "--telemetry", "False"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "True"}
    process = Process("litellm", argv, workdir / f"litellm-{port}.log", env=env).start()
    servers.wait_http(process, f"http://127.0.0.1:{port}/health/liveliness")
    servers.pin(process.pid, servers.SERVER_CORE)
    root = psutil.Process(process.pid)
    pids = [root.pid, *(child.pid for child in root.children(recursive=True))]
    return Server("litellm", "127.0.0.1", port, [process], pids)
