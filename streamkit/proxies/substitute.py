"""The one documented way to change a shipped config: values marked `# streamkit: KEY`.

A shipped config is the tested config. The only values a test (or a user's deploy script) may change
are the ones the file marks with a trailing comment on the same line::

    listen 127.0.0.1:8080;               # streamkit: listen
    proxy_read_timeout 3600s;            # streamkit: read_timeout
    tls /etc/caddy/cert.pem /etc/caddy/key.pem  # streamkit: cert, key

`substitute(text, {"listen": "127.0.0.1:18080", "read_timeout": "3s"})` replaces exactly one token per
key on each line marked with that key. What counts as a token depends on the key:

- keys ending in `port`: an integer (`8000`);
- `listen`, `tls_listen`, `upstream`: a `host:port` (`127.0.0.1:8000`, also inside a URL), or a bare
  port when the line holds no `host:port`;
- `cert`, `key` and keys ending in `_file`: a path (`/etc/ssl/cert.pem`);
- every other key: a duration (`3600s`, `1h`, `500ms`, `1h30m`, `60`).

A line may mark several keys (`# streamkit: cert, key`): the n-th key names the n-th token of its kind.
Anything ambiguous is an error, never a silent no-op: a line with zero or too many candidate tokens,
or a requested key that the file does not mark at all. A test can therefore never believe it shortened
a timeout that it did not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

MARK = re.compile(r"#\s*streamkit:\s*(?P<keys>[A-Za-z_][\w-]*(?:\s*,\s*[A-Za-z_][\w-]*)*)\s*$")
ADDRESS_KEYS = frozenset({"listen", "tls_listen", "upstream"})
PATH_KEYS = frozenset({"cert", "key"})

_HOST_PORT = re.compile(r"(?<![\w.:-])(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]|[\w-]+)?:\d{1,5}(?![\w.:])")
_INTEGER = re.compile(r"(?<![\w.:/-])\d+(?![\w.:/])")
_DURATION = re.compile(r"(?<![\w.:/-])(?:(?:\d+(?:\.\d+)?(?:ms|us|µs|ns|s|m|h|d))+|\d+(?:\.\d+)?)(?![\w.:/])")
_PATH = re.compile(r"(?<![\w./-])\.{0,2}/?[\w.-]*(?:/[\w.-]+)+|(?<![\w./-])[\w.-]+\.(?:pem|crt|key)(?![\w.])")

Value = str | int | float


class SubstitutionError(ValueError):
    """A marked value could not be replaced unambiguously."""


def kind(key: str) -> str:
    """`port`, `address`, `path` or `duration`: which token a key's value replaces."""
    if key in ADDRESS_KEYS:
        return "address"
    if key.endswith("port"):
        return "port"
    if key in PATH_KEYS or key.endswith("_file"):
        return "path"
    return "duration"


def marked_keys(text: str) -> dict[str, list[int]]:
    """Every key the text marks, with the (1-based) line numbers that mark it."""
    found: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = MARK.search(line)
        if match:
            for key in _split_keys(match["keys"]):
                found.setdefault(key, []).append(number)
    return found


def substitute(text: str, values: Mapping[str, Value]) -> str:
    """Replace the marked tokens named in `values`; raise SubstitutionError on anything ambiguous."""
    unknown = sorted(set(values) - set(marked_keys(text)))
    if unknown:
        raise SubstitutionError(f"the config marks no line with '# streamkit: {', '.join(unknown)}'")
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = MARK.search(line)
        if match:
            keys = _split_keys(match["keys"])
            if any(key in values for key in keys):
                code, comment = line[: match.start()], line[match.start() :]
                lines[index] = _replace_line(code, keys, values, index + 1) + comment
    return "".join(lines)


def substitute_file(source: Path, target: Path, values: Mapping[str, Value]) -> Path:
    """Write `source` with `values` substituted to `target` (only the keys `source` marks)."""
    text = source.read_text()
    wanted = {key: value for key, value in values.items() if key in marked_keys(text)}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(substitute(text, wanted))
    return target


def _split_keys(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",")]


def _replace_line(code: str, keys: list[str], values: Mapping[str, Value], number: int) -> str:
    # Keys of one kind on a line name that kind's tokens in order; the replacements go right to left
    # so that earlier offsets stay valid.
    edits: list[tuple[int, int, str]] = []
    for token_kind in dict.fromkeys(kind(key) for key in keys):
        same_kind = [key for key in keys if kind(key) == token_kind]
        spans = _candidates(code, token_kind)
        if len(spans) != len(same_kind):
            raise SubstitutionError(
                f"line {number}: {len(spans)} candidate {token_kind} token(s) for key(s) "
                f"{', '.join(same_kind)} in {code.strip()!r} (need exactly {len(same_kind)})"
            )
        for key, (start, end) in zip(same_kind, spans, strict=True):
            if key in values:
                edits.append((start, end, _format(token_kind, code[start:end], values[key], key)))
    for start, end, new in sorted(edits, reverse=True):
        code = code[:start] + new + code[end:]
    return code


def _candidates(code: str, token_kind: str) -> list[tuple[int, int]]:
    if token_kind == "address":
        spans = [m.span() for m in _HOST_PORT.finditer(code)]
        return spans or [m.span() for m in _INTEGER.finditer(code)]
    pattern = {"port": _INTEGER, "path": _PATH, "duration": _DURATION}[token_kind]
    return [m.span() for m in pattern.finditer(code)]


def _format(token_kind: str, old: str, value: Value, key: str) -> str:
    text = str(value)
    if token_kind == "port":
        if not text.isdigit():
            raise SubstitutionError(f"{key}: a port must be an integer, got {value!r}")
        return text
    if token_kind == "address":
        host, _, port = text.rpartition(":")
        if not port.isdigit():
            raise SubstitutionError(f"{key}: expected host:port or a port, got {value!r}")
        if ":" not in old:  # the line holds a bare port
            return port
        if old.startswith(":"):  # a port on every host (Caddy's `:8080`) stays host-less
            return ":" + port
        if not host:  # a bare port replaces only the port of host:port
            return old.rpartition(":")[0] + ":" + port
        return text
    if token_kind == "duration" and isinstance(value, int | float) and not isinstance(value, bool):
        return _duration(float(value), unitless=old.replace(".", "").isdigit())
    return text


def _duration(seconds: float, unitless: bool) -> str:
    """Seconds in the style of the token it replaces: unitless stays unitless, else `3s` / `500ms`."""
    if unitless:
        return str(int(seconds)) if seconds.is_integer() else str(seconds)
    return f"{int(seconds)}s" if seconds.is_integer() else f"{round(seconds * 1000)}ms"
