"""A streaming client to run inside a namespace (`Link.process`): opens every stream it is given,
says `ready <request_id> <local_port> <unix time>` on stdout once each is where the test wants it, and then
keeps its sockets open until it is killed (after its link is taken down, nothing reaches it).

Modes: `read` reads everything and is ready after N SSE lines (`:` comments or `data:`); `stall`
asks for a tiny receive window, reads the response headers and then stops reading.

Usage: python -m tests.netns.client HOST PORT MODE:N:REQUEST_ID:PATH [...]
"""

from __future__ import annotations

import socket
import sys
import threading
import time

_print_lock = threading.Lock()


def _say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def stream(host: str, port: int, mode: str, lines_before_ready: int, request_id: str, path: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if mode == "stall":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Request-ID: {request_id}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(1024)
        if not chunk:
            _say(f"closed {request_id}")
            return
        received += chunk
    local_port = sock.getsockname()[1]
    if mode == "stall":
        _say(f"ready {request_id} {local_port} {time.time()}")
        while True:
            time.sleep(3600)
    body = received.split(b"\r\n\r\n", 1)[1]
    said = False
    while True:
        if not said and sum(1 for line in body.split(b"\n") if line.startswith((b":", b"data:"))) >= lines_before_ready:
            _say(f"ready {request_id} {local_port} {time.time()}")
            said, body = True, b""
        chunk = sock.recv(65536)
        if not chunk:
            _say(f"closed {request_id}")
            return
        if not said:
            body += chunk


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])
    threads = []
    for spec in argv[2:]:
        mode, count, request_id, path = spec.split(":", 3)
        thread = threading.Thread(target=stream, args=(host, port, mode, int(count), request_id, path), daemon=True)
        thread.start()
        threads.append(thread)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
