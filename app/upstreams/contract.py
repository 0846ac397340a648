"""What the relay forwards, sets, changes or withholds: one table, rendered into the README
("Relay a real model") and checked row by row by tests/relay/test_contract.py.

Each row names its check; the test fails when a row has no check or a check no row, and when the
README's table differs from `markdown()`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Client headers passed on to the upstream as they came (W3C trace context). The request id goes
# as `X-Request-ID` (the client's when well formed, else the app's own).
FORWARDED_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class Row:
    part: str  # request body, request header, stream, response, error, models
    item: str
    action: str  # forwarded, set, changed, withheld, not forwarded
    detail: str
    check: str  # the name of its check in tests/relay/test_contract.py


ROWS: tuple[Row, ...] = ()


def markdown() -> str:
    lines = ["| Part | Item | Relay | Detail |", "|---|---|---|---|"]
    lines += [f"| {r.part} | {r.item} | {r.action} | {r.detail} |" for r in ROWS]
    return "\n".join(lines)
