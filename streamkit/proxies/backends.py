"""Several app instances behind one proxy: the shipped config with one backend line per instance.

Every shipped config names one app address (the line marked `# streamkit: upstream`). A rolling
restart needs two or more. `backend_overrides` copies each shipped file, repeats the marked
backend (a line, or Envoy's five-line endpoint) once per address, fills in each address through the
same substitution as every other value, and drops the `upstream` mark from the copies. The result
goes to `ProxyDef.start(config_override=...)` with every other value (ports, timeouts) substituted
as usual, so nothing else differs from the shipped config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from streamkit.proxies.base import ProxyDef
from streamkit.proxies.substitute import MARK, SubstitutionError, marked_keys, substitute

# Lines of one backend ending at the marked line (Envoy's `- endpoint:` ... `port_value:`).
BLOCK_LINES = {"envoy": 5}


def _unmark(line: str) -> str:
    """Drop `upstream` from a line's `# streamkit:` mark (the copies hold fixed addresses)."""
    match = MARK.search(line.rstrip("\n"))
    if match is None:
        return line
    keys = [key.strip() for key in match["keys"].split(",") if key.strip() != "upstream"]
    code = line[: match.start()].rstrip()
    return code + (f"  # streamkit: {', '.join(keys)}" if keys else "") + "\n"


def expand(proxy: str, text: str, addresses: Sequence[str]) -> str:
    """The config text with its one marked backend repeated for each address."""
    lines = text.splitlines(keepends=True)
    marked = marked_keys(text).get("upstream", [])
    if len(marked) != 1:
        raise SubstitutionError(f"{proxy}: expected one line marked upstream, found {len(marked)}")
    end = marked[0]  # 1-based: lines[end - 1] is the marked line
    start = end - BLOCK_LINES.get(proxy, 1)
    block = "".join(lines[start:end])
    if proxy == "caddy":  # one `to` line takes every upstream
        first = substitute(block, {"upstream": addresses[0]})
        copies = [first.replace(addresses[0], " ".join(addresses))]
    else:
        copies = []
        for number, address in enumerate(addresses, start=1):
            copy = substitute(block, {"upstream": address})
            if proxy == "haproxy":  # server names must differ
                copy = re.sub(r"\bserver app\b", f"server app{number}", copy)
            copies.append(copy)
    expanded = "".join(_unmark(line) for copy in copies for line in copy.splitlines(keepends=True))
    return "".join(lines[:start]) + expanded + "".join(lines[end:])


def backend_overrides(
    proxy: ProxyDef, workdir: Path, addresses: Sequence[str], sources: Mapping[str, Path] | None = None
) -> dict[str, Path]:
    """Override files (shipped file name -> path) that put every address behind `proxy`.
    `sources` replaces shipped files (a negative control's config) before the expansion."""
    out: dict[str, Path] = {}
    folder = workdir / "backends"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in zip(proxy.configs, proxy.config_paths, strict=True):
        text = (sources or {}).get(name, path).read_text()
        if "upstream" in marked_keys(text):
            text = expand(proxy.name, text, addresses)
        out[name] = folder / name
        out[name].write_text(text)
    return out
