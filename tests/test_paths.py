"""Every repository path named in a comment, docstring or doc exists, and nothing refers to files
outside the repository (issue 21, acceptance 5).

What counts as a path: a token that starts with one of the repository's top-level folders
(TOP_LEVEL, e.g. `app/`, `tests/`, `infra/`) or is a top-level file (README.md, Makefile,
pyproject.toml), made of letters, digits and `_ . / -`; a test id's `::name`, a `#anchor` and a
`:line` suffix are cut off. Not paths: tokens with a placeholder or pattern (`<proxy>`, `*`, `%`, `{`,
`$`), which name a family of files, and tokens inside URLs (another repository's files). Every text
file git tracks is read (source, configs, docs). A failure names file:line and the missing path.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("app", "streamkit", "tests", "bench", "infra", "docs", "mk", ".github")
TOP_FILES = ("README.md", "Makefile", "pyproject.toml")
_PATH = re.compile(
    r"(?<![\w./$<{*-])((?:"
    + "|".join(re.escape(d) for d in TOP_LEVEL)
    + r")/[\w./-]*+|"
    + "|".join(re.escape(f) for f in TOP_FILES)
    + r")(?![\w<{*$%\\([])"
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# Files outside the repository that earlier text leaned on; a reader of the repository cannot follow them.
OUTSIDE = re.compile(r"DESIGN\.md|(?<![\w/])proxies\.md|research[ ]notes|\.\./shared", re.IGNORECASE)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of the repository's files")
    return [REPO / name for name in listed.stdout.split("\0") if name and (REPO / name).is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def named_paths(text: str) -> list[tuple[int, str]]:
    """(line, path) of every repository path named in `text` (see the module docstring)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = _URL.sub(" ", line)
        for match in _PATH.finditer(line):
            path = match.group(1).rstrip(".-/")
            if path.split("/")[-1] in ("", ".") or ".." in path:
                continue
            found.append((number, path))
    return found


def missing_in(file: Path, root: Path = REPO) -> list[str]:
    """`file:line: names PATH, which does not exist` for each named path that is missing."""
    text = text_of(file)
    if text is None:
        return []
    return [
        f"{file.relative_to(root)}:{number}: names {path}, which does not exist"
        for number, path in named_paths(text)
        # A path may also be relative to the file's own folder (a copyable folder's own tests/).
        if not (REPO / path).exists() and not (file.parent / path).exists()
    ]


def test_every_named_path_exists() -> None:
    problems = [problem for file in tracked_files() if file != Path(__file__) for problem in missing_in(file)]
    assert not problems, "\n".join(problems)


def test_nothing_refers_to_files_outside_the_repository() -> None:
    problems = []
    for file in tracked_files():
        if file == Path(__file__):
            continue
        for number, line in enumerate((text_of(file) or "").splitlines(), 1):
            if match := OUTSIDE.search(line):
                where = f"{file.relative_to(REPO)}:{number}"
                problems.append(f"{where}: refers to {match.group(0)}, outside the repository")
    assert not problems, "\n".join(problems)


def test_negative_control_a_missing_path_is_named_with_file_and_line(tmp_path: Path) -> None:
    text = "# x\nSee `app/routes.py` and tests/e2e/test_contract.py::test_contract.\nThen app/no_such_module.py.\n"
    assert named_paths(text) == [(2, "app/routes.py"), (2, "tests/e2e/test_contract.py"), (3, "app/no_such_module.py")]
    assert named_paths("see https://github.com/x/y/blob/main/app/gone.py and infra/<proxy>/README.md") == []
    probe = tmp_path / "probe.md"
    probe.write_text(text)
    assert missing_in(probe, tmp_path) == ["probe.md:3: names app/no_such_module.py, which does not exist"]
    assert OUTSIDE.search("as DESIGN" ".md says") and not OUTSIDE.search("as docs/architecture.md says")
