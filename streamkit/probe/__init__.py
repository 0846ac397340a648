"""`streamkit probe`: measure whether a deployment really streams.

    streamkit probe URL [--method POST --json BODY] [--header K:V]... [--json-out FILE|-] [--plot FILE.png]
                        [--http2] [--cacert FILE] [--timeout S] [--max-lag S] [--ping-interval S]
                        [--terminal auto|close|EVENT] [--expect-seconds S] [--expect-events N]

Exit codes: 0 the events arrived as sent (every delivery check that could be judged passed;
header advice such as Cache-Control without no-transform is reported but does not fail); 1 a
delivery check failed (buffered, compressed, cut, no heartbeats when asked, an HTTP error...);
2 no response at all (could not connect, TLS failure) or bad usage. How the end of a stream is
judged (terminal events, generic streams that end by closing): docs/probe.md.
"""

from __future__ import annotations

import argparse

HELP = "measure whether a URL really streams Server-Sent Events (buffering, compression, heartbeats)"

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "exit codes: 0 streams fine, 1 a contract check failed, 2 could not connect or bad usage\n"
        "example: streamkit probe 'http://127.0.0.1:8000/v1/chat/stream?prompt=hi' --ping-interval 15"
    )
    parser.add_argument("url", help="the streaming endpoint (GET unless --method or --json)")
    parser.add_argument("--method", help="HTTP method (default GET, or POST when --json is given)")
    parser.add_argument("--json", dest="body", metavar="BODY", help="JSON request body (e.g. an OpenAI request)")
    parser.add_argument(
        "--header", "-H", action="append", default=[], metavar="K:V", help="extra request header (repeatable)"
    )
    parser.add_argument("--json-out", metavar="FILE", help="write the report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--plot", metavar="FILE.png", help="write a PNG timeline: arrival time against emit time")
    parser.add_argument("--events", action="store_true", help="list every event's arrival, gap and lag")
    parser.add_argument("--http2", action="store_true", help="offer HTTP/2 (over TLS)")
    parser.add_argument("--cacert", metavar="FILE", help="trust this CA bundle (PEM) for https")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="read timeout (default 60)")
    parser.add_argument(
        "--max-lag", type=float, default=0.25, metavar="S", help="per-event lag limit with emitted_at (default 0.25)"
    )
    parser.add_argument(
        "--burst-window", type=float, default=0.05, metavar="S", help="without emitted_at: events this close = burst"
    )
    parser.add_argument(
        "--ping-interval", type=float, metavar="S", help="the server's heartbeat interval: silences longer fail"
    )
    parser.add_argument(
        "--accept-encoding", default="gzip", metavar="ENC", help="Accept-Encoding to send (default gzip)"
    )
    parser.add_argument(
        "--terminal",
        default="auto",
        metavar="auto|close|EVENT",
        help="how the stream ends: auto (the kit's `done`, OpenAI `[DONE]`, Responses `response.completed`; "
        "other streams may end by closing), close (a generic stream), or the event name/data that ends it",
    )
    parser.add_argument(
        "--expect-seconds",
        type=float,
        metavar="S",
        help="the stream lasts this long: a generic stream closing earlier was cut (by a hop's timeout)",
    )
    parser.add_argument(
        "--expect-events", type=int, metavar="N", help="the stream sends this many events: fewer at the close = cut"
    )


def parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {item!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    return headers


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from streamkit.probe.observe import observe
    from streamkit.probe.render import plot_timeline, print_report
    from streamkit.probe.verdict import Expectations, assess

    try:
        headers = parse_headers(args.header)
        body = None if args.body is None else json.loads(args.body)
        if args.cacert and not Path(args.cacert).is_file():
            raise ValueError(f"--cacert {args.cacert}: no such file")
    except ValueError as exc:
        print(f"streamkit probe: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    method = args.method or ("POST" if body is not None else "GET")
    try:
        obs = observe(
            args.url,
            method=method.upper(),
            json_body=body,
            headers=headers,
            timeout=args.timeout,
            http2=args.http2,
            verify=args.cacert or True,
            accept_encoding=args.accept_encoding,
        )
    except ValueError as exc:  # httpx.InvalidURL and friends
        print(f"streamkit probe: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    expect = Expectations(
        max_lag=args.max_lag,
        burst_window=args.burst_window,
        ping_interval=args.ping_interval,
        terminal=args.terminal,
        expect_seconds=args.expect_seconds,
        expect_events=args.expect_events,
    )
    report = assess(obs, expect)
    if args.json_out == "-":
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print_report(report, events=args.events)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.plot:
        plot_timeline(report, Path(args.plot))
    if not report.connected:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.ok else EXIT_FAILED
