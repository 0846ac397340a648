r"""Negative controls: naive configs kept under tests/negative/<proxy>/ (never shipped) that the SAME
checks as the contract suite must catch. A check that cannot fail proves nothing.

A control is a file whose header says what it proves:

    # catches: incremental, compression    (names in tests/e2e/harness.py CHECKS; each must fail)
    # behind: nginx                        (optional: run in front of that proxy's shipped config, or
                                           of a hop in tests/e2e that drops the app's hints:
                                           `strip-hints`, `strip-hints-unchunked`)
    # app: silent                          (optional: the app with pings off)
    # config: shipped                      (optional: the file is only this header; run the SHIPPED
                                           config, e.g. with `# app: silent` for an app-side control)
    # edit: option http-no-delay => option http-no-delay\n    http-response wait-for-body time 10s
                                           (optional, repeatable, with `# derived:`: replace text that
                                           occurs exactly once in the shipped file; `\n`, `\t`: newline, tab)
    # derived: dynamic.yml read_timeout=300ms
                                           (optional, last header line: the rest of the file is that
                                           shipped file with these marked values changed and their
                                           marks dropped, and the edits above applied;
                                           test_derived_controls_differ_in_one_setting keeps it so,
                                           `python -m tests.e2e.test_negative` rewrites it)

Every file under tests/negative/<proxy>/ must carry `# catches:` (a file without it fails
`test_every_control_file_says_what_it_catches`, instead of being silently ignored). Every contract
check (harness.CONTRACT) on every proxy needs a control that catches it, or an entry in
NOT_APPLICABLE saying why the proxy cannot be misconfigured that way, or a capability the proxy
does not declare (its `notes` say why): `test_every_check_on_every_proxy_has_a_control` enforces it,
and the README support matrix shows the same inventory.

A control is caught only when the check judges it and fails it; a control that does not even serve
the stream (`ok is None`) fails this test, since it would prove nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streamkit.proxies import PROXIES
from streamkit.proxies.base import ProxyDef
from streamkit.proxies.substitute import MARK, marked_keys, substitute
from tests.app.conftest import RunningApp
from tests.conftest import Processes
from tests.e2e.conftest import installed
from tests.e2e.harness import CHECKS, CONTRACT, Tls, start_hop, start_target

pytestmark = [pytest.mark.proxy, pytest.mark.timeout(120)]

NEGATIVE = Path(__file__).resolve().parents[1] / "negative"
HEADER = re.compile(r"^#\s*(catches|behind|app|config|derived):\s*(.+?)\s*$", re.MULTILINE)

DERIVED_LINE = re.compile(r"^# derived: .*$", re.MULTILINE)
EDIT_LINE = re.compile(r"^# edit: (?P<old>.+?) => (?P<new>.*?)\s*$", re.MULTILINE)

# (proxy, check) pairs without a control, and why no config of that proxy can fail the check.
_WRITE_FAILS = (
    "while tokens flow, the proxy learns of the hang-up from its next failed write and closes the "
    "upstream; no setting keeps it reading after that"
)
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    # Measured for nginx: even `proxy_ignore_client_abort on` (tests/negative/nginx/ignore-client-abort.conf)
    # closes the upstream at the next failed write; it only matters while nothing is written.
    ("nginx", "disconnect"): _WRITE_FAILS + " (even `proxy_ignore_client_abort on`, measured)",
    ("caddy", "disconnect"): _WRITE_FAILS + " (Go's reverse proxy ends the copy and the upstream request)",
    ("traefik", "disconnect"): _WRITE_FAILS + " (Go's reverse proxy ends the copy and the upstream request)",
    ("envoy", "disconnect"): _WRITE_FAILS + " (a downstream reset always resets the upstream stream)",
    ("haproxy", "disconnect"): _WRITE_FAILS + " (tests/e2e/test_haproxy_specific.py)",
    ("caddy", "disconnect_silent"): "Caddy cancels the upstream request when the client connection closes; "
    "no Caddyfile setting turns that off in 2.11 (`flush_interval -1` did on 2.6-2.8)",
    ("traefik", "disconnect_silent"): "Traefik cancels the upstream request when the client connection "
    "closes; no setting turns that off",
    ("envoy", "disconnect_silent"): "Envoy resets the upstream stream when the downstream closes; no "
    "setting turns that off",
    ("nginx", "openai_sdk"): "nginx has no total-duration timeout to cut the SDK's stream, and passes the "
    "POST body and the SSE framing unchanged in every streaming mode the other checks allow",
    ("haproxy", "openai_sdk"): "HAProxy has no total-duration timeout to cut the SDK's stream, and passes "
    "the POST body and the SSE framing unchanged in every streaming mode the other checks allow",
}


@dataclass(frozen=True)
class Control:
    proxy: str
    path: Path
    catches: tuple[str, ...]
    behind: str | None = None
    app: str = "pinged"
    shipped: bool = False  # the file is only a header: run the shipped config
    derived: str | None = None  # the shipped file this one replaces (the rest is `derive()` of it)
    settings: Mapping[str, str] = field(default_factory=dict)  # the values `derive()` changed
    edits: tuple[tuple[str, str], ...] = ()  # the text `derive()` replaced

    @property
    def override(self) -> Mapping[str, Path] | None:
        if self.shipped:
            return None
        return {self.derived or PROXIES[self.proxy].configs[0]: self.path}

    @property
    def id(self) -> str:
        return f"{self.proxy}/{self.path.name}"


def parse(proxy: str, path: Path) -> Control | None:
    """The control a file declares; None when it has no `# catches:` header."""
    fields = dict(HEADER.findall(path.read_text()))
    if "catches" not in fields:
        return None
    catches = tuple(name.strip() for name in fields["catches"].split(","))
    unknown = [name for name in catches if name not in CHECKS]
    if unknown:
        raise ValueError(f"{path}: unknown check(s) {unknown}; known: {sorted(CHECKS)}")
    derived, settings, edits = None, {}, ()
    if "derived" in fields:
        header, _ = split_derived(path)
        derived, *pairs = fields["derived"].split()
        settings = dict(pair.split("=", 1) for pair in pairs)
        edits = tuple((unescape(m["old"]), unescape(m["new"])) for m in EDIT_LINE.finditer(header))
        marked = marked_keys((PROXIES[proxy].directory / derived).read_text())
        if derived not in PROXIES[proxy].configs or not (settings or edits) or set(settings) - set(marked):
            raise ValueError(f"{path}: `# derived: {fields['derived']}` names no shipped {proxy} file or marked value")
    shipped = fields.get("config") == "shipped"
    app = fields.get("app", "pinged")
    return Control(proxy, path, catches, fields.get("behind"), app, shipped, derived, settings, edits)


def unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def derive(proxy: str, name: str, settings: Mapping[str, str], edits: Iterable[tuple[str, str]] = ()) -> str:
    """The shipped file `name` with `settings` substituted and their marks dropped (so that a test
    run substitutes nothing back), and each `(old, new)` edit applied to text that occurs exactly
    once: a config that differs from the shipped one in that setting only."""
    text = (PROXIES[proxy].directory / name).read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise ValueError(f"{proxy}/{name}: {old!r} occurs {text.count(old)} times, not once")
        text = text.replace(old, new)
    lines = substitute(text, settings).splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = MARK.search(line)
        keys = [key.strip() for key in match["keys"].split(",")] if match else []
        if match and set(keys) & set(settings):
            kept = [key for key in keys if key not in settings]
            comment = f"# streamkit: {', '.join(kept)}" if kept else "# negative control: the one changed value"
            lines[index] = line[: match.start()] + comment + ("\n" if line.endswith("\n") else "")
    return "".join(lines)


def split_derived(path: Path) -> tuple[str, str]:
    """(the control's own header through its `# derived:` line, the derived config after it)."""
    text = path.read_text()
    match = DERIVED_LINE.search(text)
    assert match, f"{path}: no `# derived:` line"
    return text[: match.end() + 1], text[match.end() + 1 :]


def control_files(root: Path = NEGATIVE) -> Iterable[tuple[str, Path]]:
    for proxy in sorted(PROXIES):
        folder = root / proxy
        yield from ((proxy, path) for path in sorted(folder.iterdir()) if path.is_file()) if folder.is_dir() else ()


def controls(root: Path = NEGATIVE) -> list[Control]:
    return [control for proxy, path in control_files(root) if (control := parse(proxy, path))]


def unlabelled(root: Path = NEGATIVE) -> list[Path]:
    """Files under tests/negative/<proxy>/ without a `# catches:` header."""
    return [path for proxy, path in control_files(root) if parse(proxy, path) is None]


def coverage(proxy: ProxyDef, check: str, found: list[Control], not_applicable: Mapping[tuple[str, str], str]) -> str:
    """How (proxy, check) is covered: 'control: file, ...', 'n/a: reason', or '' (a gap)."""
    names = [c.path.name for c in found if c.proxy == proxy.name and check in c.catches]
    capability = CONTRACT[check]
    if capability and capability not in proxy.capabilities:
        return f"n/a: not supported ({proxy.notes.get(capability, 'capability not declared')})"
    if names and (proxy.name, check) in not_applicable:
        return ""  # both a control and a reason why none can exist: one of them is wrong
    if names:
        return "control: " + ", ".join(names)
    reason = not_applicable.get((proxy.name, check))
    return f"n/a: {reason}" if reason else ""


def gaps(found: list[Control], not_applicable: Mapping[tuple[str, str], str]) -> list[str]:
    return [
        f"{name}/{check}"
        for name, proxy in sorted(PROXIES.items())
        for check in CONTRACT
        if not coverage(proxy, check, found, not_applicable)
    ]


CONTROLS = controls()


def test_every_control_file_says_what_it_catches() -> None:
    missing = unlabelled()
    assert not missing, f"control files without a `# catches:` header (they would prove nothing): {missing}"


def test_every_check_on_every_proxy_has_a_control() -> None:
    missing = gaps(CONTROLS, NOT_APPLICABLE)
    assert not missing, f"contract checks without a negative control or an n/a reason: {missing}"
    stale = [key for key in NOT_APPLICABLE if key[0] not in PROXIES or key[1] not in CONTRACT]
    assert not stale, f"NOT_APPLICABLE names unknown proxies or checks: {stale}"


def test_inventory_catches_a_planted_gap_and_an_unlabelled_file(tmp_path: Path) -> None:
    """The two inventory tests above can fail: drop one control, add one file without a header."""
    dropped = CONTROLS[0]
    planted = [c for c in CONTROLS if c is not dropped]
    expected = {f"{dropped.proxy}/{check}" for check in dropped.catches if check in CONTRACT} - {
        f"{c.proxy}/{check}" for c in planted for check in c.catches
    }
    assert expected, f"{dropped.id}: every check it catches has another control: pick another to drop"
    assert expected <= set(gaps(planted, NOT_APPLICABLE))
    folder = tmp_path / dropped.proxy
    folder.mkdir()
    (folder / "forgot-the-header.conf").write_text("# a naive config\nserver {}\n")
    assert unlabelled(tmp_path) == [folder / "forgot-the-header.conf"]


DERIVED = [c for c in CONTROLS if c.derived]


@pytest.mark.parametrize("control", DERIVED, ids=[c.id for c in DERIVED])
def test_derived_controls_differ_in_one_setting(control: Control) -> None:
    """A derived control is the shipped file but for its changed values (rewrite it with
    `python -m tests.e2e.test_negative` after changing the shipped file)."""
    assert control.derived
    _, config = split_derived(control.path)
    assert config == derive(control.proxy, control.derived, control.settings, control.edits), (
        f"{control.id} is no longer the shipped {control.derived} with {dict(control.settings)}, {control.edits}: "
        "rewrite it with `python -m tests.e2e.test_negative`"
    )


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
    target = start_target(proxy, tmp_path / "control", app, tls, upstream, control.override, control.path.stem)
    processes.add(target.process)
    results = {name: CHECKS[name](target) for name in control.catches}
    not_caught = {name: result.detail for name, result in results.items() if result.ok is not False}
    assert not not_caught, f"{control.id} was not caught by: {not_caught}"


def main() -> None:
    """Rewrite every derived control from the shipped file it names (its header stays)."""
    for control in DERIVED:
        assert control.derived
        header, _ = split_derived(control.path)
        control.path.write_text(header + derive(control.proxy, control.derived, control.settings, control.edits))
        print(f"rewrote {control.path}")


if __name__ == "__main__":
    main()
