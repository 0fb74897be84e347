"""Reading JSON bodies: size limits, malformed JSON and clear errors.

Size limits answer 413; malformed JSON 400 (including NaN/Infinity and nesting past
MAX_DEPTH); the clear errors 422."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from incman.domain.event import Checked
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


# A \u escape that decodes to NUL or to a surrogate: without one, no string of the parsed body
# can hold a character the database refuses (raw control characters and invalid UTF-8 are
# not JSON at all), so the per-string checks can be skipped.
_MAYBE_BAD_TEXT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


@dataclass(frozen=True)
class Body:
    """A parsed JSON body and what reading it learned."""

    doc: Any
    size: int
    depth: int
    clean_text: bool

    @property
    def checked(self) -> Checked:
        return Checked(clean_text=self.clean_text, depth=self.depth, size=self.size)


async def read_json(request: Request, limit: int = BATCH_LIMIT) -> tuple[Any, int]:
    """The parsed body and its size; 413 past `limit`, 400 when it is not JSON."""
    body = await read_body(request, limit)
    return body.doc, body.size


async def read_body(request: Request, limit: int = BATCH_LIMIT) -> Body:
    """The parsed body; 413 past `limit`, 400 when it is not JSON (NaN and Infinity are not;
    nor a lone surrogate), or nests deeper than MAX_DEPTH."""
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
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise ApiError(400, "malformed JSON", "the body nests too deeply") from exc
        raise ApiError(400, "malformed JSON", f"the body is not valid JSON: {exc}") from exc
    depth = nesting_depth(doc, MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise ApiError(
            400, "malformed JSON", f"the body nests objects and lists deeper than {MAX_DEPTH}"
        )
    return Body(doc, len(raw), depth, _MAYBE_BAD_TEXT.search(raw) is None)


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")
