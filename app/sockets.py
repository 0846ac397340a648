"""Dead peers: the kernel gives up on a peer that vanished (no FIN, no RST) within DEAD_PEER_TIMEOUT.

A phone in a tunnel, a closed laptop lid, a NAT that forgot the flow: nothing is closed, so the
app sees no disconnect. Its heartbeats and tokens keep being accepted by the kernel's send buffer
(autotuned up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB: about an hour of tokens), and Linux
retransmits for about 15 minutes (`net.ipv4.tcp_retries2` = 15) before it reports the connection
dead. Meanwhile the model keeps generating for nobody.

Two socket options bound it (Linux, `man 7 tcp`):

* `TCP_USER_TIMEOUT` (ms): how long transmitted data may stay unacknowledged (zero-window probes
  included) before the kernel aborts the connection with ETIMEDOUT. A stream always has data in
  flight within one PING_INTERVAL (tokens, or the heartbeat comment). The kernel checks the user
  timeout when its retransmission timer fires, and that timer backs off exponentially (200 ms,
  400 ms, 800 ms, ...), so the abort comes up to about 2 × TCP_USER_TIMEOUT after the first
  unacknowledged byte (measured: 1.5 s set, 3.3 s seen). The kit sets it to
  (DEAD_PEER_TIMEOUT − PING_INTERVAL) / 2, so the whole bound is DEAD_PEER_TIMEOUT.
  Side effect: a live client whose receive window stays shut (it stopped reading) is dropped
  after about TCP_USER_TIMEOUT too (Linux counts unanswered zero-window probing against it): in
  effect a send timeout shorter than SEND_TIMEOUT.
* TCP keepalive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT`): probes a
  connection that has NO data in flight (an idle keep-alive connection between two requests; an
  upstream waiting for its first token). With TCP_USER_TIMEOUT set, the kernel aborts a connection
  whose keepalive probes go unanswered once TCP_USER_TIMEOUT has passed since the last ACK.

Accepted connections: the options are set on the LISTENING socket (gunicorn's arbiter creates it;
`app.gunicorn_conf.when_ready`), and Linux copies them to every accepted socket (the child socket
is a clone of the listener: `inet_csk_clone_lock`); `tests/netns/test_dead_client.py` checks both
the inheritance and the end-to-end bound. Upstream connections: `dead_peer_options()` on every
socket the upstream HTTP client opens (its socket factory, app/upstreams/transport.py).

When the kernel aborts the connection, uvicorn sees the error on its socket, the app receives
`http.disconnect`, and the streaming core closes the upstream (app/streaming.py).

Docs: https://man7.org/linux/man-pages/man7/tcp.7.html (TCP_USER_TIMEOUT, TCP_KEEPIDLE, ...);
RFC 5482 (TCP User Timeout Option).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable

from app.settings import Settings

# (level, option, value), as `socket.setsockopt` takes them.
SocketOption = tuple[int, int, int]


def dead_peer_options(settings: Settings) -> list[SocketOption]:
    """The socket options that bound a dead peer to settings.dead_peer_budget (none when 0: off)."""
    budget = settings.dead_peer_budget
    if budget <= 0 or not hasattr(socket, "TCP_USER_TIMEOUT"):
        return []
    user_timeout_ms = int(settings.tcp_user_timeout * 1000)
    # Keepalive (whole seconds, at least 1): start probing after a third of the budget of silence,
    # probe three times; TCP_USER_TIMEOUT then decides when unanswered probes abort.
    idle = max(1, int(budget / 3))
    interval = max(1, int(budget / 9))
    return [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle),
        (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval),
        (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
        (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms),
    ]


def apply(sock: socket.socket, options: Iterable[SocketOption]) -> None:
    for level, option, value in options:
        sock.setsockopt(level, option, value)


def apply_to_listeners(sockets: Iterable[socket.socket], settings: Settings) -> list[SocketOption]:
    """Set the dead-peer options on listening TCP sockets (accepted sockets inherit them)."""
    options = dead_peer_options(settings)
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            apply(sock, options)
    return options


def listening_fds() -> list[int]:
    """File descriptors of this process that are listening TCP sockets."""
    found: list[int] = []
    if not os.path.isdir("/proc/self/fd"):
        return found  # not Linux: the worker drains without closing its listeners first
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            copy = os.dup(fd)
        except OSError:
            continue  # closed meanwhile (the directory listing's own fd)
        try:
            probe = socket.socket(fileno=copy)
        except OSError:
            os.close(copy)
            continue  # not a socket
        with probe, contextlib.suppress(OSError):
            if probe.type == socket.SOCK_STREAM and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                found.append(fd)
    return found


def stop_listening(fds: Iterable[int], remove_reader: object = None) -> None:
    """Stop accepting on these listening sockets now: the port is released even though the
    file descriptors stay open (shutdown() moves a listener to CLOSE; queued connections get RST)."""
    for fd in fds:
        if callable(remove_reader):
            remove_reader(fd)
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
