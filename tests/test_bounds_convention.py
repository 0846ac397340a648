"""The latency-bound convention of tests/bounds.py, enforced over every file under tests/.

THE RULE. Outside tests/bounds.py, no comparison (`<`, `<=`, `>`, `>=`, chained or not, in an
`assert` or anywhere else, e.g. a check that returns ok/not ok) may

  (a) bound a TIME MEASUREMENT from above by a CONSTANT below one second
      (`delay <= 0.3`, `MAX_LAG >= lag`, `obs.time_to_headers <= MAX_TIME_TO_HEADERS`), or
  (b) put a time measurement in a WINDOW between two constants less than one second apart
      (`SEND_TIMEOUT - 0.25 <= stuck_for <= SEND_TIMEOUT + 0.25`).

Such a bound is one trial against a few hundred milliseconds: a shared 2-core machine stalls a
process for that long now and then. Write it as `assert_p95(samples, bound, what)` over at least
MIN_TRIALS trials, or `assert_ratio(value, baseline, at_most, what)` against a same-run baseline
(or `p95_within` for a check that reports instead of asserting).

- A TIME MEASUREMENT is an expression naming a variable or attribute that matches TIME_NAMES
  (delay, lag, latency, elapsed, took, duration, time_to..., ttft/ttfb, first_token, arrival, stuck...,
  silen(ce/t)..., seconds, closed_at, hung_up, clicked, monotonic, perf_counter).
- A CONSTANT is an expression of number literals and UPPER_CASE names assigned at module level (in the
  same file, or imported `from tests... import NAME`), joined by + - * /; its value is computed.
- Lower bounds (`first_token >= 2.9`: "not before") and windows at least a second wide (a cut near a
  2 s timeout, give or take) are behaviour, not latency, and stay plain comparisons.
- A line that compares a time-named value that is not a latency may say so with
  `# bounds: not latency (why)`; the test lists those lines.

Known blind spot: a one-sided upper bound of a second or more (`delay <= TIMER + 0.1`) is not
recognised as a narrow tolerance; write such a tolerance as a window or as a p95 of the overshoot.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EXEMPT_FILES = {TESTS / "bounds.py"}
TIME_NAMES = re.compile(
    r"delay|lag|latenc|elapsed|took|duration|time_to|ttf[bt]|first_token|arrival|stuck|silen|seconds|"
    r"closed_at|hung_up|clicked|monotonic|perf_counter",
    re.IGNORECASE,
)
EXEMPT_LINE = re.compile(r"#\s*bounds:\s*not latency\b")
ONE_SECOND = 1.0
UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {self.why}: {self.text.strip()}"


@cache
def module_constants(path: Path) -> dict[str, float]:
    """Module-level UPPER_CASE numbers of a tests file, with those it imports from other tests files."""
    return _constants(ast.parse(path.read_text()), path)


def _constants(tree: ast.Module, path: Path | None) -> dict[str, float]:
    known: dict[str, float] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests":
            source = REPO.joinpath(*node.module.split(".")).with_suffix(".py")
            if source.is_file() and source != path:
                theirs = module_constants(source)
                known.update(
                    {alias.asname or alias.name: theirs[alias.name] for alias in node.names if alias.name in theirs}
                )
        targets = [node.target] if isinstance(node, ast.AnnAssign) and node.value else getattr(node, "targets", [])
        value = getattr(node, "value", None)
        pairs = [(target, value) for target in targets]
        for target, value in pairs:
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                pairs += list(zip(target.elts, value.elts, strict=True))
            elif isinstance(target, ast.Name) and UPPER.match(target.id) and value is not None:
                number = evaluate(value, known)
                if number is not None:
                    known[target.id] = number
    return known


def evaluate(node: ast.expr, known: dict[str, float]) -> float | None:
    """The value of a constant expression (see the module docstring), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name) and UPPER.match(node.id):
        return known.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = evaluate(node.operand, known)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left, right = evaluate(node.left, known), evaluate(node.right, known)
        if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
            return None
        ops = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
        return ops.get(type(node.op), left / right if right else 0.0)
    return None


