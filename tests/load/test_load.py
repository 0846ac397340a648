"""Each load scenario once, small (a few hundred streams, seconds each), through the shipped nginx
config with two app instances of two workers behind it: a stream lost or damaged fails CI.

The full scale (2,000 streams, every proxy, the 10-minute soak) is `make load` (bench/load_run.py,
results in bench/results/load/). Every check here has a negative control that differs only in the
setting it is about: the old harness capacity (worker_connections 512), nginx without the 503 retry,
nginx with `worker_shutdown_timeout 1s` (cuts streams on reload). Counts only: latency is not
asserted here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bench.load import Load, Stack, concurrency, fault_knobs, faults, proxy_reload, rolling_restart, soak, stack, usage
from streamkit.proxies import nginx
from tests.conftest import require_binary

DRAIN = "2"  # seconds a SIGTERMed instance drains (the app's DRAIN_SECONDS)


@pytest.fixture(scope="module")
def nginx_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("nginx")
    with stack("nginx", tmp_path_factory.mktemp("load"), app_env={"DRAIN_SECONDS": DRAIN}) as running:
        yield running


def _variant(running: Stack, label: str, **harness: object) -> Stack:
    """nginx with the shipped site file in a harness main config that differs as given."""
    proxy = replace(nginx.PROXY, prepare=functools.partial(nginx.write_main_config, **harness))
    return running.with_proxy(proxy, label=label)


def _without_retry(tmp: Path) -> dict[str, Path]:
    """The shipped site file minus the `proxy_next_upstream ... http_503` line."""
    site = nginx.PROXY.config_paths[0].read_text()
    kept = [line for line in site.splitlines(keepends=True) if not line.strip().startswith("proxy_next_upstream ")]
    assert len(kept) == len(site.splitlines()) - 1, "the shipped site file has one proxy_next_upstream line"
    path = tmp / "no-retry.conf"
    path.write_text("".join(kept))
    return {nginx.PROXY.configs[0]: path}


def _sound(result: dict[str, object]) -> None:
    assert result["lost"] == 0, result["why"]
    assert result["damaged"] == 0, result["why"]


CONCURRENT = Load("concurrency", slots=300, seconds=4, tokens=20, tokens_per_second=10, ramp=1.5)


def test_concurrency(nginx_stack: Stack) -> None:
    result = concurrency(nginx_stack, CONCURRENT)
    _sound(result)
    assert result["intact"] == result["started"], result["why"]
    assert result["peak_active"] >= 250  # the streams really were open at once


def test_concurrency_control_old_capacity_loses_streams(nginx_stack: Stack) -> None:
    """The harness's old worker_connections 512: 300 streams need 600 connections in nginx."""
    old = _variant(nginx_stack, "wc512", worker_connections=512)
    try:
        result = concurrency(old, CONCURRENT)
    finally:
        old.stop()
    assert result["intact"] < result["started"]
    assert result["lost"] > 0, result["why"]


ROLL = Load("roll", slots=100, seconds=10, tokens=30, tokens_per_second=10, ramp=1)


def test_rolling_restart(nginx_stack: Stack) -> None:
    result = rolling_restart(nginx_stack, ROLL, first_after=1, drain_timeout=30)
    _sound(result)
    assert len(result["rolls"]) == 2
    assert result["http_5xx"] == 0, result["why"]
    # Streams on a draining instance end with `done` or `server_shutdown`, nothing else.
    assert set(result["why"]) <= {"error:server_shutdown"}, result["why"]


def test_rolling_restart_control_without_503_retry(nginx_stack: Stack, tmp_path: Path) -> None:
    """The same roll (one instance) through nginx without `proxy_next_upstream ... http_503`."""
    bare = nginx_stack.with_proxy(nginx.PROXY, _without_retry(tmp_path), label="noretry")
    try:
        one = Load("roll-control", slots=100, seconds=5, tokens=30, tokens_per_second=10, ramp=1)
        original = bare.apps
        bare.apps = original[:1]  # roll instance 0 only
        result = rolling_restart(bare, one, first_after=1.5, drain_timeout=30)
        nginx_stack.apps[0] = bare.apps[0]  # the replacement serves the module's stack from now on
    finally:
        bare.stop()
    _sound(result)
    assert result["http_5xx"] > 0, result["why"]


RELOAD = Load("reload", slots=100, seconds=4, tokens=30, tokens_per_second=10, ramp=1)


def test_proxy_reload_keeps_streams(nginx_stack: Stack) -> None:
    result = proxy_reload(nginx_stack, RELOAD, reloads=2, every=1.5)
    _sound(result)
    assert result["reloads"] == 2
    assert result["intact"] == result["started"], result["why"]


def test_proxy_reload_control_shutdown_timeout_cuts_streams(nginx_stack: Stack) -> None:
    """`worker_shutdown_timeout 1s`: old workers close their 3 s streams 1 s after a reload."""
    cutting = _variant(nginx_stack, "wst1s", main_extra="worker_shutdown_timeout 1s;")
    try:
        result = proxy_reload(cutting, RELOAD, reloads=2, every=1.5)
    finally:
        cutting.stop()
    assert result["lost"] > 0, result["why"]


def test_faults_end_exactly_the_faulted_streams(tmp_path: Path) -> None:
    """Every 5th upstream request drops after 12 tokens or answers 429; the rest stay intact."""
    require_binary("nginx")
    knobs = fault_knobs(5, 12)
    load = Load("faults", slots=100, seconds=3, tokens=30, tokens_per_second=10, ramp=1, relay=True, knobs=knobs)
    with stack("nginx", tmp_path, relay=True, workers=1) as running:
        result = faults(running, load)
    _sound(result)
    assert result["faulted"]["drop_at"] > 0 and result["faulted"]["status"] > 0
    assert result["unexpected"] == {}


def test_soak_leaves_nothing_behind(nginx_stack: Stack) -> None:
    """A short steady load: afterwards the app holds no stream and no more descriptors than before
    (the 10-minute soak with its flat RSS and fd curves is `make load`)."""
    before = {who: usage(pids)["fds"] for who, pids in _pids(nginx_stack).items()}
    result = soak(nginx_stack, Load("soak", slots=150, seconds=4, tokens=20, tokens_per_second=10, ramp=1), warmup=2)
    _sound(result)
    assert result["app_idle_after"]
    after = {who: usage(pids)["fds"] for who, pids in _pids(nginx_stack).items()}
    # nginx may keep up to 16 idle connections to the apps (`keepalive 16`), opened during the load.
    assert after["app"] <= before["app"] + 16 + 4, (before, after)
    assert after["proxy"] <= before["proxy"] + 16 + 4, (before, after)


def _pids(running: Stack) -> dict[str, list[int]]:
    assert running.proxy_proc is not None
    return {"app": running.app_pids(), "proxy": [running.proxy_proc.pid]}
