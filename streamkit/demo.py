"""`streamkit demo`: run the app on its built-in fake LLM and print commands that work when pasted."""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

HELP = "run the reference app on its fake LLM and print commands to try"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="app port (default 8000)")
    parser.add_argument("--once", action="store_true", help="print the report and stop (no waiting)")


def commands(url: str) -> str:
    return f"""
  curl -N '{url}/v1/chat/stream?prompt=hello'

  curl -N {url}/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "streamkit-fake", "stream": true, "messages": [{{"role": "user", "content": "hello"}}]}}'

  .venv/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{url}/v1", api_key="unused")
stream = client.chat.completions.create(
    model="streamkit-fake", stream=True, messages=[{{"role": "user", "content": "hello"}}])
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
PY
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from streamkit.local import start_app

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo as Ctrl-C does, cleaning up

    log_dir = Path(tempfile.mkdtemp(prefix="streamkit-demo-"))
    app, url = start_app(log_dir, env={"EMIT_TIMESTAMPS": "true"}, port=args.port)
    try:
        print(f"streamkit reference app (fake LLM) at {url}  (log: {app.log_path})")
        print("Try (with the project's virtualenv active for the python one):" + commands(url))
        if args.once:
            return 0
        print("Ctrl-C stops the demo.")
        while app.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
    return 0
