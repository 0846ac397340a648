"""Client keys (issue #20, acceptance 1 and 6): no key or a wrong key is a 401 `invalid_api_key` with no
upstream request; a key never shows in an answer, a log or a metric; relaying without keys does not start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from app import auth as app_auth
from streamkit.local import Process, free_port, http_ready, metrics_url, wait_until
from tests.auth.conftest import KEYS, MODEL, KeyedRelay, auth, rid, write_keys
from tests.relay.conftest import app_env


def requests_for(prompt: str) -> list[tuple[str, str, dict[str, object] | None]]:
    messages = [{"role": "user", "content": f"{prompt} fake.tokens=3 fake.tokens_per_second=0"}]
    return [
        ("GET", f"/v1/chat/stream?prompt={quote(messages[0]['content'])}", None),  # type: ignore[index]
        ("POST", "/v1/chat/completions", {"model": MODEL, "stream": True, "messages": messages}),
        ("POST", "/v1/chat/completions", {"model": MODEL, "messages": messages}),
        ("POST", "/v1/responses", {"model": MODEL, "stream": True, "input": messages[0]["content"]}),
        ("GET", "/v1/models", None),
        ("POST", "/v1/stream-tokens", None),
    ]


WRONG = "sk-client-wrong-" + "0" * 32
CREDENTIALS = {
    "missing": {},
    "wrong": {"Authorization": f"Bearer {WRONG}"},
    "not bearer": {"Authorization": f"Basic {KEYS['alpha']}"},
    "empty": {"Authorization": "Bearer"},
}


REFUSED: list[str] = []  # request ids answered 401 (the control below checks the upstream never saw them)


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_no_or_wrong_key_is_401(keyed_relay: KeyedRelay, credential: str) -> None:
    for method, path, body in requests_for("unauthorized"):
        request_id = rid("unauth")
        headers = {**CREDENTIALS[credential], "X-Request-ID": request_id}
        response = httpx.request(method, keyed_relay.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.headers["www-authenticate"] == "Bearer"
        REFUSED.append(request_id)


def test_refused_requests_never_reached_the_upstream_unlike_a_good_key(keyed_relay: KeyedRelay) -> None:
    assert len(REFUSED) == len(CREDENTIALS) * len(requests_for("x"))  # ran after the 401 tests
    # Control, the same requests with a good key: the upstream sees every generation.
    good = []
    for method, path, body in requests_for("authorized")[:4]:
        request_id = rid("auth")
        good.append(request_id)
        headers = {**auth("alpha"), "X-Request-ID": request_id}
        response = httpx.request(method, keyed_relay.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
    wait_until(lambda: all(keyed_relay.upstream.saw(i) for i in good), 10, what="upstream saw the good requests")
    assert not any(keyed_relay.upstream.saw(i) for i in REFUSED)
    for request_id in good:
        keyed_relay.upstream.record(request_id)  # fake-upstream's own record of each good request ...
    assert not list(keyed_relay.upstream.records.glob("unauth-*"))  # ... and of no refused one


def test_health_and_metrics_need_no_key(keyed_relay: KeyedRelay) -> None:
    for path in ("/healthz", "/readyz"):
        assert httpx.get(keyed_relay.url + path, timeout=5).status_code == 200, path
    # Metrics live on their own listener (METRICS_PORT), which Prometheus scrapes without a key.
    assert httpx.get(metrics_url(keyed_relay.url), timeout=5).status_code == 200


def test_keys_file_is_reloaded_when_it_changes(keyed_relay: KeyedRelay) -> None:
    def status(name: str) -> int:
        return httpx.get(keyed_relay.url + "/v1/models", headers=auth(name), timeout=5).status_code

    assert status("delta") == 200
    try:
        write_keys(keyed_relay.keys_file, ("alpha", "beta", "gamma"))  # delta revoked
        waited = time.monotonic()
        wait_until(lambda: status("delta") == 401, 5, 0.1, "the revoked key refused")
        assert time.monotonic() - waited < 3
        assert status("alpha") == 200
    finally:
        write_keys(keyed_relay.keys_file)
    wait_until(lambda: status("delta") == 200, 5, 0.1, "the restored key accepted")


def leaks(text: str) -> list[str]:
    """The scan: each client key whole, or its random part, found in `text`."""
    found = []
    for name, key in {**KEYS, "wrong": WRONG}.items():
        secret = key.rsplit("-", 1)[1]
        if key in text or secret in text:
            found.append(name)
    return found


def test_no_answer_log_or_metric_carries_a_client_key(keyed_relay: KeyedRelay) -> None:
    answers = []
    for credential in (auth("alpha"), CREDENTIALS["wrong"], auth("beta")):
        for method, path, body in requests_for("hygiene"):
            response = httpx.request(method, keyed_relay.url + path, json=body, headers=credential, timeout=10)
            answers.append(f"{response.status_code}\n{response.headers}\n{response.text}")
    for answer in answers:
        assert not leaks(answer), answer
    assert not leaks(httpx.get(metrics_url(keyed_relay.url), timeout=5).text)
    for proc in keyed_relay.processes.started:
        log = proc.log_path.read_text(errors="replace")
        assert not leaks(log), f"{proc.name} log {proc.log_path}"
    # Negative control: the same scan finds a key the app does echo (as a request id, which it repeats).
    echoed = httpx.get(keyed_relay.url + "/healthz", headers={"X-Request-ID": KEYS["gamma"]}, timeout=5)
    assert leaks(str(echoed.headers)) == ["gamma"]


def serve(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[Process, str]:
    port = free_port()
    proc = Process(
        name=name,
        argv=[sys.executable, "-m", "streamkit.cli", "serve", "--port", str(port), "--workers", "1"],
        log_path=tmp_path / f"{name}-{port}.log",
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"), **env},
    ).start()
    return proc, f"http://127.0.0.1:{port}"


def exit_code(proc: Process) -> int:
    assert proc.popen is not None
    try:
        return proc.popen.wait(20)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise


def test_relay_without_keys_or_with_a_bad_keys_file_refuses_to_start(tmp_path: Path, keyed_relay: KeyedRelay) -> None:
    relay = app_env(keyed_relay.upstream.url)
    relay.pop("ALLOW_ANONYMOUS")
    bad_keys = tmp_path / "keys"
    bad_keys.write_text(f"alpha {KEYS['alpha']}\n")  # the key itself instead of its digest
    # All three at once (each start is mostly Python imports).
    open_relay, _ = serve(tmp_path, "open-relay", relay)
    bad_file, _ = serve(tmp_path, "bad-keys", {"API_KEYS_FILE": str(bad_keys)})
    # Control: the same relay environment with ALLOW_ANONYMOUS=true serves.
    anonymous, anonymous_url = serve(tmp_path, "anonymous", {**relay, "ALLOW_ANONYMOUS": "true"})
    try:
        assert exit_code(open_relay) == 2
        log = open_relay.logs()
        assert "refusing to start an open relay" in log and "ALLOW_ANONYMOUS=true" in log, log
        assert exit_code(bad_file) == 2
        assert "line 1: expected `name  sha256-hex-of-key`" in bad_file.logs()
        assert not leaks(bad_file.logs())
        wait_until(lambda: not anonymous.alive() or http_ready(anonymous_url + "/healthz")(), 20, 0.05, "serve")
        assert anonymous.alive(), anonymous.logs()
    finally:
        anonymous.stop()


def _secret_version(volume: Path, version: str, names: tuple[str, ...], mtime: float) -> Path:
    """One version of a Secret volume as the kubelet's atomic writer lays it out: the file in a hidden
    timestamped directory, with its write time."""
    directory = volume / f"..{version}"
    directory.mkdir()
    path = write_keys(directory / "api-keys", names)
    os.utime(path, (mtime, mtime))
    return directory


def _swap_data(volume: Path, directory: Path) -> None:
    """The kubelet's swap: a new `..data` symlink, renamed over the old one (atomic)."""
    (volume / "..data_tmp").symlink_to(directory.name)
    os.rename(volume / "..data_tmp", volume / "..data")


