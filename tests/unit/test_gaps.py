"""The inter-token gap histogram counted per stream (app/streaming.py `_Gaps`, issue #18) records
the same observations as the histogram's own per-token `observe`: every bucket (bounds included),
the count and the sum. tests/metrics/test_mix.py checks the count end to end through /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from app.metrics import GAP_BUCKETS
from app.streaming import _Gaps

# Below, on and above bucket bounds, zero, and past the last bound (+Inf).
GAPS = [0.0, 0.001, GAP_BUCKETS[0], GAP_BUCKETS[1] * 0.99, GAP_BUCKETS[2], 0.04, 0.2, 1.7, GAP_BUCKETS[-1] * 3]


def _histogram() -> Histogram:
    return Histogram("gap_seconds", "gaps", ["route"], buckets=GAP_BUCKETS, registry=CollectorRegistry())


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_counted_per_stream_equals_observed_per_token() -> None:
    direct, batched = _histogram(), _histogram()
    gaps = _Gaps(batched.labels("r"))
    for gap in GAPS:
        direct.labels("r").observe(gap)
        gaps.observe(gap)
    # Negative control: nothing reaches the histogram before the flush, so the comparison below
    # is about what the flush adds.
    assert _samples(batched)[("gap_seconds_count", "")] == 0
    gaps.flush(0.0)
    assert _samples(batched) == _samples(direct)
    assert _samples(direct)[("gap_seconds_count", "")] == len(GAPS)
    # A second flush adds only what came since the first.
    gaps.observe(0.5)
    direct.labels("r").observe(0.5)
    gaps.flush(0.0)
    gaps.flush(0.0)
    assert _samples(batched) == _samples(direct)
