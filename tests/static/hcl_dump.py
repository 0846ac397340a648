"""Parse .tf files with python-hcl2 and print them as one JSON object: {path: parsed}.

Runs inside the separate python-hcl2 virtualenv (.venv-hcl2, made by mk/terraform.mk), because
checkov's bc-python-hcl2 installs the same top-level `hcl2` package and would shadow it.
Usage: .venv-hcl2/bin/python tests/static/hcl_dump.py FILE.tf...
"""

from __future__ import annotations

import json
import sys

import hcl2

# python-hcl2 8.x keeps the quotes of strings and wraps blocks unless told otherwise.
OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def main(paths: list[str]) -> int:
    parsed = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            parsed[path] = hcl2.load(handle, serialization_options=OPTIONS)
    json.dump(parsed, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