@pytest.mark.parametrize("mount", ["volume", "subPath"])
def test_keys_file_rotated_like_a_kubernetes_secret_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mount: str
) -> None:
    """infra/k8s/components/client-keys mounts the keys Secret as a volume. The kubelet updates it by
    writing the new version into a new directory and swapping the `..data` symlink; `api-keys` is a
    symlink through `..data`, so the app's mtime check (KeyRing) sees the new file and the revoked key
    is refused. Control: a subPath mount pins the first version's file, so the revocation never arrives
    (why the component mounts the whole volume; tests/static/test_k8s.py rejects subPath)."""
    monkeypatch.setattr(app_auth, "RELOAD_INTERVAL", 0.0)
    volume = tmp_path / "client-keys"
    volume.mkdir()
    first = _secret_version(volume, "2026_01_01_00_00_00.1", tuple(KEYS), time.time() - 60)
    _swap_data(volume, first)
    (volume / "api-keys").symlink_to("..data/api-keys")
    path = volume / "api-keys" if mount == "volume" else first / "api-keys"  # what a subPath mount pins
    ring = app_auth.KeyRing(str(path))
    assert ring.lookup(KEYS["delta"]) is not None

    second = _secret_version(volume, "2026_01_01_00_01_00.2", ("alpha", "beta", "gamma"), time.time())  # delta revoked
    _swap_data(volume, second)  # the kubelet then deletes `first`; a subPath bind mount keeps its file alive
    revoked = ring.lookup(KEYS["delta"]) is None
    assert revoked is (mount == "volume")
    assert ring.lookup(KEYS["alpha"]) is not None
