"""AR System qualifications as the Remedy simulator reads them.

`'Field Name' = "text"`, the operators = != < > <= >= LIKE (with % wildcards), AND, OR, NOT,
parentheses, `$NULL$`; a doubled double quote inside a string is one. A field the form lacks
is an error.

unverified: the doubled-quote escape, and that AR refuses an unknown field name here."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Test = Callable[[dict[str, Any]], bool]
TOKEN = re.compile(
    r"""\s*(?:
        (?P<field>'(?:[^']|'')*')
      | (?P<string>"(?:[^"]|"")*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<null>\$NULL\$)
      | (?P<op><=|>=|!=|=|<|>|\(|\))
      | (?P<word>[A-Za-z]+)
    )""",
    re.X,
)
COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a is not None and b is not None and a < b,
    ">": lambda a, b: a is not None and b is not None and a > b,
    "<=": lambda a, b: a is not None and b is not None and a <= b,
    ">=": lambda a, b: a is not None and b is not None and a >= b,
}


class QualificationError(ValueError):
    """The qualification cannot be read (or names a field the form lacks)."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        found = TOKEN.match(text, pos)
        if not found:
            raise QualificationError(f"cannot read the qualification at {text[pos : pos + 20]!r}")
        kind = found.lastgroup or ""
        raw = found.group(kind)
        if kind == "field":
            out.append(("field", raw[1:-1].replace("''", "'")))
        elif kind == "string":
            out.append(("value", raw[1:-1].replace('""', '"')))
        elif kind == "number":
            out.append(("value", float(raw) if "." in raw else int(raw)))
        elif kind == "null":
            out.append(("value", None))
        elif kind == "word" and raw.upper() in ("AND", "OR", "NOT", "LIKE"):
            out.append(("op", raw.upper()))
        elif kind == "op":
            out.append(("op", raw))
        else:
            raise QualificationError(f"unexpected {raw!r} in the qualification")
        pos = found.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], fields: set[str]) -> None:
        self.tokens, self.fields, self.pos = tokens, fields, 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def take(self, kind: str, value: Any = None) -> Any:
        got = self.peek()
        if got[0] != kind or (value is not None and got[1] != value):
            raise QualificationError(f"expected {value or kind}, found {got[1]!r}")
        self.pos += 1
        return got[1]

    def either(self) -> Test:
        parts = [self.both()]
        while self.peek() == ("op", "OR"):
            self.pos += 1
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def both(self) -> Test:
        parts = [self.single()]
        while self.peek() == ("op", "AND"):
            self.pos += 1
            parts.append(self.single())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def single(self) -> Test:
        if self.peek() == ("op", "NOT"):
            self.pos += 1
            inner = self.single()
            return lambda r: not inner(r)
        if self.peek() == ("op", "("):
            self.pos += 1
            inner = self.either()
            self.take("op", ")")
            return inner
        field = self.take("field")
        if field not in self.fields:
            raise QualificationError(f"field {field!r} does not exist on the form")
        op = self.take("op")
        value = self.take("value")
        if op == "LIKE":
            pattern = re.compile(
                "".join(".*" if c == "%" else re.escape(c) for c in str(value)), re.S
            )
            return lambda r: r.get(field) is not None and bool(pattern.fullmatch(str(r[field])))
        if op not in COMPARE:
            raise QualificationError(f"unexpected operator {op!r}")
        compare = COMPARE[op]
        return lambda r: bool(compare(r.get(field), value))


def parse_qualification(text: str, fields: set[str]) -> Test:
    """A test of one entry's values; QualificationError when the text cannot be read."""
    parser = _Parser(_tokens(text), fields)
    test = parser.either()
    if parser.peek()[0] != "end":
        raise QualificationError(f"unexpected {parser.peek()[1]!r} after the qualification")
    return test
