"""Latency bounds in tests: one convention and one place for the tolerance.

A latency assertion in this suite is one of two kinds, never a single trial against a few
milliseconds (a shared 2-core machine stalls a process for tens of milliseconds now and then):

* `assert_p95(samples, bound, what)`: the 95th percentile of at least MIN_TRIALS trials is
  within `bound` (plus SCHEDULER_SLACK, named here once);
* `assert_ratio(value, baseline, at_most, what)`: a measurement against a baseline taken in the
  same run (the same machine, the same load), e.g. through a proxy against direct.

Performance itself (CPU per token, ceilings) is measured in `make bench`, not asserted in tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Fewest trials a latency percentile is computed over.
MIN_TRIALS = 20
# Added to every latency bound: what a busy 2-core machine may delay a process by, on top of
# the behaviour under test. Named once so that every bound says the same thing.
SCHEDULER_SLACK = 0.05


def p95(samples: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    if not samples:
        raise ValueError("p95 of no samples")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _ms(values: Sequence[float]) -> str:
    return ", ".join(f"{v * 1000:.0f}" for v in sorted(values))


def p95_within(samples: Sequence[float], bound: float, what: str) -> tuple[bool, str]:
    """(whether the p95 of `samples` is within `bound` + slack, one line saying so): for checks that
    report rather than assert (a negative control must be able to fail them)."""
    if len(samples) < MIN_TRIALS:
        return False, f"{what}: {len(samples)} trials, a percentile needs at least {MIN_TRIALS}"
    value = p95(samples)
    ok = value <= bound + SCHEDULER_SLACK
    return ok, (
        f"{what}: p95 {value * 1000:.1f} ms over {len(samples)} trials {'<=' if ok else '>'} {bound * 1000:.0f} ms "
        f"(+{SCHEDULER_SLACK * 1000:.0f} ms slack); all (ms): {_ms(samples)}"
    )


def assert_p95(samples: Sequence[float], bound: float, what: str) -> float:
    """Assert the p95 of `samples` (seconds, at least MIN_TRIALS) is within `bound` + slack."""
    assert len(samples) >= MIN_TRIALS, f"{what}: {len(samples)} trials, a percentile needs at least {MIN_TRIALS}"
    ok, detail = p95_within(samples, bound, what)
    assert ok, detail
    return p95(samples)


def assert_ratio(value: float, baseline: float, at_most: float, what: str) -> float:
    """Assert `value` is at most `at_most` × a baseline measured in the same run."""
    assert baseline > 0, f"{what}: the baseline is {baseline}, not a measurement"
    ratio = value / baseline
    assert ratio <= at_most, f"{what}: {value:.4g} is {ratio:.2f}× the same-run baseline {baseline:.4g} (> {at_most}×)"
    return ratio
