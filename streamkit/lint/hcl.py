"""A tiny evaluator for the subset of Terraform expressions the kit's modules use.

The one HCL expression evaluator: `streamkit lint` (streamkit/lint/terraform.py) resolves resource
arguments and outputs with it, and tests/static/test_terraform.py evaluates `validation { condition
= ... }` blocks for sample inputs without a terraform binary. The subset on purpose stays small, so conditions stay
readable: numbers, strings, `true`/`false`, lists, `var.x` / `local.x` references, `+ - * /`,
comparisons, `!`, `&&`, `||`, parentheses and the functions `contains`, `min`, `max`.
Anything else raises `Unsupported`, so a condition outside the subset fails the tests loudly instead
of being skipped. Where a terraform binary is installed, tests/static/test_terraform.py also checks
that Terraform itself agrees with this evaluator on every sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Value = Any
Scope = Mapping[str, Mapping[str, Value]]  # {"var": {...}, "local": {...}}


class Unsupported(ValueError):
    """The expression uses syntax outside the supported subset."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/<>!(),\[\].])
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""",
    re.VERBOSE,
)

_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "contains": lambda items, value: value in items,
    "min": min,
    "max": max,
}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Unsupported(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent, lowest precedence first: || , && , comparisons, + -, * /, unary."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.scope = scope

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise Unsupported(f"unexpected end of {self.text!r}")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise Unsupported(f"expected {expected!r}, found {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> Value:
        value = self.disjunction()
        if self.pos != len(self.tokens):
            raise Unsupported(f"unexpected {self.peek()!r} in {self.text!r}")
        return value

    def disjunction(self) -> Value:
        value = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            value = _bool(value) or _bool(right)
        return value

    def conjunction(self) -> Value:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            value = _bool(value) and _bool(right)
        return value

    def comparison(self) -> Value:
        value = self.sum()
        op = self.peek()
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            right = self.sum()
            if op == "==":
                return value == right
            if op == "!=":
                return value != right
            left, right = _number(value), _number(right)
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        return value

    def sum(self) -> Value:
        value = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = _number(self.product())
            value = _number(value) + right if op == "+" else _number(value) - right
        return value

    def product(self) -> Value:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            right = _number(self.unary())
            value = _number(value) * right if op == "*" else _number(value) / right
        return value

    def unary(self) -> Value:
        if self.peek() == "!":
            self.take()
            return not _bool(self.unary())
        if self.peek() == "-":
            self.take()
            return -_number(self.unary())
        return self.primary()

    def primary(self) -> Value:
        kind, text = self.take()
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "string":
            if "${" in text:
                raise Unsupported(f"string templates are not supported: {text}")
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if text == "(":
            value = self.disjunction()
            self.take(")")
            return value
        if text == "[":
            return self.items("]")
        if kind != "name":
            raise Unsupported(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false"):
            return text == "true"
        if self.peek() == "(":
            if text not in _FUNCTIONS:
                raise Unsupported(f"function {text}() is not supported")
            self.take("(")
            return _FUNCTIONS[text](*self.items(")"))
        if text in self.scope and self.peek() == ".":
            self.take(".")
            name = self.take()[1]
            if name not in self.scope[text]:
                raise Unsupported(f"unknown reference {text}.{name}")
            if self.peek() in (".", "["):
                raise Unsupported(f"attribute or index access on {text}.{name} is not supported")
            return self.scope[text][name]
        raise Unsupported(f"unknown name {text!r} in {self.text!r}")

    def items(self, closing: str) -> list[Value]:
        values: list[Value] = []
        while self.peek() != closing:
            values.append(self.disjunction())
            if self.peek() == ",":
                self.take()
            elif self.peek() != closing:
                raise Unsupported(f"expected ',' or {closing!r} in {self.text!r}")
        self.take(closing)
        return values


def _number(value: Value) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unsupported(f"expected a number, got {value!r}")
    return value


def _bool(value: Value) -> bool:
    if not isinstance(value, bool):
        raise Unsupported(f"expected a bool, got {value!r}")
    return value


def evaluate(expression: str, scope: Scope) -> Value:
    """Evaluate one expression (without the `${ }` that python-hcl2 puts around it)."""
    return _Parser(expression, scope).parse()


def resolve(value: Value, scope: Scope) -> Value:
    """A value as python-hcl2 serializes it: literals pass through; a whole `${...}` is evaluated.

    Strings that mix text and interpolations (`"${var.name}-app"`) are returned unevaluated.
    """
    if isinstance(value, str) and value.startswith("${") and value.endswith("}") and "${" not in value[2:]:
        return evaluate(value[2:-1], scope)
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, scope) for key, item in value.items()}
    return value
