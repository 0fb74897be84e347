"""Typed plugin config, declared once and checked generically, every problem reported.

Each field declares its type, default, required and secret flags, allowed values and a
one-line description.

A plugin declares `class AcmeConfig(IntegrationConfig)` with fields written
`project: str = setting(required=True, help="...")`; the type comes from the annotation
(str, int, float, bool, tuple[str, ...], dict[str, str], dict[str, Any], Any, or `X | None`).
`problems(raw)` lists what is wrong as (path, message) items without raising; `parse(raw)`
gives the typed, read-only object or raises one ConfigurationError naming every problem."""

from __future__ import annotations

import copy
import difflib
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from incman.integrations.errors import ConfigurationError

# `${env:NAME}`: filled in from the environment where the plugin runs (incman.store.catalog).
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (`url`, `body.create`; "" for the whole) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Setting:
    """How one field is declared (see `setting`)."""

    default: Any = None
    required: bool = False
    secret: bool = False
    choices: tuple[Any, ...] = ()
    at_least: float | None = None
    above: float | None = None
    check: Callable[[Any], str | None] | None = None
    help: str = ""
    clean: Callable[[Any], Any] | None = None  # applied to a valid value
    kind: Any = None  # the resolved annotation, filled in by the class


def setting(
    default: Any = None,
    *,
    required: bool = False,
    secret: bool = False,
    choices: Iterable[Any] = (),
    at_least: float | None = None,
    above: float | None = None,
    check: Callable[[Any], str | None] | None = None,
    help: str = "",
    clean: Callable[[Any], Any] | None = None,
) -> Any:
    """Declare a field. `check(value)` returns a message when the value is wrong, `clean`
    normalises a valid one; `secret` fields are write-only over the API and never logged."""
    return Setting(default, required, secret, tuple(choices), at_least, above, check, help, clean)


def http_url(value: Any) -> str | None:
    """A check: an absolute http(s) address."""
    return None if str(value).startswith(("http://", "https://")) else "must be an http(s) URL"


def url_setting(default: str = "", *, required: bool = False, help: str = "") -> Any:
    """An http(s) address, kept without a trailing slash."""
    return setting(
        default, required=required, check=http_url, help=help, clean=lambda v: v.rstrip("/")
    )


def _text(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        return value, None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value), None  # YAML's `resolve_state: 6`
    return None, "must be text"


