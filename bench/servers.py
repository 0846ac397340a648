"""The processes a benchmark measures: start, pin to a core, read their CPU and memory, stop by PID.

The server under test runs on SERVER_CORE, the load client (the bench process itself) and the
fake upstream on CLIENT_CORE. A server's CPU is read from /proc (psutil) for the processes that do
the work: the one gunicorn worker, the uvicorn process, every process of a proxy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from streamkit.demo import write_certificates
from streamkit.local import Process, free_port, start_app, wait_serving
from streamkit.proxies import PROXIES
from streamkit.proxies.substitute import Value

SERVER_CORE = 0
CLIENT_CORE = 1
READY_TIMEOUT = 60.0  # seconds for a server to answer; generous: 2 shared cores, other test runs
FAKE_MODEL = "fake-upstream"
FAKE_KEY = "bench-upstream-key"


# Read once at import, before the bench pins itself to the client core.
_CORES = os.sched_getaffinity(0)


def two_cores() -> bool:
    return {SERVER_CORE, CLIENT_CORE} <= _CORES


def pin(pid: int, core: int) -> None:
    """Pin a process and all its children (workers, threads are per process) to one core."""
    if not two_cores():
        return
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            for thread in proc.threads():
                os.sched_setaffinity(thread.id, {core})
        except (psutil.NoSuchProcess, PermissionError):
            pass


@dataclass
class Server:
    name: str
    host: str
    port: int
    processes: list[Process]
    measured: list[int] = field(default_factory=list)  # PIDs whose CPU and memory count

    def cpu(self) -> float:
        """CPU seconds of the measured processes so far (all their threads)."""
        return sum(cpu_seconds(pid) for pid in self.measured)

    def rss(self) -> int:
        return sum(psutil.Process(pid).memory_info().rss for pid in self.measured)

    def fds(self) -> int:
        return sum(psutil.Process(pid).num_fds() for pid in self.measured)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.logs(40)}" for p in self.processes)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's live threads, in ns precision from /proc/PID/task/*/schedstat (the
    clock-tick counts of /proc/PID/stat are 10 ms coarse: too coarse for one stream's cost)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return total / 1e9


def _tree(pid: int) -> list[int]:
    root = psutil.Process(pid)
    return [root.pid, *(child.pid for child in root.children(recursive=True))]


def wait_http(process: Process, url: str) -> None:
    wait_serving(process, url, READY_TIMEOUT, 0.1)


def fake_upstream(workdir: Path, record_dir: Path | None = None) -> Server:
    """`streamkit fake-upstream`, on the client's core (it is the load, not the server under test)."""
    port = free_port()
    argv = [sys.executable, "-m", "streamkit.cli", "fake-upstream", "--port", str(port), "--model", FAKE_MODEL]
    argv += ["--api-key", FAKE_KEY, "--record-dir", str(record_dir or "")]
    process = Process("fake-upstream", argv, workdir / f"fake-upstream-{port}.log").start()
    wait_http(process, f"http://127.0.0.1:{port}/v1/models")
    pin(process.pid, CLIENT_CORE)
    return Server("fake-upstream", "127.0.0.1", port, [process], [process.pid])


def relay_env(upstream: Server) -> dict[str, str]:
    return {
        "UPSTREAM_BASE_URL": f"http://{upstream.host}:{upstream.port}/v1",
        "UPSTREAM_MODEL": FAKE_MODEL,
        "UPSTREAM_API_KEY": FAKE_KEY,
        "ALLOW_ANONYMOUS": "true",  # issue #20: a local benchmark, no client keys
    }


def kit(workdir: Path, env: Mapping[str, str] | None = None) -> Server:
    """The reference app under gunicorn with one uvicorn worker; the worker is what is measured."""
    process, url = start_app(workdir, env={"WORKERS": "1", **(env or {})}, workers=1, timeout=READY_TIMEOUT)
    pin(process.pid, SERVER_CORE)
    workers = [child.pid for child in psutil.Process(process.pid).children()]
    port = int(url.rsplit(":", 1)[1])
    return Server("kit", "127.0.0.1", port, [process], workers)


def peer(workdir: Path, module: str, env: Mapping[str, str] | None = None, name: str = "") -> Server:
    """A peer app from bench/peers/, served by uvicorn in one process."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", f"bench.peers.{module}:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log", "--lifespan", "off"]
    process = Process(name or module, argv, workdir / f"{name or module}-{port}.log", env=dict(env or {})).start()
    wait_http(process, f"http://127.0.0.1:{port}/stream?tokens=1")
    pin(process.pid, SERVER_CORE)
    return Server(name or module, "127.0.0.1", port, [process], [process.pid])


def proxy(workdir: Path, name: str, upstream: Server, tls_dir: Path) -> Server:
    """A proxy's real binary with its shipped infra/ config, in front of `upstream`."""
    definition = PROXIES[name]
    values: dict[str, Value] = {"listen": f"127.0.0.1:{free_port()}", "upstream": f"{upstream.host}:{upstream.port}"}
    if "idle_timeout" in definition.capabilities:
        values["read_timeout"] = "300s"
    if "tls_http2" in definition.capabilities:
        values.update(
            tls_listen=f"127.0.0.1:{free_port()}", cert=str(tls_dir / "cert.pem"), key=str(tls_dir / "key.pem")
        )
    process = definition.start(workdir / name, values, None, label="bench")
    pin(process.pid, CLIENT_CORE)
    host, port = str(values["listen"]).split(":")
    return Server(name, host, int(port), [process], _tree(process.pid))


def write_tls(directory: Path) -> Path:
    """A throw-away certificate for the proxies' TLS listeners (the demo's helper)."""
    if write_certificates(directory) is None:
        raise RuntimeError("openssl is not installed: the TLS benchmarks need it")
    return directory
