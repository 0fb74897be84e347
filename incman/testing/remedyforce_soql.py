"""SOQL as the Remedyforce simulator reads it.

`SELECT a, b, Owner.Username FROM Object [WHERE …] [ORDER BY f [ASC|DESC]] [LIMIT n]`;
conditions `f = 'x'`, `!=`, `IN ('a', 'b')`, `NOT IN`, with AND, OR, NOT and parentheses;
strings in single quotes with backslash escapes; true, false, null. An unknown object or field
is refused with Salesforce's codes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Related = Callable[[dict[str, Any], str], Any]
Test = Callable[[dict[str, Any], Related], bool]
QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w.]+)(?:\s+(?:ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.I | re.S,
)
TOKEN = re.compile(
    r"""\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\(|\)|,)|(?P<word>[\w.]+))""", re.S
)
RELATED = frozenset({"Owner.Username", "Owner.Name"})


class SoqlError(ValueError):
    """A query Salesforce would refuse; `code` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Query:
    sobject: str
    fields: list[str]
    test: Test
    order: str | None
    limit: int | None


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str) and len(wanted) == 15:
        return actual[:15] == wanted  # a 15-character Id matches its 18-character form
    return bool(actual == wanted)


class _Where:
    def __init__(self, text: str, check: Callable[[str], None]) -> None:
        self.tokens = self._tokens(text)
        self.check, self.pos = check, 0

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        pos = 0
        while text[pos:].strip():
            found = TOKEN.match(text, pos)
            if not found:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: {text[pos : pos + 20]!r}")
            if found["string"] is not None:
                out.append(("value", re.sub(r"\\(.)", r"\1", found["string"][1:-1])))
            elif found["op"] is not None:
                out.append(("op", found["op"]))
            else:
                word = found["word"]
                upper = word.upper()
                if upper in ("AND", "OR", "NOT", "IN"):
                    out.append(("op", upper))
                elif upper in ("TRUE", "FALSE", "NULL"):
                    out.append(("value", {"TRUE": True, "FALSE": False, "NULL": None}[upper]))
                elif re.fullmatch(r"-?\d+(?:\.\d+)?", word):
                    out.append(("value", float(word) if "." in word else int(word)))
                else:
                    out.append(("field", word))
            pos = found.end()
        return out

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def take(self, kind: str, value: Any = None) -> Any:
        got = self.peek()
        if got[0] != kind or (value is not None and got[1] != value):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {got[1]!r}")
        self.pos += 1
        return got[1]

    def either(self) -> Test:
        parts = [self.both()]
        while self.peek() == ("op", "OR"):
            self.pos += 1
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda r, rel: any(p(r, rel) for p in parts))

    def both(self) -> Test:
        parts = [self.single()]
        while self.peek() == ("op", "AND"):
            self.pos += 1
            parts.append(self.single())
        return parts[0] if len(parts) == 1 else (lambda r, rel: all(p(r, rel) for p in parts))

    def single(self) -> Test:
        if self.peek() == ("op", "NOT"):
            self.pos += 1
            inner = self.single()
            return lambda r, rel: not inner(r, rel)
        if self.peek() == ("op", "("):
            self.pos += 1
            inner = self.either()
            self.take("op", ")")
            return inner
        field = self.take("field")
        self.check(field)
        negate = self.peek() == ("op", "NOT")
        if negate:
            self.pos += 1
        op = self.take("op")
        if op == "IN":
            values = self._list()
            return lambda r, rel: any(_same(rel(r, field), v) for v in values) != negate
        if negate or op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {op!r}")
        value = self.take("value")
        if op == "=":
            return lambda r, rel: _same(rel(r, field), value)
        return lambda r, rel: not _same(rel(r, field), value)

    def _list(self) -> list[Any]:
        self.take("op", "(")
        values = [self.take("value")]
        while self.peek() == ("op", ","):
            self.pos += 1
            values.append(self.take("value"))
        self.take("op", ")")
        return values


def parse_soql(text: str, fields_of: Callable[[str], set[str] | None]) -> Query:
    """The query; `fields_of(object)` names an object's fields (None: no such object)."""
    found = QUERY.match(text)
    if not found:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {text[:40]!r}")
    sobject = found["obj"]
    known = fields_of(sobject)
    if known is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{sobject}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name.",
        )

    def check(field: str) -> None:
        if field not in known and not (field in RELATED and "OwnerId" in known):
            raise SoqlError(
                "INVALID_FIELD",
                f"\n{text}\n^\nERROR at Row:1:Column:1\nNo such column '{field}' on entity "
                f"'{sobject}'. If you are attempting to use a custom field, be sure to append "
                "the '__c' after the custom field name.",
            )

    fields = [f.strip() for f in found["fields"].split(",") if f.strip()]
    for field in fields:
        check(field)
    where = _Where(found["where"], check) if found["where"] else None
    test: Test = where.either() if where else (lambda r, rel: True)
    if where and where.peek()[0] != "end":
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {where.peek()[1]!r}")
    if found["order"]:
        check(found["order"])
    limit = int(found["limit"]) if found["limit"] else None
    return Query(sobject, fields, test, found["order"], limit)
