"""Reading JSON bodies: size limits (413), malformed JSON (400: including NaN/Infinity and
nesting past MAX_DEPTH), clear errors (422)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from incman.domain.text import nesting_depth

SINGLE_LIMIT = 1 << 20  # 1 MiB for one event
BATCH_LIMIT = 16 << 20  # 16 MiB for a batch
# Levels of objects and lists in a body: every reader after the parser (text checks, event
# details, the database) can walk it without running out of stack.
MAX_DEPTH = 100


# The database cannot be reached: never an item's own fault, so batch endpoints let it through
# to the 503 the application answers (the sender retries) instead of failing items one by one.
DATABASE_DOWN = (OperationalError, InterfaceError)


class ApiError(Exception):
    """An error answer with a reason (and the field at fault, when there is one)."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        field: str | None = None,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.field = field
        self.problems = problems  # every {path, message} when there are several

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.error, "detail": self.reason}
        if self.field:
            body["field"] = self.field
        if self.problems:
            body["problems"] = self.problems
        return JSONResponse(body, status_code=self.status)


async def read_json(request: Request, limit: int = BATCH_LIMIT) -> tuple[Any, int]:
    """The parsed body and its size; 413 past `limit`, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload too large", f"body is over {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload too large", f"body is over {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "malformed JSON", "the body is empty")
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ApiError(400, "malformed JSON", "the body nests too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed JSON", f"the body is not valid JSON: {exc}") from exc
    if nesting_depth(doc, MAX_DEPTH) > MAX_DEPTH:
        raise ApiError(
            400, "malformed JSON", f"the body nests objects and lists deeper than {MAX_DEPTH}"
        )
    return doc, len(raw)


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON (and no database column takes them)."""
    raise ValueError(f"{name} is not a JSON value")


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")
