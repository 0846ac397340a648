"""The dependency directions of docs/architecture.md ("Allowed dependency directions"), checked on
the imports of every module: the app imports nothing of the kit outside app/, the checker only the
app's settings, bench/ and the packages never import tests/, and the app-only install stays free
of the checker's dependencies (those are checked by tests/test_packaging.py); and the fake LLM
stays behind its own interface: the product's upstream interface and routes import nothing of it,
and `streamkit fake-upstream` borrows nothing from the app's routes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Part (a folder or module prefix) -> the kit's top-level packages it must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "app": ("streamkit", "tests", "bench"),
    "streamkit/probe": ("tests", "bench", "streamkit.lint", "streamkit.proxies", "app"),
    "streamkit/lint": ("tests", "bench", "streamkit.probe", "streamkit.proxies"),
    "streamkit": ("tests", "bench"),
    "bench": ("tests",),
    # The fake behind its own interface (docs/architecture.md, "The parts": bridges).
    "app/upstreams/base.py": ("app.fakellm", "app.upstreams.fake"),
    "app/routes.py": ("app.fakellm", "app.upstreams.fake"),
    "streamkit/fake_upstream.py": ("app.routes",),
}
# The checker may read the app's defaults, and nothing else of the app.
ALLOWED: dict[str, tuple[str, ...]] = {"streamkit/lint": ("app.settings",)}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a Python file, inside functions too, and of every
    `import_module("literal")` call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "import_module" and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def violations(part: str, files: list[Path], root: Path = REPO) -> list[str]:
    problems = []
    for file in files:
        for line, module in imports(file):
            if any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED.get(part, ())):
                continue
            for forbidden in FORBIDDEN[part]:
                if module == forbidden or module.startswith(forbidden + "."):
                    problems.append(f"{file.relative_to(root)}:{line}: {part} imports {module}")
    return problems


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_dependency_directions(part: str) -> None:
    files = [REPO / part] if part.endswith(".py") else sorted((REPO / part).rglob("*.py"))
    assert files, part
    assert violations(part, files) == []


def test_negative_control_an_app_module_importing_the_checker_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from streamkit.lint import rules\n    import tests.conftest\n")
    assert violations("app", [bad], tmp_path) == [
        "bad.py:2: app imports streamkit.lint",
        "bad.py:3: app imports tests.conftest",
    ]


def test_negative_control_the_routes_reaching_for_the_fake_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "routes.py"
    bad.write_text(
        "import importlib\nfrom app.upstreams.fake import FakeKnobsIn\nimportlib.import_module('app.fakellm')\n"
    )
    assert violations("app/routes.py", [bad], tmp_path) == [
        "routes.py:2: app/routes.py imports app.upstreams.fake",
        "routes.py:3: app/routes.py imports app.fakellm",
    ]
