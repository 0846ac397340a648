"""`streamkit lint`: static streaming rules over proxy, Kubernetes and Terraform configs.

    streamkit lint PATH... [--stream-path PREFIX]... [--app auto|streamkit|other]
                           [--ping S] [--max-stream S] [--keepalive S] [--drain S] [--dead-peer S] [--json]

Formats: nginx (crossplane, includes followed), Caddyfile (`caddy adapt`), Envoy YAML, Traefik
YAML (static + dynamic), HAProxy cfg, Kubernetes manifests, Terraform. Rules SK1-SK10 are in
`streamkit.lint.rules`. Every proxying route is checked unless `--stream-path` names the
streaming ones. Three tiers (`streamkit.lint.rules`): streaming rules (SK1-SK4, SK9) are findings
for any app and decide the exit code; app rules (SK5, SK6, SK8, SK10, about the kit's own app) do
too when the app is streamkit (`--app streamkit`, or auto: files under the kit's own infra/),
otherwise they are notes; advice (SK7 /metrics, for apps that serve metrics on their public port)
is a note for any other app and not reported for streamkit's, whose public port has no /metrics.
A rule a format cannot express (SK10 on nginx, Caddy, Traefik) is a note once per format, never a
finding. Exit codes: 0 clean, 1 findings, 2 bad usage, nothing could be checked, or a config that
could not be read or checked.
"""

from __future__ import annotations

import argparse

HELP = "check proxy, Kubernetes and Terraform configs against the streaming rules (buffering, timeouts...)"

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def configure(parser: argparse.ArgumentParser) -> None:
    from app.settings import Settings

    defaults = Settings()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "rules: SK1 buffering, SK2 compression, SK3 idle-timeout, SK4 total-timeout, SK5 keepalive, SK6 http1, "
        "SK7 metrics, SK8 drain, SK9 cache, SK10 dead-peer (SK5, SK6, SK8 and SK10 are about streamkit's own app: "
        "notes unless --app streamkit; SK7 is advice for apps that serve /metrics on their public port: a note, "
        "never reported with --app streamkit; SK10 is a note on nginx, Caddy and Traefik, which cannot express it)\n"
        "exit codes: 0 clean, 1 findings, 2 bad usage, nothing checked, or a config that could not be checked\n"
        "example: streamkit lint infra/ --ping 15 --max-stream 3600\n"
        "example: streamkit lint /etc/nginx/sites-available --stream-path /v1/chat/completions"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="config files or directories (searched recursively)")
    _seconds(parser, "--ping", defaults.ping_interval, "the app's ping interval", "PING_INTERVAL")
    _seconds(parser, "--max-stream", defaults.max_stream_seconds, "the longest stream", "MAX_STREAM_SECONDS")
    _seconds(parser, "--keepalive", float(defaults.keepalive), "the app's keep-alive", "KEEPALIVE")
    parser.add_argument(
        "--stream-path",
        action="append",
        default=[],
        metavar="PREFIX",
        help="a path prefix that streams (repeatable); default: every proxying route is checked",
    )
    parser.add_argument(
        "--app",
        choices=("auto", "streamkit", "other"),
        default="auto",
        help="the app behind the proxy: streamkit turns the app rules (SK5, SK6, SK8, SK10) from notes into "
        "findings and drops the /metrics advice (SK7: its public port has none) "
        "(default auto: streamkit for files under the kit's own infra/)",
    )
    _seconds(parser, "--drain", defaults.drain_seconds, "the app's drain window", "DRAIN_SECONDS; 0 skips SK8")
    what = "the app's dead-peer budget: a vanished client given up within it"
    _seconds(parser, "--dead-peer", defaults.dead_peer_budget, what, "DEAD_PEER_TIMEOUT; 0 skips SK10")
    parser.add_argument("--json", action="store_true", help="print findings as JSON")


def _seconds(parser: argparse.ArgumentParser, flag: str, default: float, what: str, setting: str) -> None:
    """An option for one of the app's timings (seconds) a config is judged against; its default is
    the app's own (app/settings.py), named by its setting."""
    parser.add_argument(flag, type=float, default=default, metavar="S", help=f"{what} (default {default:g}, {setting})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from streamkit.lint.findings import Budget
    from streamkit.lint.report import as_json, print_human
    from streamkit.lint.scan import lint

    if min(args.ping, args.max_stream, args.keepalive) <= 0:
        Console(stderr=True).print("[red]--ping, --max-stream and --keepalive must be positive[/]")
        return EXIT_ERROR
    if any(not p.startswith("/") for p in args.stream_path):
        Console(stderr=True).print("[red]--stream-path takes a path prefix starting with /[/]")
        return EXIT_ERROR
    budget = Budget(
        ping=args.ping,
        max_stream=args.max_stream,
        keepalive=args.keepalive,
        stream_paths=tuple(args.stream_path),
        drain=max(args.drain, 0.0),
        dead_peer=max(args.dead_peer, 0.0),
    )
    result = lint([Path(p) for p in args.paths], budget, app=args.app)
    if args.json:
        print(as_json(result, budget))
    else:
        print_human(result, budget, Console(highlight=False))
    if result.errors or not result.checked:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.failing else EXIT_CLEAN
