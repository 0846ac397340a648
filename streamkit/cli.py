"""The `streamkit` command line: one module per subcommand.

Each module named below provides `HELP` (one line), `configure(parser)` and `run(args) -> int`,
and imports anything heavy inside `run`, so `streamkit --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS = {
    "serve": "streamkit.serve",
    "demo": "streamkit.demo",
    "probe": "streamkit.probe",
    "lint": "streamkit.lint",
    "fake-upstream": "streamkit.fake_upstream",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamkit", description="Check and run LLM token streaming over Server-Sent Events."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        if not hasattr(module, "run"):
            continue
        sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sp)
        sp.set_defaults(run=module.run)
    return parser


# Distributions of the `check` extra (pyproject.toml) by the module name they install; a checker
# command that misses one says how to install it instead of printing a traceback.
CHECK_EXTRA_MODULES = {"httpx_sse", "crossplane", "yaml", "rich", "matplotlib", "hcl2", "psutil"}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in CHECK_EXTRA_MODULES:
            raise
        print(
            f"streamkit {args.command}: needs the checker's dependencies ({exc.name} is missing); "
            "install them with: pip install 'streamkit[check]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
