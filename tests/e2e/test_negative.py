"""Negative controls: naive configs kept under tests/negative/<proxy>/ (never shipped) that the SAME
checks as the contract suite must catch. A check that cannot fail proves nothing.

A control is a config file that replaces the proxy's main config; its header says what it proves:

    # catches: incremental, compression    (names in tests/e2e/harness.py CHECKS; each must fail)
    # behind: nginx                        (optional: run in front of that proxy's shipped config, or
                                           of a hop in tests/e2e that drops the app's hints:
                                           `strip-hints`, `strip-hints-unchunked`)
    # app: silent                          (optional: the app with pings off)

A control is caught only when the check judges it and fails it; a control that does not even serve
the stream (`ok is None`) fails this test, since it would prove nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamkit.proxies import PROXIES
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import CHECKS, Tls, start_hop, start_target

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]

NEGATIVE = Path(__file__).resolve().parents[1] / "negative"
HEADER = re.compile(r"^#\s*(catches|behind|app):\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Control:
    proxy: str
    path: Path
    catches: tuple[str, ...]
    behind: str | None = None
    app: str = "pinged"

    @property
    def id(self) -> str:
        return f"{self.proxy}/{self.path.name}"


def parse(proxy: str, path: Path) -> Control | None:
    fields = dict(HEADER.findall(path.read_text()))
    if "catches" not in fields:
        return None
    catches = tuple(name.strip() for name in fields["catches"].split(","))
    unknown = [name for name in catches if name not in CHECKS]
    if unknown:
        raise ValueError(f"{path}: unknown check(s) {unknown}; known: {sorted(CHECKS)}")
    return Control(proxy, path, catches, fields.get("behind"), fields.get("app", "pinged"))


def controls() -> list[Control]:
    found = []
    for proxy in sorted(PROXIES):
        folder = NEGATIVE / proxy
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            control = parse(proxy, path) if path.is_file() else None
            if control:
                found.append(control)
    return found


CONTROLS = controls()


def test_every_proxy_has_controls() -> None:
    missing = [name for name in PROXIES if not any(c.proxy == name for c in CONTROLS)]
    assert not missing, f"no negative controls under tests/negative/ for {missing}"


@pytest.mark.parametrize("control", CONTROLS, ids=[c.id for c in CONTROLS])
def test_control_is_caught(
    control: Control,
    pinged_app: RunningApp,
    silent_app: RunningApp,
    tls: Tls,
    processes: Processes,
    tmp_path: Path,
) -> None:
    proxy = installed(PROXIES[control.proxy])
    app = silent_app if control.app == "silent" else pinged_app
    upstream = None
    if control.behind:
        installed(PROXIES.get(control.behind, PROXIES["nginx"]))
        back = start_hop(control.behind, tmp_path / "back", app, tls)
        processes.add(back.process)
        upstream = back.url.removeprefix("http://")
    target = start_target(proxy, tmp_path / "control", app, tls, upstream, control.path, control.path.stem)
    processes.add(target.process)
    results = {name: CHECKS[name](target) for name in control.catches}
    not_caught = {name: result.detail for name, result in results.items() if result.ok is not False}
    assert not not_caught, f"{control.id} was not caught by: {not_caught}"