def _bool(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE, None
    return None, "must be true or false"


def _number(value: Any, integer: bool) -> tuple[Any, str | None]:
    wanted = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"must be {wanted}"
    try:
        number = float(value)
    except ValueError:
        return None, f"must be {wanted}"
    if not math.isfinite(number) or (integer and number != int(number)):
        return None, f"must be {wanted}"
    return (int(number) if integer else number), None


def _text_list(value: Any) -> tuple[Any, str | None]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return None, "must be a list of text"
    out = []
    for item in items:
        text, error = _text(item)
        if error:
            return None, "must be a list of text"
        if text.strip():
            out.append(text.strip())
    return tuple(out), None


def _mapping(value: Any, text_values: bool) -> tuple[Any, str | None]:
    if not isinstance(value, Mapping):
        return None, "must be a mapping" + (" of names to text" if text_values else "")
    if not text_values:
        return dict(value), None
    out = {}
    for key, item in value.items():
        text, error = _text(item)
        if error:
            return None, f"{key}: must be text"
        out[str(key)] = text
    return out, None


def coerce(kind: Any, value: Any) -> tuple[Any, str | None]:
    """`value` as the annotated type, or (None, the reason it cannot be)."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if value is None:
            return None, None
        kind = next(a for a in args if a is not type(None))
    if kind is str:
        return _text(value)
    if kind is bool:
        return _bool(value)
    if kind in (int, float):
        return _number(value, integer=kind is int)
    origin = typing.get_origin(kind)
    if origin is tuple:
        return _text_list(value)
    if origin is dict:
        return _mapping(value, text_values=typing.get_args(kind)[1] is str)
    return value, None  # Any


def _allows(kind: Any, wanted: type) -> bool:
    return kind is wanted or wanted in typing.get_args(kind)


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (known: {', '.join(names)})"


def _limits(spec: Setting, value: Any) -> str | None:
    if spec.choices and value not in spec.choices:
        shown = [repr(c) if not isinstance(c, str) else c for c in spec.choices if c != ""]
        return f"must be one of {', '.join(shown)}, not {value!r}"
    if isinstance(value, int | float):
        if spec.at_least is not None and value < spec.at_least:
            return f"must be >= {spec.at_least:g}"
        if spec.above is not None and value <= spec.above:
            return f"must be > {spec.above:g}"
    return spec.check(value) if spec.check is not None else None


class IntegrationConfig:
    """The fields every integration takes; a plugin's config class adds its own."""

    fields: ClassVar[dict[str, Setting]] = {}

    timeout: float = setting(30.0, above=0, help="seconds one remote call may take")
    verify_tls: bool = setting(True, help="check the remote's TLS certificate")
    ca_bundle: str = setting("", help="CA certificates (a PEM file) to check it with")
    proxy: str = setting("", secret=True, help="HTTP(S) proxy URL (may carry a password)")
    rate_limit: float = setting(0.0, at_least=0, help="requests/s to this remote; 0: no limit")
    rate_burst: int | None = setting(None, at_least=1, help="bucket size (default: rate_limit)")
    breaker_failures: int = setting(
        5, at_least=0, help="consecutive transient failures that open the breaker; 0: none"
    )
    breaker_cooldown: float = setting(30.0, above=0, help="seconds the breaker stays open")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls)

    def __init__(self, **values: Any) -> None:
        for name, spec in self.fields.items():
            value = values[name] if name in values else copy.deepcopy(spec.default)
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        shown = (
            f"{n}={'***' if s.secret else repr(getattr(self, n))}" for n, s in self.fields.items()
        )
        return f"{type(self).__name__}({', '.join(shown)})"

    def check(self) -> Iterable[tuple[str, str]]:
        """Rules across fields, as (path, message); run once every field is valid."""
        return ()

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        return frozenset(n for n, s in cls.fields.items() if s.secret)

    @classmethod
    def problems(cls, raw: Any) -> list[Problem]:
        """Everything wrong with `raw`, without raising. A value holding `${env:NAME}` is
        taken as given (it is filled in where the plugin runs)."""
        return cls._read(raw, env_deferred=True)[1]

    @classmethod
    def parse(cls, raw: Any, plugin: str = "", notification_id: str = "") -> Any:
        """The typed config; ConfigurationError listing every problem otherwise."""
        config, problems = cls._read(raw, env_deferred=False)
        if problems or config is None:
            where = f" (notification {notification_id})" if notification_id else ""
            listed = "; ".join(f"config.{p}" if p.path else str(p) for p in problems)
            raise ConfigurationError(f"{plugin or 'integration'}: {listed}{where}")
        return config

    @classmethod
    def _read(cls, raw: Any, env_deferred: bool) -> tuple[IntegrationConfig | None, list[Problem]]:
        if not isinstance(raw, Mapping):
            return None, [Problem("", "the config must be a mapping")]
        problems = [
            Problem(str(k), _did_you_mean(str(k), cls.fields)) for k in raw if k not in cls.fields
        ]
        values: dict[str, Any] = {}
        for name, spec in cls.fields.items():
            value = raw.get(name)
            if value is None and name in raw and _allows(spec.kind, type(None)):
                values[name] = None  # an explicit null where the type allows one
                continue
            if value is None or (value == "" and not _allows(spec.kind, str)):
                if spec.required and spec.default in (None, "", (), {}):
                    problems.append(Problem(name, "is required"))
                continue
            if env_deferred and isinstance(value, str) and ENV_REF.search(value):
                if _allows(spec.kind, str):
                    values[name] = value
                continue
            typed, error = coerce(spec.kind, value)
            if error is None and spec.required and typed in ("", (), {}):
                error = "may not be empty"
            error = error or _limits(spec, typed)
            if error:
                problems.append(Problem(name, error))
            else:
                values[name] = spec.clean(typed) if spec.clean else typed
        if problems:
            return None, problems
        config = cls(**values)
        problems = [Problem(path, message) for path, message in config.check()]
        return (None if problems else config), problems


def _declare(cls: type[IntegrationConfig]) -> None:
    """Collect the class's settings (inherited ones first), their types from annotations."""
    hints = typing.get_type_hints(cls)
    found = dict(getattr(cls, "fields", {}))
    for name, value in list(vars(cls).items()):
        if isinstance(value, Setting):
            found[name] = replace(value, kind=hints[name])
            setattr(cls, name, value.default)  # type: ignore[misc]
    cls.fields = found


_declare(IntegrationConfig)
