"""Limits across replicas (issue #20, acceptance 3): two app instances behind nginx share MAX_STREAMS_PER_KEY
through leases in a real redis-server; the slots of a SIGKILLed instance free themselves within the lease TTL.

nginx: a minimal test config with both instances in one upstream block (the shipped site file has one
backend; `streamkit.proxies` runs it like every other nginx config).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from textwrap import dedent

import httpx
import psutil
import pytest

from streamkit.local import Process, free_port, wait_until
from streamkit.proxies import PROXIES
from tests.auth.conftest import (
    MAX_STREAMS_PER_KEY,
    RedisServer,
    auth,
    in_parallel,
    rid,
    start_redis,
    wait_for_window_room,
    write_keys,
)
from tests.conftest import Processes, require_binary

LEASE_TTL = 2.0
TOKENS_PER_MINUTE = 500
HOLD = "/v1/chat/stream?prompt=hold&tokens=100000&tokens_per_second=10&first_token_delay=0"


def balancer_config(directory: Path, listen: str, backends: list[str]) -> Path:
    servers = "\n".join(f"    server {backend};" for backend in backends)
    path = directory / "two-replicas.conf"
    path.write_text(dedent("""\
        # Test config (tests/auth/test_replicas.py): round robin over two app instances.
        upstream streamkit_replicas {
        %s
        }
        server {
            listen %s;  # streamkit: listen
            location / {
                proxy_pass http://streamkit_replicas;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_buffering off;
            }
        }
        """) % (servers, listen))
    return path


def start_replica(processes: Processes, keys: Path, redis_url: str | None) -> tuple[Process, str]:
    env = {"API_KEYS_FILE": str(keys), "MAX_STREAMS_PER_KEY": str(MAX_STREAMS_PER_KEY),
           "LEASE_TTL_SECONDS": str(LEASE_TTL), "TOKENS_PER_MINUTE": str(TOKENS_PER_MINUTE)}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return processes.app(env=env)


def hold(client: httpx.Client, url: str, name: str = "alpha") -> httpx.Response:
    request = client.build_request("GET", url + HOLD, headers={**auth(name), "X-Request-ID": rid("replica")})
    return client.send(request, stream=True)


def status(url: str, name: str = "alpha") -> int:
    with httpx.Client(timeout=10) as client:
        response = hold(client, url, name)
        response.close()
        return response.status_code


def sigkill(proc: Process) -> None:
    """SIGKILL the instance: gunicorn's arbiter and its workers, each by PID, no cleanup of any kind."""
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for member in family:
        member.send_signal(signal.SIGKILL)
    assert proc.popen is not None
    proc.popen.wait(5)

    def dead(member: psutil.Process) -> bool:
        try:
            return member.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(lambda: all(dead(member) for member in family), 5, 0.01, "the killed instance gone")


@dataclass
class Replicas:
    a: Process
    a_url: str
    b_url: str
    edge: str  # nginx in front of A and B
    local_url: str  # the negative control: an instance without REDIS_URL


