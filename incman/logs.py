"""Logging setup: text or JSON lines carrying the context of the action at hand.

The format is INCMAN_LOG_FORMAT's; the context is the event, incident, notification, action and
correlation key. The API's requests get an access-log shape, and API keys in URLs are redacted.

The context is set once where an action starts (`log_context`) and completed where more
becomes known (`bind_log`); every record logged meanwhile in that thread or task carries it,
without threading it through every call."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_KEY_IN_URL = re.compile(r"(api_key=)[^&\s\"']+", re.IGNORECASE)

# One line per event accepted, incident opened and action given up: what the quiet console
# of `incman run` shows besides warnings and errors.
ACTIVITY = "incman.activity"

# The context keys, in the order the text format prints them.
CONTEXT_KEYS = (
    "eventId",
    "incidentId",
    "incident",
    "notificationId",
    "action",
    "actionId",
    "correlationKey",
)

# Never mutated in place: every change sets a new mapping, so a `reset` undoes it.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "incman_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Records logged inside the block carry `fields` (None values are left out)."""
    token = _context.set({**_context.get(), **_clean(fields)})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log(**fields: Any) -> None:
    """Add fields to the context of the enclosing `log_context` block."""
    _context.set({**_context.get(), **_clean(fields)})


def current_context() -> dict[str, Any]:
    return dict(_context.get())


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def redact(text: str) -> str:
    return _KEY_IN_URL.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # keep the access line's fields apart (the JSON format shows each one)
            record.args = (args[0], args[1], redact(str(args[2])), args[3], args[4])
            return True
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class ContextFilter(logging.Filter):
    """Copy the current action's context onto the record (`record.incman`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "incman"):
            record.incman = _context.get()
        return True


def access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """The fields of a uvicorn access-log record, None for any other record."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, http_version, status = args
    return {
        "client": str(client),
        "method": str(method),
        "path": redact(str(path)),
        "httpVersion": str(http_version),
        "status": int(str(status)) if str(status).isdigit() else status,
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "incman", None) or {})
        access = access_fields(record)
        if access is not None:
            out.update(access)
            out["message"] = redact(out["message"])
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [event=… incident=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "incman", None) or {}
        if context:
            tail = " ".join(f"{k}={context[k]}" for k in CONTEXT_KEYS if k in context)
            first, sep, rest = line.partition("\n")
            line = f"{first} [{tail}]{sep}{rest}"
        return line


def parse_level(name: str | int | None, default: int = logging.INFO) -> int:
    if isinstance(name, int):
        return name
    if not name:
        return default
    level = logging.getLevelName(str(name).upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {name!r}")
    return level


def logging_config(
    fmt: str = "text", level: int | str = logging.INFO, access_log: bool = False
) -> dict[str, Any]:
    """A `logging.config.dictConfig` of one handler on the root logger (uvicorn takes it too,
    so its worker processes log the same way). The activity lines show at INFO whatever
    `level`; uvicorn's own chatter only from WARNING, its access lines when `access_log`."""
    lvl = parse_level(level)
    formatter = "incman.logs.JsonFormatter" if fmt == "json" else "incman.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "incman.logs.RedactingFilter"},
            "context": {"()": "incman.logs.ContextFilter"},
        },
        "formatters": {"incman": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "incman",
                "filters": ["redact", "context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["console"], "level": lvl},
        "loggers": {
            ACTIVITY: {"level": min(lvl, logging.INFO)},
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {
                "level": max(lvl, logging.WARNING),
                "handlers": [],
                "propagate": True,
            },
            "uvicorn.access": {
                "level": logging.INFO if access_log else logging.WARNING,
                "handlers": [],
                "propagate": True,
            },
        },
    }


def setup_logging(
    fmt: str = "text", level: int | str = logging.INFO, access_log: bool = False
) -> None:
    """Configure this process's logging (see `logging_config`)."""
    logging.config.dictConfig(logging_config(fmt, level, access_log))