def measures_time(node: ast.expr) -> bool:
    """Names a time-like variable or attribute (UPPER_CASE names are constants, not measurements)."""
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not UPPER.match(n.id)]
    names += [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
    return any(TIME_NAMES.search(name) for name in names)


def comparisons(source: str, path: Path) -> Iterator[tuple[ast.Compare, str | None]]:
    """Every comparison of a time measurement with a constant: (node, violation or None)."""
    tree = ast.parse(source)
    known = _constants(tree, path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        values = [None if measures_time(o) else evaluate(o, known) for o in operands]
        timed = [measures_time(o) for o in operands]
        if not any(timed) or all(v is None for v in values):
            continue
        yield node, _violation(node.ops, values, timed)


def _violation(ops: list[ast.cmpop], values: list[float | None], timed: list[bool]) -> str | None:
    for i, op in enumerate(ops):
        small, big = (i, i + 1) if isinstance(op, ast.Lt | ast.LtE) else (i + 1, i)
        if not isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE):
            continue
        bound = values[big]
        if timed[small] and bound is not None and bound < ONE_SECOND:
            return f"a time measurement bounded above by {bound:g} s (< {ONE_SECOND:g} s) in a single comparison"
    if len(values) == 3 and timed[1] and values[0] is not None and values[2] is not None:
        width = abs(values[2] - values[0])
        if width < ONE_SECOND:
            return f"a time measurement in a {width:g} s window (< {ONE_SECOND:g} s) in a single comparison"
    return None


def scan(path: Path, source: str | None = None) -> tuple[list[Finding], list[Finding], int]:
    """(violations, exempted lines, comparisons of a time measurement with a constant examined)."""
    text = path.read_text() if source is None else source
    lines = text.splitlines()
    violations, exempted, seen = [], [], 0
    for node, why in comparisons(text, path):
        seen += 1
        line = lines[node.lineno - 1]
        if why and EXEMPT_LINE.search(line):
            exempted.append(Finding(path, node.lineno, line, why))
        elif why:
            violations.append(Finding(path, node.lineno, line, why))
    return violations, exempted, seen


def test_no_single_trial_latency_bound_in_tests() -> None:
    violations, exempted, seen = [], [], 0
    for path in sorted(TESTS.rglob("*.py")):
        if path in EXEMPT_FILES:
            continue
        found, skipped, count = scan(path)
        violations += found
        exempted += skipped
        seen += count
    assert not violations, "latency bounds outside tests/bounds.py (see this file's docstring):\n" + "\n".join(
        map(str, violations)
    )
    # Not blind: the suite's own behaviour windows (cuts near a timeout, "not before" bounds) are seen.
    assert seen >= 5, f"only {seen} comparisons of a time measurement with a constant recognised in tests/"
    print("exempted:", *map(str, exempted), sep="\n  ")


PLANTED = """
from tests.e2e.harness import DISCONNECT_BUDGET
MAX_CLOSE_DELAY = 0.100
SEND_TIMEOUT, SLACK = 1.0, 0.25
WINDOW = 2 * SLACK

def single_trials(record, hung_up, obs, delay, lag, stuck_for):
    assert record.closed_at - hung_up <= MAX_CLOSE_DELAY
    assert obs.time_to_headers < 0.2
    ok = 0.05 >= lag
    assert delay <= DISCONNECT_BUDGET
    assert SEND_TIMEOUT - SLACK <= stuck_for <= SEND_TIMEOUT + SLACK
    return ok
"""

ALLOWED = """
from tests.bounds import assert_p95
READ_TIMEOUT = 2.0

def fine(delays, first_token, silent_for, lag, count):
    assert_p95(delays, 0.1, "close delay")
    assert first_token >= 2.9
    assert READ_TIMEOUT - 0.3 <= silent_for <= READ_TIMEOUT + 2.0
    assert count <= 3
    assert lag <= 0.5  # bounds: not latency (a planted exemption)
"""


def test_the_rule_catches_planted_violations_and_spares_the_allowed_forms() -> None:
    here = TESTS / "planted_example.py"  # never written: the source is given
    violations, _, _ = scan(here, PLANTED)
    assert sorted(f.line for f in violations) == [8, 9, 10, 11, 12], "\n".join(map(str, violations))
    violations, exempted, seen = scan(here, ALLOWED)
    assert not violations, "\n".join(map(str, violations))
    assert [f.line for f in exempted] == [10] and seen == 3