@pytest.fixture(scope="module")
def replicas(
    module_processes: Processes, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Replicas:
    require_binary("nginx")
    tmp_path = tmp_path_factory.mktemp("replicas")
    keys = write_keys(tmp_path / "api-keys")
    (a, a_url), (_, b_url), (_, local_url) = in_parallel(
        partial(start_replica, module_processes, keys, redis_server.url),
        partial(start_replica, module_processes, keys, redis_server.url),
        partial(start_replica, module_processes, keys, None),
    )
    listen = f"127.0.0.1:{free_port()}"
    config = balancer_config(tmp_path, listen, [a_url.removeprefix("http://"), b_url.removeprefix("http://")])
    module_processes.add(PROXIES["nginx"].start(tmp_path / "nginx", {"listen": listen}, config, label="replicas"))
    return Replicas(a, a_url, b_url, f"http://{listen}", local_url)


def test_control_an_instance_without_redis_does_not_share_its_streams(replicas: Replicas) -> None:
    with httpx.Client(timeout=10) as client:
        held = [hold(client, replicas.local_url, "gamma") for _ in range(MAX_STREAMS_PER_KEY)]
        try:
            assert [r.status_code for r in held] == [200] * MAX_STREAMS_PER_KEY
            assert status(replicas.local_url, "gamma") == 429  # its own count holds
            assert status(replicas.b_url, "gamma") == 200  # but no other instance knows of it
        finally:
            for response in held:
                response.close()


def test_a_stream_token_works_once_across_replicas(replicas: Replicas) -> None:
    headers = auth("beta")
    token = httpx.post(replicas.a_url + "/v1/stream-tokens", headers=headers, timeout=10).json()["token"]
    path = f"/v1/chat/stream?prompt=once&tokens=2&tokens_per_second=0&stream_token={token}"
    first = httpx.get(replicas.b_url + path, timeout=10)  # issued by A, used on B
    assert first.status_code == 200 and "event: done" in first.text
    assert httpx.get(replicas.a_url + path, timeout=10).status_code == 401  # burnt for every replica
    # Control: without Redis an instance only knows its own used tokens.
    assert httpx.get(replicas.local_url + path, timeout=10).status_code == 200


def tokens_streamed(url: str, name: str, tokens: int) -> tuple[int, str]:
    path = f"/v1/chat/stream?prompt=budget&tokens={tokens}&tokens_per_second=0&first_token_delay=0"
    text = httpx.get(url + path, headers=auth(name), timeout=30).text
    last = [line for line in text.splitlines() if line.startswith("event: ")][-1]
    return text.count("event: token"), last


def test_token_budget_is_shared_across_replicas(replicas: Replicas) -> None:
    wait_for_window_room(10)
    assert tokens_streamed(replicas.a_url, "delta", 300) == (300, "event: done")
    # B knows A's 300: the key has 200 left in this minute, then the stream ends with an error event.
    assert tokens_streamed(replicas.b_url, "delta", 300) == (TOKENS_PER_MINUTE - 300, "event: error")
    refused = httpx.get(replicas.a_url + "/v1/chat/stream?prompt=more", headers=auth("delta"), timeout=10)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    # Control: the instance without Redis counts only its own streams, so the same key streams there.
    assert tokens_streamed(replicas.local_url, "delta", 300) == (300, "event: done")


def test_per_key_limit_holds_across_replicas_and_a_killed_replica_frees_its_slots(replicas: Replicas) -> None:
    a, a_url, b_url, edge = replicas.a, replicas.a_url, replicas.b_url, replicas.edge
    with httpx.Client(timeout=10) as client:
        held = [hold(client, edge) for _ in range(MAX_STREAMS_PER_KEY)]
        try:
            assert [r.status_code for r in held] == [200] * MAX_STREAMS_PER_KEY
            # Whichever instance nginx picked for each, the third is refused everywhere.
            assert status(edge) == 429 and status(a_url) == 429 and status(b_url) == 429
            assert status(edge, "beta") == 200
        finally:
            for response in held:
                response.close()
        time.sleep(0.3)  # the closed streams release their leases
        # Both slots held by instance A, which then dies without releasing them.
        held = [hold(client, a_url) for _ in range(MAX_STREAMS_PER_KEY)]
        assert [r.status_code for r in held] == [200] * MAX_STREAMS_PER_KEY
        time.sleep(LEASE_TTL)  # renewed at least once: a long stream keeps its slot past the TTL
        assert status(b_url) == 429
        killed_at = time.monotonic()
        sigkill(a)
        for response in held:
            response.close()
        assert status(edge) == 429  # nothing released them: only the lease expiry frees them
        freed_after = None
        while time.monotonic() - killed_at < LEASE_TTL + 5:
            if status(edge) == 200:
                freed_after = time.monotonic() - killed_at
                break
            time.sleep(0.05)
    assert freed_after is not None, "the killed instance's slots never came back"
    print(f"slots of the killed instance free {freed_after:.2f} s after SIGKILL (lease TTL {LEASE_TTL} s)")
    assert freed_after <= LEASE_TTL + 1.0, f"freed {freed_after:.2f} s after the kill (lease TTL {LEASE_TTL} s)"


def test_without_redis_answering_a_generation_is_a_fast_503_not_unlimited(
    processes: Processes, tmp_path: Path
) -> None:
    store = start_redis(processes)
    _, url = start_replica(processes, write_keys(tmp_path / "api-keys"), store.url)
    stream = "/v1/chat/stream?prompt=store&tokens=2&tokens_per_second=0"
    assert httpx.get(url + stream, headers=auth("alpha"), timeout=10).status_code == 200  # control: Redis up
    store.proc.stop()
    begin = time.monotonic()
    refused = httpx.get(url + stream, headers=auth("alpha"), timeout=10)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "limits_unavailable"
    assert time.monotonic() - begin < 5  # bounded by the client's 1 s timeouts, not hanging
    assert httpx.get(url + "/v1/models", headers=auth("alpha"), timeout=10).status_code == 200  # no slot needed
    assert httpx.get(url + stream, timeout=10).status_code == 401  # auth still holds
