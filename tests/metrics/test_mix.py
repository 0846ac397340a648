"""Metrics under gunicorn with two workers equal exactly the traffic that was driven (issue #4,
acceptance 1, 2 and 4).

A known mix goes through real sockets: streams that complete, clients that hang up while waiting
for the first token, upstream failures (the fake's `fail_at`) and clients that stop reading (a raw
socket with a tiny receive buffer, caught by the shortened SEND_TIMEOUT). One scrape of /metrics
must then show exactly that mix, summed over both workers. Negative controls: the same checks
against the app under plain gunicorn without the multiprocess directory (a scrape sees one worker
only), and against a gunicorn config without `child_exit` (a killed worker's streams stay counted).
Also here: TTFT of a stream with a 1 s first-token delay, pings counted against pings received, and
the cross-check of every metric name in the rules and the dashboard against the live exposition.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamkit.local import Process, free_port, register_metrics, wait_serving, wait_until
from streamkit.probe.observe import Observation, observe
from streamkit.stalled_client import StalledClient
from tests.app.conftest import RunningApp, start
from tests.conftest import Processes
from tests.metrics.conftest import (
    DASHBOARD,
    RULE_FILES,
    WORKERS,
    Expected,
    Exposition,
    expect,
    hold_on_every_worker,
    mismatches,
    scrape,
    wait_for,
    workers_of,
)
from tests.metrics.promql import recorded_names, referenced_names, unknown_names

REPO = Path(__file__).resolve().parents[2]
ROUTE = "chat_stream"
COMPLETED = 6
TOKENS = 5
UPSTREAM_ERRORS = 3
FAIL_AT = 2  # the fake fails before token 2: two tokens, then an in-band error
SEND_TIMEOUTS = 2
# Client hang-ups: held streams are opened until each worker holds this many (at most the limit).
HANG_UPS_PER_WORKER = 2
HANG_UPS_LIMIT = 16
# Metrics are recorded right after the client has seen its stream end; allow this long to settle.
SETTLE = 10.0
# A stalled reader's stream fills the server's send buffer (autotuned up to 4 MiB) with fast
# tokens before its send blocks and SEND_TIMEOUT starts; on 2 busy cores that can take long.
FILL_AND_SEND_TIMEOUT = 90.0

WAITING = f"/v1/chat/stream?prompt=hold&tokens={TOKENS}&first_token_delay=60"
FLOOD_ROUTE = "chat_completions"  # StalledClient.flood posts a chat completion


def _stream(url: str, query: str) -> Observation:
    return observe(f"{url}/v1/chat/stream?{query}&tokens_per_second=0&first_token_delay=0")


@dataclass
class Mix:
    app: RunningApp
    hang_ups: int
    hang_ups_per_worker: dict[int, int]
    held: Exposition  # scraped while the hang-up streams were held open
    after: Exposition  # the scrape after everything (absolute values)
    delta: Exposition  # increase over the whole mix


def expected_mix(hang_ups: int) -> Expected:
    ended = COMPLETED + hang_ups + UPSTREAM_ERRORS
    return {
        # /v1/chat/stream: completed streams, hang-ups while waiting for the first token, failures.
        **expect("streamkit_stream_duration_seconds_count", ended, route=ROUTE),
        **expect("streamkit_stream_duration_seconds_bucket", ended, route=ROUTE, le="+Inf"),
        **expect("streamkit_stream_duration_seconds_count", COMPLETED, route=ROUTE, outcome="completed"),
        **expect("streamkit_stream_duration_seconds_count", hang_ups, route=ROUTE, outcome="client_disconnect"),
        **expect("streamkit_stream_duration_seconds_count", UPSTREAM_ERRORS, route=ROUTE, outcome="upstream_error"),
        **expect("streamkit_streams_cancelled_total", hang_ups + UPSTREAM_ERRORS, route=ROUTE),
        **expect("streamkit_streams_cancelled_total", hang_ups, route=ROUTE, reason="client_disconnect"),
        **expect("streamkit_streams_cancelled_total", UPSTREAM_ERRORS, route=ROUTE, reason="upstream_error"),
        **expect("streamkit_upstream_errors_total", UPSTREAM_ERRORS, route=ROUTE, type="upstream_error"),
        **expect("streamkit_upstream_close_after_disconnect_seconds_count", hang_ups, route=ROUTE),
        **expect("streamkit_time_to_first_byte_seconds_count", ended, route=ROUTE),
        **expect("streamkit_time_to_first_token_seconds_count", COMPLETED + UPSTREAM_ERRORS, route=ROUTE),
        **expect(
            "streamkit_inter_token_gap_seconds_count",
            COMPLETED * (TOKENS - 1) + UPSTREAM_ERRORS * (FAIL_AT - 1),
            route=ROUTE,
        ),
        **expect("streamkit_tokens_streamed_total", COMPLETED * TOKENS + UPSTREAM_ERRORS * FAIL_AT, route=ROUTE),
        **expect("streamkit_active_streams", 0, route=ROUTE),
        # /v1/chat/completions: clients that stopped reading, ended by the send timeout.
        **expect("streamkit_stream_duration_seconds_count", SEND_TIMEOUTS, route=FLOOD_ROUTE),
        **expect("streamkit_stream_duration_seconds_count", SEND_TIMEOUTS, route=FLOOD_ROUTE, outcome="send_timeout"),
        **expect("streamkit_streams_cancelled_total", SEND_TIMEOUTS, route=FLOOD_ROUTE),
        **expect("streamkit_streams_cancelled_total", SEND_TIMEOUTS, route=FLOOD_ROUTE, reason="send_timeout"),
        **expect("streamkit_time_to_first_byte_seconds_count", SEND_TIMEOUTS, route=FLOOD_ROUTE),
        **expect("streamkit_time_to_first_token_seconds_count", SEND_TIMEOUTS, route=FLOOD_ROUTE),
        **expect("streamkit_upstream_close_after_disconnect_seconds_count", 0, route=FLOOD_ROUTE),
        **expect("streamkit_upstream_errors_total", 0, route=FLOOD_ROUTE),
        **expect("streamkit_active_streams", 0, route=FLOOD_ROUTE),
    }


@pytest.fixture(scope="module")
def mix(metrics_app: RunningApp) -> Mix:
    url = metrics_app.url
    before = scrape(url)
    # Clients that stop reading, first: filling the kernel's send buffer takes seconds, so they
    # fill while the rest of the mix runs (on another route, so the counts stay apart).
    stalled = [StalledClient.flood(url, f"stall-{i}-{uuid.uuid4().hex[:8]}") for i in range(SEND_TIMEOUTS)]
    try:
        # Clients that hang up while waiting for the first token, spread over both workers.
        held, per_worker = hold_on_every_worker(metrics_app, WAITING, HANG_UPS_PER_WORKER, HANG_UPS_LIMIT)
        hang_ups = len(held)
        try:
            wait_for(expect("streamkit_time_to_first_byte_seconds_count", hang_ups, route=ROUTE), url, before, SETTLE)
            held_scrape = scrape(url)
            with ThreadPoolExecutor(max_workers=COMPLETED + UPSTREAM_ERRORS) as pool:
                done = list(pool.map(lambda _: _stream(url, f"prompt=ok&tokens={TOKENS}"), range(COMPLETED)))
                failed = list(
                    pool.map(
                        lambda _: _stream(url, f"prompt=f&tokens={TOKENS}&fail_at={FAIL_AT}"), range(UPSTREAM_ERRORS)
                    )
                )
        finally:
            for stream in held:
                stream.close()
        assert all(obs.events[-1].event == "done" for obs in done), [o.events[-1] for o in done]
        assert all(obs.events[-1].event == "error" for obs in failed), [o.events[-1] for o in failed]
        delta = wait_for(expected_mix(hang_ups), url, before, FILL_AND_SEND_TIMEOUT)
    finally:
        for client in stalled:
            client.close()
    return Mix(metrics_app, hang_ups, per_worker, held_scrape, before + delta, delta)


def test_both_workers_served_the_mix(mix: Mix) -> None:
    assert len(mix.hang_ups_per_worker) == 2 and all(mix.hang_ups_per_worker.values()), mix.hang_ups_per_worker
    # Each worker's own metric files exist (multiprocess mode writes one set per PID).
    directory = Path(mix.app.proc.env["PROMETHEUS_MULTIPROC_DIR"])
    for pid in mix.hang_ups_per_worker:
        assert (directory / f"histogram_{pid}.db").exists(), sorted(p.name for p in directory.iterdir())
    assert {w.pid for w in workers_of(mix.app)} == set(mix.hang_ups_per_worker)


def test_active_streams_sum_every_live_worker(mix: Mix) -> None:
    problems = mismatches(expect("streamkit_active_streams", mix.hang_ups, route=ROUTE), mix.held)
    assert not problems, problems
    assert mix.after.value("streamkit_active_streams", route=ROUTE) == 0


def test_counters_and_histogram_counts_equal_the_mix(mix: Mix) -> None:
    problems = mismatches(expected_mix(mix.hang_ups), mix.delta)
    assert not problems, "\n".join(problems)
    # The stalled readers' tokens are unknown (whatever fit into the socket buffers), but some.
    assert mix.delta.value("streamkit_tokens_streamed_total", route=FLOOD_ROUTE) > 0


def _plain_gunicorn(
    processes: Processes, name: str, config: str, env: dict[str, str], unset: tuple[str, ...] = ()
) -> RunningApp:
    """The app under gunicorn started directly (not through `streamkit serve`), two workers."""
    port, metrics_port = free_port(), free_port()
    proc = processes.add(
        Process(
            name=name,
            argv=[sys.executable, "-m", "gunicorn", "--config", f"python:{config}", "app.main:create_app()"],
            log_path=processes.directory / f"{name}.log",
            env={"HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": str(metrics_port), "WORKERS": "2", **env},
            cwd=REPO,
            unset=unset,
        ).start()
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(proc, url + "/healthz", 20)
    wait_serving(proc, register_metrics(url, metrics_port), 20)
    return RunningApp(proc, url, processes.directory)


def test_negative_control_without_multiprocess_a_scrape_sees_one_worker(processes: Processes) -> None:
    """The same checks against the app under plain gunicorn, without PROMETHEUS_MULTIPROC_DIR:
    each worker keeps its own registry and a scrape reaches only one of them, so they must fail."""
    # Unset, not empty: prometheus_client takes an empty value as multiprocess mode writing into the cwd.
    app = _plain_gunicorn(
        processes, "app-without-multiprocess", "app.gunicorn_conf", {}, unset=("PROMETHEUS_MULTIPROC_DIR",)
    )
    held, per_worker = hold_on_every_worker(app, WAITING, 1, HANG_UPS_LIMIT)
    try:
        assert min(per_worker.values()) >= 1, per_worker
        assert mismatches(expect("streamkit_active_streams", len(held), route=ROUTE), scrape(app.url))
    finally:
        for stream in held:
            stream.close()
    hung_up = expect("streamkit_streams_cancelled_total", len(held), route=ROUTE, reason="client_disconnect")
    with pytest.raises(AssertionError):
        wait_for(hung_up, app.url, Exposition({}), timeout=2.0)


def _active_after_killing_a_worker(app: RunningApp) -> tuple[list[str], list[str]]:
    """Hold streams on both workers, SIGKILL one worker, wait until gunicorn has replaced it (its
    `child_exit` ran before that), then compare active streams with the survivors' streams.
    Returns the mismatches before and after the kill."""
    held, per_worker = hold_on_every_worker(app, WAITING, 1, HANG_UPS_LIMIT)
    try:
        assert min(per_worker.values()) >= 1, per_worker
        before = mismatches(expect("streamkit_active_streams", len(held), route=ROUTE), scrape(app.url))
        victim = next(iter(per_worker))
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(pids := {w.pid for w in workers_of(app)}) == WORKERS and victim not in pids,
            SETTLE,
            0.05,
            "gunicorn to replace the killed worker",
        )
        survivors = len(held) - per_worker[victim]
        after = mismatches(expect("streamkit_active_streams", survivors, route=ROUTE), scrape(app.url))
    finally:
        for stream in held:
            stream.close()
    return before, after


def test_a_dead_worker_leaves_active_streams(processes: Processes, tmp_path: Path) -> None:
    app = start(processes, tmp_path, workers=WORKERS)
    assert _active_after_killing_a_worker(app) == ([], [])


def test_negative_control_without_child_exit_a_dead_worker_stays_counted(processes: Processes, tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc")}
    config = "tests.metrics.negative.gunicorn_conf_without_child_exit"
    app = _plain_gunicorn(processes, "app-without-child-exit", config, env)
    before, after = _active_after_killing_a_worker(app)
    assert before == [] and after, (before, after)


# --- time to first token, heartbeats -------------------------------------------------------------

# The fake waits this long before its first token.
FIRST_TOKEN_DELAY = 1.0
# TTFT of such a stream is at least FIRST_TOKEN_DELAY, while its time to first byte (headers and the
# start event go out at once) is far below it: a lower bound tells the two apart without a latency
# bound (the (1.0, 1.5] bucket below says where it landed).


def _within_ttft_bounds(seconds: float) -> bool:
    return seconds >= FIRST_TOKEN_DELAY


def test_time_to_first_token_sum_matches_the_first_token_delay(metrics_app: RunningApp) -> None:
    url = metrics_app.url
    for _ in range(2):
        before = scrape(url)
        obs = observe(f"{url}/v1/chat/stream?prompt=ttft&tokens=1&first_token_delay={FIRST_TOKEN_DELAY}")
        assert [e.event for e in obs.events] == ["start", "token", "done"]
        one = {
            **expect("streamkit_time_to_first_token_seconds_count", 1, route=ROUTE),
            **expect("streamkit_time_to_first_byte_seconds_count", 1, route=ROUTE),
            **expect("streamkit_stream_duration_seconds_count", 1, route=ROUTE, outcome="completed"),
        }
        delta = wait_for(one, url, before, SETTLE)
        ttft = delta.value("streamkit_time_to_first_token_seconds_sum", route=ROUTE)
        assert _within_ttft_bounds(ttft), ttft
        # ... and it landed in the (1.0, 1.5] bucket.
        assert delta.value("streamkit_time_to_first_token_seconds_bucket", route=ROUTE, le="1.0") == 0
        assert delta.value("streamkit_time_to_first_token_seconds_bucket", route=ROUTE, le="1.5") == 1
        # Control: the same bounds reject the same stream's time to first byte (headers and the
        # start event went out at once), so a TTFT taken at the first byte would fail above.
        ttfb = delta.value("streamkit_time_to_first_byte_seconds_sum", route=ROUTE)
        assert not _within_ttft_bounds(ttfb), ttfb


def test_pings_counted_equal_pings_received(metrics_app: RunningApp) -> None:
    url = metrics_app.url
    before = scrape(url)
    # 2.5 ping intervals of silence before the first token: two pings, the stream ends between two.
    obs = observe(f"{url}/v1/chat/stream?prompt=ping&tokens=2&tokens_per_second=0&first_token_delay=1.25")
    assert obs.events[-1].event == "done"
    assert len(obs.pings) >= 2, obs.pings
    one = {
        **expect("streamkit_pings_sent_total", len(obs.pings), route=ROUTE),
        **expect("streamkit_stream_duration_seconds_count", 1, route=ROUTE),
    }
    wait_for(one, url, before, SETTLE)


# --- every name in the rules and the dashboard is exported (acceptance 4) ------------------------

NAIVE_RULES = Path(__file__).parent / "negative" / "naive_rules.yaml"


def test_every_metric_in_rules_and_dashboard_is_exported(mix: Mix) -> None:
    referenced = referenced_names(RULE_FILES, DASHBOARD)
    recorded = recorded_names(RULE_FILES[0])
    assert not unknown_names(referenced, mix.after.names(), recorded), unknown_names(
        referenced, mix.after.names(), recorded
    )
    # The other way round: every metric family the app exports is shown on the dashboard, raw or
    # through a recorded series (level:family:operations).
    shown = {_family(name.split(":")[1] if ":" in name else name) for name in referenced_names([], DASHBOARD)}
    missing = {_family(name) for name in mix.after.names()} - shown
    assert not missing, missing


def _family(sample_name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def test_negative_control_unexported_names_are_caught(mix: Mix) -> None:
    problems = unknown_names(referenced_names([NAIVE_RULES], None), mix.after.names(), recorded_names(RULE_FILES[0]))
    assert problems == [
        "job_route:streamkit_time_to_first_token_seconds:p90_rate5m (in naive_rules.yaml)",
        "streamkit_active_streams_count (in naive_rules.yaml)",
        "streamkit_stream_cancellations_total (in naive_rules.yaml)",
        "streamkit_time_to_first_token_bucket (in naive_rules.yaml)",
    ], problems
