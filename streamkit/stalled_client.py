"""A client that stops reading but stays connected: the third cancellation window.

The kernel keeps accepting a stream's bytes until the server socket's send buffer (autotuned up
to net.ipv4.tcp_wmem's maximum, 4 MiB by default) is full; only then does the app's `send` block.
`wait_until_blocked` watches the server side of the connection in /proc/net/tcp and returns once
its send queue stops growing, so a test knows the app is really stuck in `send`.
"""

from __future__ import annotations

import json
import socket
import time

# The send queue counts as stalled when it has not grown for this long.
STALL_QUIET = 0.3
# The fake's `word_repeat` knob for a flood: tokens of a few KiB.
WORD_REPEAT = 500


class StalledClient:
    def __init__(self, host: str, port: int, request_id: str) -> None:
        self.host, self.port, self.request_id = host, port, request_id
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A tiny receive window: the server's bytes pile up on its side, not in our buffer.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))

    @classmethod
    def flood(cls, base_url: str, request_id: str, tokens_per_second: float = 0) -> StalledClient:
        """POST a chat completion of a million fast tokens (as fast as the app sends, or at
        `tokens_per_second`), read the headers, then stop reading."""
        host, port = base_url.removeprefix("http://").split(":")
        client = cls(host, int(port), request_id)
        body = json.dumps(
            {
                "model": "streamkit-fake",
                "stream": True,
                "messages": [{"role": "user", "content": "flood"}],
                # Each token a few KiB: the server's send buffer (MiBs) fills in hundreds of events.
                "fake": {
                    "tokens": 1_000_000,
                    "tokens_per_second": tokens_per_second,
                    "first_token_delay": 0,
                    "word_repeat": WORD_REPEAT,
                },
            }
        )
        client.sock.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nX-Request-ID: {request_id}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += client.sock.recv(1024)
        return client

    def server_send_queue(self) -> int | None:
        """Bytes queued on the server's side of this connection (from /proc/net/tcp)."""
        local_port = self.sock.getsockname()[1]
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                local, remote, queues = fields[1], fields[2], fields[4]
                if int(local.split(":")[1], 16) == self.port and int(remote.split(":")[1], 16) == local_port:
                    return int(queues.split(":")[0], 16)
        return None

    def wait_until_blocked(self, timeout: float = 60.0) -> int:
        """Return the server's send queue size once it stops growing (the app's send is blocked)."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            queued = self.server_send_queue() or 0
            now = time.monotonic()
            if queued != last:
                last, last_change = queued, now
            elif queued > 0 and now - last_change >= STALL_QUIET:
                return queued
            time.sleep(0.02)
        raise TimeoutError(f"the server's send queue never stopped growing ({last} bytes)")

    def reset(self) -> float:
        """Hang up hard (RST, as a killed client does) and return the unix time of it."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        hung_up = time.time()
        self.sock.close()
        return hung_up

    def close(self) -> None:
        self.sock.close()
