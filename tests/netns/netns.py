"""Test hosts: a peer in its own network namespace, joined to the host by a veth pair, that can
vanish (its link taken down) without closing a single socket: no FIN, no RST, like a phone in a
tunnel, a closed laptop lid or a NAT that forgot the flow.

Names start with `sk16` (namespaces `sk16p<pid>n<k>`, host-side veths `sk16<pid>h<k>`), so a
session sweeps the leftovers of dead sessions (a killed pytest) by name, and never touches a live
session's. Addresses: a random /30 inside 10.216.0.0/16 per link (host .1, namespace .2).
Needs root and iproute2 (`ip`, `ss`); `make deps` installs iproute2.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from streamkit.local import Process

PREFIX = "sk16"
_NAME = re.compile(rf"^{PREFIX}p(\d+)n\d+$")
NS_IF = f"{PREFIX}v"  # the veth end inside the namespace (its own namespace: no clash)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Delete namespaces (and with them their veths) left by sessions that are gone."""
    removed = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


@dataclass
class Link:
    """A namespace `name` with one veth pair to the host: host_addr <-> ns_addr."""

    name: str
    host_if: str
    host_addr: str
    ns_addr: str
    up: bool = False

    @classmethod
    def create(cls, index: int) -> Link:
        pid = os.getpid()
        subnet = random.randrange(16384)  # a /30 in 10.216.0.0/16
        base = 4 * subnet
        net = f"10.{216 + (base >> 16)}.{(base >> 8) & 255}.{base & 255}"
        prefix = net.rsplit(".", 1)[0]
        last = int(net.rsplit(".", 1)[1])
        link = cls(f"{PREFIX}p{pid}n{index}", f"{PREFIX}{pid}h{index}", f"{prefix}.{last + 1}", f"{prefix}.{last + 2}")
        try:
            ip("netns", "add", link.name)
            ip("link", "add", link.host_if, "type", "veth", "peer", "name", NS_IF, "netns", link.name)
            ip("addr", "add", f"{link.host_addr}/30", "dev", link.host_if)
            ip("link", "set", link.host_if, "up")
            ip("-n", link.name, "addr", "add", f"{link.ns_addr}/30", "dev", NS_IF)
            ip("-n", link.name, "link", "set", "lo", "up")
            ip("-n", link.name, "link", "set", NS_IF, "up")
            link.up = True
        except BaseException:
            link.delete()
            raise
        return link

    def vanish(self) -> float:
        """Take the namespace's link down (its sockets stay open); return the unix time before."""
        at = time.time()
        ip("-n", self.name, "link", "set", NS_IF, "down")
        self.up = False
        return at

    def process(self, name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None) -> Process:
        """A process inside the namespace (`ip netns exec` execs it: the PID is the program's)."""
        return Process(
            name=name,
            argv=["ip", "netns", "exec", self.name, *argv],
            log_path=log_dir / f"{name}-{self.name}.log",
            env=dict(env or {}),
            cwd=Path(__file__).resolve().parents[2],
        )

    def delete(self) -> None:
        ip("netns", "del", self.name, check=False)
        ip("link", "del", self.host_if, check=False)  # gone with the namespace, unless half-made


def server_send_queues(port: int) -> dict[tuple[str, int], int]:
    """Send-queue bytes of each TCP connection whose local port is `port` (from /proc/net/tcp),
    keyed by the remote (address, port)."""
    queues: dict[tuple[str, int], int] = {}
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, tx_rx = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) != port:
                continue
            raw, rport = remote.split(":")
            addr = ".".join(str(b) for b in reversed(bytes.fromhex(raw)))
            queues[(addr, int(rport, 16))] = int(tx_rx.split(":")[0], 16)
    return queues


def tcp_connections(remote: tuple[str, int]) -> list[int]:
    """TCP states (1 = ESTABLISHED, 4 = FIN_WAIT1, ...) of this namespace's connections to `remote`."""
    want = f"{bytes(reversed([int(b) for b in remote[0].split('.')])).hex().upper()}:{remote[1]:04X}"
    states = []
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[2] == want:
                states.append(int(fields[3], 16))
    return states


def kill_all(processes: Sequence[Process]) -> None:
    """SIGKILL processes and their children, each by PID: after a vanishing, a graceful stop would
    wait on sends to a peer that will never answer."""
    for proc in processes:
        if not proc.alive():
            proc.stop()  # its leftovers in its session (an orphaned worker), if any
            continue
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        proc.signal(signal.SIGKILL)
        proc.stop()
