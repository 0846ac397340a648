"""The probe judges other people's streams fairly (issue 14, acceptance 6).

Three SSE servers that are not the kit (tests/probe/peers/: FastAPI's native SSE, sse-starlette,
a raw ASGI app, each under uvicorn) serve a generic stream that ends by closing and an
OpenAI-compatible stream with a plain `Cache-Control: no-cache`. Straight from the server, each
passes (exit 0: a clean close of a generic stream is not CUT, the missing no-transform is
advice). Behind a real nginx that buffers, compresses or times out, each fails with the headline
of that hop's defect: the hops differ from a correct site in that one setting.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streamkit.cli import main
from streamkit.local import Process, free_port, wait_until
from streamkit.probe.observe import observe
from streamkit.probe.verdict import assess
from streamkit.proxies import nginx
from streamkit.proxies.base import Launch
from tests.conftest import Processes, require_binary
from tests.probe.conftest import START_TIMEOUT

PEERS = ("fastapi_native", "sse_starlette_peer", "raw_asgi")
# 4 events 0.2 s apart: only a stall of the probe itself longer than 0.4 s could bunch 3 of them
# into one burst (0.05 s window) and make a healthy stream look buffered; 3 events are the fewest
# burst detection judges, and few events keep 27 probes short.
PACE = "n=4&interval=0.2"
PAUSE = 1.0  # the timing-out hop's peers go silent this long after half the events, twice...
READ_TIMEOUT = "500ms"  # ...this hop's proxy_read_timeout
STREAMS = {
    "generic": ("/generic", []),
    "openai": ("/v1/chat/completions", ["--json", json.dumps({"model": "peer", "stream": True})]),
}
# A correct streaming location; each bad hop changes one setting of it.
GOOD = """
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 3600s;"""
HOPS = {
    # nginx passes each chunk of a chunked response on at once even with buffering on, but holds a
    # body without chunked framing (from an HTTP/1.0 server or a second nginx) in its buffers: this
    # hop reads the peer through an inner server with `chunked_transfer_encoding off` (the kit's
    # tests/e2e/strip-hints-unchunked.conf). FastAPI and sse-starlette send
    # `X-Accel-Buffering: no`, which nginx obeys, so this hop ignores it (as one that drops it would).
    "buffering": (
        "BUFFERED",
        GOOD.replace("proxy_buffering off;", "proxy_buffering on;")
        + "\n        proxy_ignore_headers X-Accel-Buffering;",
    ),
    "compressing": ("COMPRESSED", GOOD + "\n        gzip on;\n        gzip_types text/event-stream;"),
    "timing-out": ("CUT", GOOD.replace("3600s", READ_TIMEOUT)),
}


def _start_peers(processes: Processes, log_dir: Path) -> dict[str, str]:
    """Start every peer under uvicorn (all at once: imports overlap), then wait for each."""
    started = {}
    for module in PEERS:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", f"tests.probe.peers.{module}:app", "--port", str(port)]
        proc = processes.add(Process(module, [*argv, "--log-level", "warning"], log_dir / f"{module}.log").start())
        started[module] = (proc, f"http://127.0.0.1:{port}")
    for module, (proc, url) in started.items():
        wait_until(lambda: not proc.alive() or _accepts(url), START_TIMEOUT, what=module)  # noqa: B023
        assert proc.alive(), proc.logs()
    return {module: url for module, (_, url) in started.items()}


def _accepts(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def peers(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _start_peers(module_processes, tmp_path_factory.mktemp("peers"))


@pytest.fixture(scope="module")
def hops(
    module_processes: Processes, tmp_path_factory: pytest.TempPathFactory, peers: dict[str, str]
) -> dict[str, str]:
    """One real nginx with a server per bad hop, each proxying /<peer>/ to that peer."""
    binary = require_binary("nginx")
    workdir = tmp_path_factory.mktemp("nginx-hops")
    ports = {hop: free_port() for hop in [*HOPS, "unchunked"]}
    unchunked = {name: f"http://127.0.0.1:{ports['unchunked']}/{name}" for name in peers}
    servers = []
    for hop, (_, settings) in [*HOPS.items(), ("unchunked", ("", GOOD + "\n        chunked_transfer_encoding off;"))]:
        locations = "".join(
            f"    location /{name}/ {{\n        proxy_pass {unchunked[name] if hop == 'buffering' else url}/;"
            f"{settings}\n    }}\n"
            for name, url in peers.items()
        )
        servers.append(f"server {{\n    listen 127.0.0.1:{ports[hop]};\n{locations}}}\n")
    site = workdir / "hops.conf"
    site.write_text("".join(servers))
    launch = Launch(binary, workdir, {"hops.conf": site}, {})
    main_config = nginx.write_main_config(launch)
    argv = nginx.command(Launch(binary, workdir, {"main": main_config}, {}))
    proc = module_processes.add(Process("nginx-hops", argv, workdir / "nginx.log", cwd=workdir).start())
    urls = {hop: f"http://127.0.0.1:{ports[hop]}" for hop in HOPS}
    wait_until(lambda: not proc.alive() or all(_accepts(f"{u}/raw_asgi") for u in urls.values()), START_TIMEOUT)
    assert proc.alive(), proc.logs()
    return urls


def probe(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, dict[str, object]]:
    code = main(["probe", url, "--json-out", "-", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("peer", PEERS)
def test_healthy_peer_stream_passes(
    peer: str, stream: str, peers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, args = STREAMS[stream]
    code, report = probe(capsys, f"{peers[peer]}{path}?{PACE}", *args)
    assert code == 0, report["summary"]
    assert report["verdict"] == "STREAMS"
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert checks["terminal_event"]["ok"] is True
    if peer != "fastapi_native":  # FastAPI sends no-cache only too, sse-starlette/raw as configured
        assert report["advice"] == ["cache_control"]


@pytest.mark.parametrize("hop", HOPS)
def test_peer_streams_fail_behind_a_bad_hop(hop: str, hops: dict[str, str]) -> None:
    """Every peer's generic and OpenAI stream, probed at once through one bad hop (each verdict
    comes from what the hop did: held bytes, a Content-Encoding, a broken body), fails with that
    hop's headline, so the run would exit 1."""
    pause = f"&pause={PAUSE}" if hop == "timing-out" else ""

    def verdict(case: tuple[str, str]) -> tuple[str, bool, str]:
        peer, stream = case
        path, args = STREAMS[stream]
        body = json.loads(args[1]) if args else None
        report = assess(
            observe(f"{hops[hop]}/{peer}{path}?{PACE}{pause}", method="POST" if body else "GET", json_body=body)
        )
        return report.headline, report.ok, report.summary

    cases = [(peer, stream) for peer in PEERS for stream in STREAMS]
    with ThreadPoolExecutor(len(cases)) as pool:
        results = dict(zip(cases, pool.map(verdict, cases), strict=True))
    wrong = {case: summary for case, (headline, ok, summary) in results.items() if ok or headline != HOPS[hop][0]}
    assert not wrong, wrong


