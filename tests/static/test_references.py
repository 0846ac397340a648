"""Every copyable file names the test that proves it, and every test it names exists.

A header such as `Proven by: tests/e2e/test_contract.py::test_contract[nginx-incremental]` is a
promise to the reader; this keeps those promises true as tests are renamed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# `tests/<folder>/test_<name>.py` optionally followed by `::test_name` (parameters in brackets are ignored).
REFERENCE = re.compile(r"tests/[\w/]+\.py(?:::(\w+))?")
DOCUMENTS = ("README.md", "docs", "infra", "bench/README.md")
# Copyable files that need no test reference of their own: prose, data, and generated files.
NO_HEADER = re.compile(r"(README\.md|runbook\.md|\.json|\.png|\.lock\.hcl)$")


def tracked(*paths: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--", *paths], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in listed.stdout.splitlines() if (REPO / line).is_file()]


def references() -> list[tuple[Path, str, str | None]]:
    found = []
    for path in tracked(*DOCUMENTS):
        text = path.read_text(errors="replace")
        for match in REFERENCE.finditer(text):
            found.append((path, match.group(0).split("::")[0], match.group(1)))
    return found


REFERENCES = references()


def test_documents_reference_tests() -> None:
    assert len(REFERENCES) > 50, "the reference scan found almost nothing: is the pattern broken?"


@pytest.mark.parametrize(
    ("document", "module", "name"), REFERENCES, ids=[f"{d.relative_to(REPO)}->{m}::{n}" for d, m, n in REFERENCES]
)
def test_referenced_test_exists(document: Path, module: str, name: str | None) -> None:
    path = REPO / module
    assert path.is_file(), f"{document.relative_to(REPO)} names {module}, which does not exist"
    if name and name.startswith("test_"):
        assert re.search(rf"^\s*(async )?def {name}\(", path.read_text(), re.MULTILINE), (
            f"{document.relative_to(REPO)} names {module}::{name}, which does not exist"
        )


@pytest.mark.parametrize(
    "path", [p for p in tracked("infra") if not NO_HEADER.search(p.name)], ids=lambda p: str(p.relative_to(REPO))
)
def test_copyable_file_names_the_test_that_proves_it(path: Path) -> None:
    assert REFERENCE.search(path.read_text(errors="replace")), (
        f"{path.relative_to(REPO)}: its header should say which test proves it (tests/...py::test_...)"
    )
