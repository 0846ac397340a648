"""One app under gunicorn per module, with shortened timings and the fake's records on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.fakellm import FakeRecord, load_record
from streamkit.local import Process, wait_until
from tests.conftest import Processes

# Settings the app tests run with (the documented substitution: environment variables).
PING_INTERVAL = 1.0
SEND_TIMEOUT = 1.0


@dataclass
class RunningApp:
    proc: Process
    url: str
    records: Path

    def record(self, request_id: str, timeout: float = 5.0) -> FakeRecord:
        """The fake upstream's own record of a stream, once it has been closed."""
        found = wait_until(lambda: load_record(self.records, request_id), timeout, what=f"record {request_id}")
        assert isinstance(found, FakeRecord)
        return found


def start(processes: Processes, tmp: Path, workers: int = 1, **env: str) -> RunningApp:
    records = tmp / "records"
    records.mkdir(exist_ok=True)
    proc, url = processes.app(
        env={
            "PING_INTERVAL": str(PING_INTERVAL),
            "SEND_TIMEOUT": str(SEND_TIMEOUT),
            "EMIT_TIMESTAMPS": "true",
            "FAKE_RECORD_DIR": str(records),
            # Dead-peer socket options off: with them, the kernel drops a client whose receive
            # window stays shut for TCP_USER_TIMEOUT, before SEND_TIMEOUT (which these tests
            # measure) can start. Both behaviours: docs/timeouts.md "Dead peers", tests/netns/.
            "DEAD_PEER_TIMEOUT": "0",
            **env,
        },
        workers=workers,
    )
    return RunningApp(proc, url, records)


@pytest.fixture(scope="module")
def running_app(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> RunningApp:
    return start(module_processes, tmp_path_factory.mktemp("app"))