def test_generic_stream_closing_before_its_expected_length_is_cut(
    peers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A generic stream has no terminal event: --expect-seconds / --expect-events say how long it
    should be, so one that a hop closed cleanly but early is still CUT (the negative control of
    the clean-close pass above: same stream, only the expectation differs)."""
    url = f"{peers['raw_asgi']}/generic?{PACE}"
    assert probe(capsys, url, "--expect-seconds", "0.6", "--expect-events", "4")[0] == 0
    code, report = probe(capsys, url, "--expect-seconds", "30")
    assert code == 1 and report["verdict"] == "CUT" and "--expect-seconds" in str(report["summary"])
    code, report = probe(capsys, url, "--expect-events", "5")
    assert code == 1 and report["verdict"] == "CUT"
    code, report = probe(capsys, url, "--terminal", "done")  # told the stream ends with `done`
    assert code == 1 and report["verdict"] == "CUT"


def test_generic_stream_without_any_event_is_not_a_pass(
    peers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A clean close is how a generic stream ends, but a stream that closes before its first
    event delivered nothing: CUT (the control: the same peer with one event passes)."""
    code, report = probe(capsys, f"{peers['raw_asgi']}/generic?n=0")
    assert code == 1 and report["verdict"] == "CUT" and "without a single event" in str(report["summary"])
    assert probe(capsys, f"{peers['raw_asgi']}/generic?n=1")[0] == 0
