"""Every supervisor signal ends every open stream with exactly one terminal event within a
documented bound, and the whole process tree exits (issue 16, acceptance 4; bounds in
docs/timeouts.md, "Signals").

Real gunicorn with uvicorn workers (`streamkit serve`), streams open in three windows at the
moment of the signal: waiting for the first token, between tokens, and send blocked (a client that
stopped reading, so the app's send waits on full socket buffers; it reads again RESUME_AFTER after
the signal and must then get the rest, exactly one terminal event and EOF). Controls: the drain
window is long (DRAIN_SECONDS) in the quick-shutdown cases, so ending within a second proves the
signal skipped it; SIGTERM alone, with the same window, is shown to wait for it; and a client that
never reads again gets no terminal event (none can reach it) and is dropped by its send timeout,
after which the tree exits at once instead of waiting for the arbiter's SIGKILL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from app.settings import Settings
from streamkit.local import wait_until
from streamkit.probe.observe import Observation, observe
from streamkit.stalled_client import StalledClient
from tests.app.conftest import RunningApp, start
from tests.app.test_drain import _open_streams
from tests.conftest import Processes, require_binary

WINDOWS = {
    "first_token": "first_token_delay=600",
    "between_tokens": "tokens=10000&tokens_per_second=5&first_token_delay=0",
}
PER_WINDOW = 3
# The send-blocked window: a flood of big tokens (a few KiB each) at this rate fills the socket
# buffers in about a second and keeps a resumed reader busy without flooding the machine.
FLOOD_TOKENS_PER_SECOND = 1000
BLOCKED_PER_CASE = 1
# The stalled client reads again this long after the signal (well inside its send allowance).
RESUME_AFTER = 0.5
# The apps' send timeout: longer than the stall before RESUME_AFTER (the tests of SEND_TIMEOUT
# itself are in tests/app/test_cancellation.py).
SEND_TIMEOUT = 3.0
SHORT_DRAIN = 2.0  # SIGTERM cases: streams get this window, then `server_shutdown`
LONG_DRAIN = 20.0  # quick-shutdown cases: a window they must NOT wait for
# A quick shutdown (second SIGTERM, SIGINT, SIGQUIT): every stream's terminal event, and the
# process tree gone, within this many seconds of the signal.
QUICK_BOUND = 1.5
QUICK_EXIT = 3.0
# SIGTERM: terminal events by the end of the drain window (+ 1 s), the tree gone within + 2 s.
DRAIN_SLACK = 1.0
EXIT_SLACK = 2.0
# An orphaned worker stops listening within this (acceptance 4: checked with `ss`).
ORPHAN_UNLISTEN = 2.0


class Streams:
    """PER_WINDOW streams per window, each observed in its own thread until it ends."""

    def __init__(self, url: str, blocked: int = BLOCKED_PER_CASE) -> None:
        self.results: dict[str, Observation] = {}
        self.threads = []
        for window, query in WINDOWS.items():
            for i in range(PER_WINDOW):
                name = f"{window}-{i}"
                thread = threading.Thread(
                    target=self._observe, args=(name, f"{url}/v1/chat/stream?prompt={name}&{query}")
                )
                thread.start()
                self.threads.append(thread)
        self.blocked = [
            Blocked(StalledClient.flood(url, f"send_blocked-{i}", FLOOD_TOKENS_PER_SECOND)) for i in range(blocked)
        ]
        wait_until(lambda: _open_streams(url) == len(self.threads) + blocked, 15, 0.1, "every stream open")
        for stalled in self.blocked:
            stalled.client.wait_until_blocked(timeout=15)

    def resume(self, signalled_at: float) -> None:
        """The stalled clients read again RESUME_AFTER after the signal (each in its own thread)."""
        for stalled in self.blocked:
            stalled.resume_at(signalled_at + RESUME_AFTER)

    def _observe(self, name: str, url: str) -> None:
        self.results[name] = observe(url, timeout=60)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in [*self.threads, *(stalled.thread for stalled in self.blocked if stalled.thread)]:
            thread.join(max(0.0, deadline - time.monotonic()))

    def assert_one_terminal_each(self, signalled_at: float, bound: float, error_type: str = "server_shutdown") -> None:
        assert len(self.results) == len(self.threads), sorted(self.results)
        for name, obs in self.results.items():
            terminal = [e for e in obs.events if e.event in ("done", "error")]
            assert len(terminal) == 1, (name, obs.error, [e.event for e in obs.events[-3:]])
            assert terminal[0].event == "error" and terminal[0].json()["error"]["type"] == error_type, name
            after = terminal[0].arrival_unix - signalled_at
            assert after <= bound, f"{name}: terminal event {after:.2f} s after the signal (bound {bound} s)"
        for stalled in self.blocked:
            stalled.assert_one_terminal(signalled_at, bound, error_type)


TERMINAL_LINES = (b'data: {"error"', b"data: [DONE]")  # a chat completion's terminal events


class Blocked:
    """A stream in the send-blocked window: its client stopped reading (the app's send is blocked
    on full socket buffers); `resume_at` reads everything from then on to EOF, noting when each
    terminal event (`data: {"error"...}` or `data: [DONE]`: a chat completion) arrived."""

    def __init__(self, client: StalledClient) -> None:
        self.client = client
        self.thread: threading.Thread | None = None
        self.terminals: list[tuple[float, bytes]] = []
        self.eof_unix: float | None = None
        self.failure: str | None = None

    def resume_at(self, at: float) -> None:
        self.thread = threading.Thread(target=self._read, args=(at,))
        self.thread.start()

    def _read(self, at: float) -> None:
        time.sleep(max(0.0, at - time.time()))
        self.client.sock.settimeout(30)
        pending = b""
        try:
            while chunk := self.client.sock.recv(1 << 20):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                arrived = time.time()
                self.terminals += [(arrived, line) for line in lines if line.startswith(TERMINAL_LINES)]
            self.eof_unix = time.time()
        except OSError as exc:
            self.failure = repr(exc)
        finally:
            self.client.close()

    def assert_one_terminal(self, signalled_at: float, bound: float, error_type: str) -> None:
        name = self.client.request_id
        assert self.failure is None and self.eof_unix is not None, (name, self.failure, "no EOF")
        assert len(self.terminals) == 1, (name, [line[:80] for _, line in self.terminals])
        arrived, line = self.terminals[0]
        assert json.loads(line.removeprefix(b"data: "))["error"]["type"] == error_type, (name, line[:200])
        after = arrived - signalled_at
        print(f"{name}: reading again at {RESUME_AFTER} s, terminal event at {after:.2f} s (bound {bound} s)")
        assert after <= bound, f"{name}: terminal event {after:.2f} s after the signal (bound {bound} s)"


def _tree(app: RunningApp) -> list[int]:
    return [app.proc.pid, *(child.pid for child in psutil.Process(app.proc.pid).children(recursive=True))]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _assert_tree_gone(app: RunningApp, pids: list[int], signalled_at: float, bound: float) -> None:
    wait_until(lambda: not app.proc.alive() and all(_gone(pid) for pid in pids), bound + 5, 0.05, "process tree exit")
    took = time.time() - signalled_at
    print(f"process tree gone {took:.2f} s after the signal (bound {bound} s)")
    assert took <= bound, f"process tree exited {took:.2f} s after the signal (bound {bound} s)"


def _listening(port: int) -> str:
    return subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=5
    ).stdout.strip()


# Every case's app, started all at once (gunicorn's boot is most of each case's time): case ->
# (DRAIN_SECONDS, workers).
CASES = {
    "sigterm": (SHORT_DRAIN, 1),
    "second_sigterm": (LONG_DRAIN, 1),
    "sigint": (LONG_DRAIN, 1),
    "sigquit": (LONG_DRAIN, 1),
    "worker_sigterm": (SHORT_DRAIN, 1),
    "orphan": (SHORT_DRAIN, 2),
    # A client that never reads again (the control of the send-blocked window), per kind of shutdown.
    "never_reads_sigterm": (SHORT_DRAIN, 1),
    "never_reads_sigint": (LONG_DRAIN, 1),
}


@pytest.fixture(scope="module")
def apps(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunningApp]:
    def one(case: str) -> RunningApp:
        drain, workers = CASES[case]
        return start(
            module_processes,
            tmp_path_factory.mktemp(case),
            workers=workers,
            DRAIN_SECONDS=str(drain),
            SEND_TIMEOUT=str(SEND_TIMEOUT),
        )

    with ThreadPoolExecutor(len(CASES)) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


def test_sigterm_drains_then_ends_streams(apps: dict[str, RunningApp]) -> None:
    app = apps["sigterm"]
    streams = Streams(app.url)
    pids = _tree(app)
    at = time.time()
    app.proc.signal(signal.SIGTERM)
    streams.resume(at)
    streams.join(SHORT_DRAIN + 10)
    streams.assert_one_terminal_each(at, SHORT_DRAIN + DRAIN_SLACK)
    # The control for the quick cases: SIGTERM alone waits for the window.
    first = min(e.arrival_unix for obs in streams.results.values() for e in obs.events if e.event == "error")
    assert first - at >= SHORT_DRAIN - 0.2
    _assert_tree_gone(app, pids, at, SHORT_DRAIN + EXIT_SLACK)
    assert Settings(drain_seconds=SHORT_DRAIN).graceful_timeout > SHORT_DRAIN + EXIT_SLACK  # not SIGKILLed


@pytest.mark.parametrize("how", ["second_sigterm", "sigint", "sigquit"])
def test_quick_shutdown_ends_every_stream_now(apps: dict[str, RunningApp], how: str) -> None:
    app = apps[how]
    streams = Streams(app.url)
    pids = _tree(app)
    at = time.time()
    if how == "second_sigterm":
        app.proc.signal(signal.SIGTERM)
        time.sleep(0.3)  # the arbiter has passed SIGTERM on; the workers are draining
        app.proc.signal(signal.SIGTERM)
    else:
        app.proc.signal(signal.SIGINT if how == "sigint" else signal.SIGQUIT)
    streams.resume(at)
    streams.join(QUICK_EXIT + 5)
    streams.assert_one_terminal_each(at, QUICK_BOUND)
    _assert_tree_gone(app, pids, at, QUICK_EXIT)
    assert app.proc.popen is not None and app.proc.popen.returncode == 0


def test_sigterm_to_one_worker_drains_it_and_the_arbiter_replaces_it(apps: dict[str, RunningApp]) -> None:
    app = apps["worker_sigterm"]
    streams = Streams(app.url)
    (worker,) = psutil.Process(app.proc.pid).children()
    at = time.time()
    worker.send_signal(signal.SIGTERM)
    streams.resume(at)
    streams.join(SHORT_DRAIN + 10)
    streams.assert_one_terminal_each(at, SHORT_DRAIN + DRAIN_SLACK)
    wait_until(lambda: _gone(worker.pid), EXIT_SLACK, 0.05, "the signalled worker to exit")
    # The arbiter lives on with a new worker that serves.
    assert app.proc.alive()
    wait_until(lambda: [c.pid for c in psutil.Process(app.proc.pid).children()] not in ([], [worker.pid]), 10)
    done = observe(f"{app.url}/v1/chat/stream?prompt=after&tokens=2&first_token_delay=0", timeout=10)
    assert [e.event for e in done.events if e.event in ("done", "error")] == ["done"]


def test_orphaned_workers_stop_listening_and_drain(apps: dict[str, RunningApp]) -> None:
    """The arbiter SIGKILLed (a supervisor that signals only the main PID): its workers stop
    listening within ORPHAN_UNLISTEN (`ss`), end their streams after the drain window and exit."""
    require_binary("ss")
    app = apps["orphan"]
    port = int(app.url.rsplit(":", 1)[1])
    streams = Streams(app.url)
    workers = [child.pid for child in psutil.Process(app.proc.pid).children()]
    assert len(workers) == 2 and _listening(port)
    at = time.time()
    app.proc.signal(signal.SIGKILL)
    streams.resume(at)
    wait_until(lambda: not _listening(port), ORPHAN_UNLISTEN + 3, 0.05, f"nothing listening on {port}")
    took = time.time() - at
    assert took <= ORPHAN_UNLISTEN, f"port {port} still listened on {took:.2f} s after the arbiter died"
    streams.join(SHORT_DRAIN + 10)
    streams.assert_one_terminal_each(at, SHORT_DRAIN + ORPHAN_UNLISTEN)
    wait_until(lambda: all(_gone(pid) for pid in workers), SHORT_DRAIN + EXIT_SLACK + 5, 0.05, "orphans to exit")
    assert time.time() - at <= SHORT_DRAIN + ORPHAN_UNLISTEN + EXIT_SLACK


@pytest.mark.parametrize("how", ["sigterm", "sigint"])
def test_client_that_never_reads_again_is_dropped_and_the_tree_exits(apps: dict[str, RunningApp], how: str) -> None:
    """The send-blocked window's control: the same stalled client, never reading again. No terminal
    event can reach it; its send timeout drops it (SEND_TIMEOUT after its send blocked, which was
    before the signal), and the worker exits right after: the tree is gone within SEND_TIMEOUT +
    EXIT_SLACK of the signal, not at graceful_timeout (the arbiter's SIGKILL, where it was before:
    uvicorn waited for the unsent bytes to leave a socket nobody reads)."""
    app = apps[f"never_reads_{how}"]
    streams = Streams(app.url)
    pids = _tree(app)
    at = time.time()
    app.proc.signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    streams.join(SHORT_DRAIN + 10)  # only the reading streams: the stalled one is never resumed
    bound = SEND_TIMEOUT + EXIT_SLACK
    drain, _ = CASES[f"never_reads_{how}"]
    assert bound < Settings(drain_seconds=drain).graceful_timeout  # so the arbiter's SIGKILL would fail it
    _assert_tree_gone(app, pids, at, bound)
    # Dropped, not ended: the app logged the send timeout, and nothing but the backlog reached the client.
    assert "send timeout: client stopped reading" in app.proc.logs()
    for stalled in streams.blocked:
        stalled.resume_at(time.time())
    streams.join(10)
    for stalled in streams.blocked:
        assert stalled.terminals == [], stalled.terminals[:1]
