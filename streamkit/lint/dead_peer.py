"""A proposed rule (not wired into `streamkit lint` yet): a vanished client is bounded on the
proxy's client side where the config can express it (issue 16; docs/timeouts.md "Dead peers").

Only HAProxy can say it in its config today (`tcp-ut` on each `bind` line of a `frontend` or
`listen` section); nginx, Caddy and Traefik cannot (their TCP keepalive probes only idle
connections, and a stream always has heartbeats in flight), and Envoy can only through raw
listener `socket_options`. The rule: every client-facing HAProxy `bind` sets `tcp-ut`, and the
bound it gives (PING_INTERVAL + 2 × tcp-ut, see app/sockets.py) fits in DEAD_PEER_TIMEOUT.

`check_haproxy(text, ping, dead_peer)` returns one message per offending bind line:
(line number, message). Wiring it in as SK8 is `streamkit/lint/haproxy.py` + `rules.py`'s job.
Docs: https://docs.haproxy.org/2.6/configuration.html#5.1-tcp-ut
"""

from __future__ import annotations

from streamkit.lint.durations import seconds, show
from streamkit.lint.haproxy import read

CLIENT_SECTIONS = ("frontend", "listen")


def check_haproxy(text: str, ping: float, dead_peer: float) -> list[tuple[int, str]]:
    problems = []
    for section in read(text):
        if section.kind not in CLIENT_SECTIONS:
            continue
        for line in section.all("bind"):
            words = line.words
            if "tcp-ut" not in words or words.index("tcp-ut") + 1 >= len(words):
                problems.append(
                    (
                        line.number,
                        f"bind {words[1] if len(words) > 1 else ''} has no tcp-ut: a client whose network "
                        "vanishes keeps its stream (and the model) running for ~15 min (tcp_retries2); "
                        f"add `tcp-ut {max(1, int((dead_peer - ping) / 2 * 1000))}ms`",
                    )
                )
                continue
            value = seconds(words[words.index("tcp-ut") + 1], unit="ms")
            if value is None or value <= 0:
                problems.append((line.number, f"tcp-ut {words[words.index('tcp-ut') + 1]!r} is not a duration"))
            elif ping + 2 * value > dead_peer:
                problems.append(
                    (
                        line.number,
                        f"tcp-ut {show(value)} bounds a vanished client at about {show(ping + 2 * value)} "
                        f"(PING_INTERVAL + 2 × tcp-ut), over DEAD_PEER_TIMEOUT {show(dead_peer)}",
                    )
                )
    return problems
