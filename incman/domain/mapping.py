"""Field mapping: `fieldname, value` lines that override an integration's default fields."""

# The contexts are re-exported: callers import them from here.

from __future__ import annotations

import ast
import copy
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import jmespath
from jmespath.exceptions import JMESPathError
from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes, safe_mult

from incman.domain.mapping_context import REMOVE_FIELD, ContextView, DmdView

MAX_EXPRESSION_LENGTH = 2_000
MAX_VALUE_LENGTH = 65_536
CONTEXT_NAMES = (
    "evt",
    "dev",
    "component",
    "dmd",
    "urls",
    "defaultFields",
    "mappingUtils",
    "removeField",
)
_DOCUMENT_NAMES = ("evt", "dev", "component", "urls", "defaultFields")  # for ${jmespath: ...}
# methods that build huge values from small arguments; constructs outside the contract
_BLOCKED_ATTRS = frozenset(
    ("ljust", "rjust", "center", "zfill", "expandtabs")
    + ("translate", "maketrans", "encode", "to_bytes")
)
_BLOCKED_NODES = (ast.JoinedStr, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class MappingError(ValueError):
    """A bad field mapping or a failed evaluation; `field` is None when no field is known."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"field {field!r}: {message}" if field else message)
        self.field = field
        self.message = message


# -- grammar ---------------------------------------------------------------------------------
class _Token(NamedTuple):
    kind: str  # "text", "path", "python" or "jmespath"
    text: str  # the literal text or the expression
    source: str  # as written, for messages


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _find_end(value: str, start: int) -> int:
    """Index of the '}' closing the '${' at `start`; skips quoted text and nested braces."""
    depth, quote, i = 0, "", start + 1
    while i < len(value):
        char = value[i]
        if quote:
            i += char == "\\"
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unterminated '${{' in {_short(value[start:])!r}")


@lru_cache(maxsize=512)
def _check_python(expr: str) -> ast.expr:
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid python expression: {exc.msg}") from None
    for node in ast.walk(tree):
        name = next((getattr(node, a) for a in ("id", "attr", "arg") if hasattr(node, a)), None)
        bad = isinstance(name, str) and (name.startswith("_") or name in _BLOCKED_ATTRS)
        if bad or isinstance(node, _BLOCKED_NODES):
            raise ValueError(f"{name if bad else type(node).__name__!r} is not allowed")
    return tree.body


def _make_token(source: str) -> _Token:
    inner = source[2:-1].strip()
    kind, colon, expr = (part.strip() for part in inner.partition(":"))
    if colon and kind in ("python", "jmespath"):
        if not expr:
            raise ValueError("empty expression")
        if len(expr) > MAX_EXPRESSION_LENGTH:
            raise ValueError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
        if kind == "python":
            _check_python(expr)
        else:
            try:
                jmespath.compile(expr)
            except JMESPathError as exc:
                raise ValueError(f"invalid jmespath: {' '.join(str(exc).split())}") from None
        return _Token(kind, expr, source)
    steps = [step.strip() for step in inner.split("/")]
    if not all(steps) or any(step.startswith("_") for step in steps):
        raise ValueError("invalid path")
    if steps[0] not in CONTEXT_NAMES:
        raise ValueError(f"unknown name {steps[0]!r} (known: {', '.join(CONTEXT_NAMES)})")
    return _Token("path", "/".join(steps), source)


@lru_cache(maxsize=512)
def _tokenize(value: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    pos = 0
    while (start := value.find("${", pos)) >= 0:
        end = _find_end(value, start)
        if start > pos:
            tokens.append(_Token("text", value[pos:start], value[pos:start]))
        try:
            tokens.append(_make_token(value[start : end + 1]))
        except ValueError as exc:
            raise ValueError(f"{_short(value[start : end + 1])}: {exc}") from None
        pos = end + 1
    if pos < len(value):
        tokens.append(_Token("text", value[pos:], value[pos:]))
    return tuple(tokens)


def parse_field_mapping(text: str) -> list[tuple[str, str]]:
    """The (field, value) pairs in order; MappingError names the first bad line."""
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        field, comma, value = (part.strip() for part in stripped.partition(","))
        if not comma:
            raise MappingError(None, f"line {number}: expected 'fieldname, value', no comma")
        if not field:
            raise MappingError(None, f"line {number}: empty field name")
        try:
            _tokenize(value)
        except ValueError as exc:
            raise MappingError(field, f"line {number}: {exc}") from None
        pairs.append((field, value))
    return pairs


# -- evaluation ------------------------------------------------------------------------------
def _hasattr(obj: object, name: str) -> bool:
    if not isinstance(name, str) or name.startswith("_"):
        raise ValueError(f"hasattr: {name!r} is not allowed")
    return hasattr(obj, name)


def _multiply(a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        raise TypeError("repeating a list is not allowed")
    return safe_mult(a, b)


def _modulo(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise TypeError("'%' formatting is not allowed")
    return a % b


def _power(a: Any, b: Any) -> Any:
    if abs(a) > 1_000_000 or abs(b) > 100:
        raise ValueError(f"{a} ** {b} is too large")
    return a**b


def _bounded(method: Callable[..., Any]) -> Callable[..., Any]:
    """`join`/`replace` of a str, refusing results longer than MAX_VALUE_LENGTH."""
    text = method.__self__  # type: ignore[attr-defined]

    def call(*args: Any) -> Any:
        if method.__name__ == "join":
            args = (list(args[0]),)
            size = sum(len(item) for item in args[0]) + len(text) * len(args[0])
        else:
            size = len(text) + text.count(args[0]) * max(0, len(args[1]) - len(args[0]))
        if size > MAX_VALUE_LENGTH:
            raise ValueError(f"{method.__name__}() would exceed {MAX_VALUE_LENGTH} characters")
        return method(*args)

    return call


class _Evaluator(EvalWithCompoundTypes):
    def _eval_attribute(self, node: ast.Attribute) -> Any:
        item = super()._eval_attribute(node)
        owner = getattr(item, "__self__", None)
        growing = node.attr in ("join", "replace") and isinstance(owner, (str, bytes))
        return _bounded(item) if growing else item


_OPERATORS = {**DEFAULT_OPERATORS, ast.Mult: _multiply, ast.Mod: _modulo, ast.Pow: _power}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    # int/str/float wrapped so that their type attributes (str.join, ...) stay out of reach
    "int": lambda *args: int(*args),
    "str": lambda *args: str(*args),
    "float": lambda *args: float(*args),
    "len": len,
    "hasattr": _hasattr,
    "min": min,
    "max": max,
}


def _eval_python(expr: str, context: dict[str, object]) -> Any:
    names = {key: value for key, value in context.items() if not key.startswith("_")}
    evaluator = _Evaluator(operators=_OPERATORS, names=names)
    evaluator.functions = dict(_FUNCTIONS)  # replaces the list/tuple/dict/set it adds
    return evaluator.eval(expr, previously_parsed=_check_python(expr))


def _eval_jmespath(expr: str, context: dict[str, object]) -> Any:
    document = {name: context.get(name) for name in _DOCUMENT_NAMES}
    document = {k: v._data if isinstance(v, ContextView) else v for k, v in document.items()}
    dmd = context.get("dmd")
    if isinstance(dmd, DmdView) and "dmd" in expr:  # the inventory is copied only when asked
        document["dmd"] = dmd.document()
    return jmespath.search(expr, document)


def _eval_path(path: str, context: dict[str, object]) -> Any:
    root, *steps = path.split("/")
    if root not in context:
        raise LookupError(f"unknown name {root!r}")
    current: Any = context[root]
    for step in steps:
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, (list, tuple)) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        elif isinstance(current, ContextView) and hasattr(current, step):
            current = getattr(current, step)
        else:
            raise LookupError(f"{path}: nothing named {step!r}")
        if callable(current):
            current = current()
    return current


_EVALUATORS = {"path": _eval_path, "python": _eval_python, "jmespath": _eval_jmespath}


def _evaluate(field: str, token: _Token, context: dict[str, object]) -> Any:
    try:
        result = _EVALUATORS[token.kind](token.text, context)
    except Exception as exc:  # every failure of a user's expression is a MappingError
        reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        reason = _short(reason or type(exc).__name__, 300)
        raise MappingError(field, f"{_short(token.source)}: {reason}") from exc
    if result is not REMOVE_FIELD:
        try:
            size = len(str(result))
        except ValueError as exc:  # an integer past Python's conversion limit (4,300 digits)
            limit = sys.get_int_max_str_digits()
            reason = f"an integer of more than {limit} digits"
            raise MappingError(field, f"{_short(token.source)}: {reason}") from exc
        if size > MAX_VALUE_LENGTH:
            where = _short(token.source)
            raise MappingError(field, f"{where}: longer than {MAX_VALUE_LENGTH} characters")
    return result


def _field_value(field: str, value: str, context: dict[str, object]) -> Any:
    tokens = _tokenize(value)
    if len(tokens) == 1 and tokens[0].kind in ("python", "jmespath"):
        result = _evaluate(field, tokens[0], context)
        return "" if result is None else result
    parts: list[str] = []
    for token in tokens:
        result = token.text if token.kind == "text" else _evaluate(field, token, context)
        if result is REMOVE_FIELD:
            return REMOVE_FIELD
        parts.append("" if result is None else str(result))
    if sum(map(len, parts)) > MAX_VALUE_LENGTH:
        raise MappingError(field, f"value longer than {MAX_VALUE_LENGTH} characters")
    return "".join(parts)


def apply_field_mapping(
    defaults: dict[str, Any], mapping_text: str, context: dict[str, object]
) -> dict[str, Any]:
    """A new dict: `defaults` with the mapping's lines applied in order (set, add or remove)."""
    fields = dict(defaults)
    base = {"defaultFields": copy.deepcopy(defaults), **context}
    for field, value in parse_field_mapping(mapping_text):
        # a fresh copy per line: no expression can change what later lines see
        result = _field_value(field, value, copy.deepcopy(base))
        if result is REMOVE_FIELD:
            fields.pop(field, None)
        else:
            fields[field] = result
    return fields
