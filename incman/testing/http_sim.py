"""A small JSON incident service for the generic HTTP integration.

It is what a home-grown ticketing endpoint or webhook receiver looks like.

- `POST /incidents` (any JSON object) → 201 `{"id", "number", "status": "open", "url", ...}`;
  a `correlationKey` in the body is kept for search.
- `GET /incidents?correlationKey=K` → `{"items": [...]}`; `GET /incidents/<id>` → the incident.
- `POST|PATCH|PUT /incidents/<id>` → merge: `status`, `assignee`, `note` (appended to notes),
  anything else into `fields`.
- `POST /incidents/<id>/notes` `{"text"}` → 201.
Auth: `Authorization: Bearer <token>` when the simulator has a token (default `http-sim-token`).
Errors: `{"error": "..."}`. A person's change: `POST /_sim/records/<id>`
`{"status": "resolved"}`."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from incman.testing.simbase import (
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    bearer_token,
)

DEFAULT_TOKEN = "http-sim-token"
STATUSES = ("open", "assigned", "resolved", "closed")


@dataclass
class Record:
    id: str
    number: str
    fields: dict[str, Any]
    correlation_key: str = ""
    status: str = "open"
    assignee: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)


class HttpSim(SimApp):
    """The records of one incident service."""

    name = "http"

    def __init__(self, token: str | None = DEFAULT_TOKEN) -> None:
        """`token`: the Bearer token required; empty or None: no auth."""
        super().__init__()
        self.token = token or None
        self.records: dict[str, Record] = {}
        self._next = 1

    def describe(self) -> str:
        auth = f"header Authorization: Bearer {self.token}" if self.token else "no auth"
        return (
            f"HTTP incident service simulator: url {self.base_url}/incidents, "
            f"status_url {self.base_url}/incidents/${{incident/remoteId}}, {auth}"
        )

    # -- simbase hooks ---------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        return self.token is None or bearer_token(req.headers) == self.token

    def error(self, status: int, message: str) -> SimResponse:
        return SimResponse(status, {"error": message})

    def reset(self) -> None:
        self.records.clear()
        self._next = 1

    def state(self) -> dict[str, Any]:
        return {"incidents": [self.render(r) for r in self.records.values()]}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r.id,
                number=r.number,
                keys=[r.correlation_key],
                state=r.status,
                assignee=r.assignee,
                notes=[str(n["text"]) for n in r.notes],
            )
            for r in self.records.values()
        ]

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        return self.render(self._merge(self._get(record_id), changes, author="person"))

    def handle(self, req: SimRequest) -> SimResponse:
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != "incidents" or len(parts) > 3:
            raise SimError(404, {"error": f"no resource {req.path}"})
        if len(parts) == 1:
            if req.method == "POST":
                return SimResponse(201, self.render(self._create(req.body)))
            if req.method == "GET":
                return SimResponse(200, self._search(req.query))
        elif len(parts) == 2:
            record = self._get(parts[1])
            if req.method == "GET":
                return SimResponse(200, self.render(record))
            if req.method in ("POST", "PATCH", "PUT"):
                return SimResponse(200, self.render(self._merge(record, _object(req.body))))
        elif parts[2] == "notes" and req.method == "POST":
            record = self._get(parts[1])
            text = _object(req.body).get("text")
            if not isinstance(text, str) or not text:
                raise SimError(400, {"error": "a note needs a non-empty 'text'"})
            self._merge(record, {"note": text})
            return SimResponse(201, record.notes[-1])
        raise SimError(405, {"error": f"{req.method} is not allowed on {req.path}"})

    # -- records ---------------------------------------------------------------------------
    def render(self, record: Record) -> dict[str, Any]:
        return {
            "id": record.id,
            "number": record.number,
            "status": record.status,
            "assignee": record.assignee,
            "correlationKey": record.correlation_key,
            "url": f"{self.base_url}/incidents/{record.id}",
            "fields": copy.deepcopy(record.fields),
            "notes": list(record.notes),
            "created": record.created,
            "updated": record.updated,
        }

    def _create(self, body: Any) -> Record:
        data = _object(body)
        record = Record(
            id=f"r{self._next}",
            number=f"HTTP{self._next:06d}",
            fields=copy.deepcopy(data),
            correlation_key=str(data.get("correlationKey") or ""),
        )
        self._next += 1
        self.records[record.id] = record
        return record

    def _get(self, record_id: str) -> Record:
        record = self.records.get(record_id)
        if record is None:
            raise SimError(404, {"error": f"no incident {record_id}"})
        return record

    def _search(self, query: dict[str, str]) -> dict[str, Any]:
        items = [
            self.render(r)
            for r in self.records.values()
            if all(str(self.render(r).get(k)) == v for k, v in query.items())
        ]
        return {"items": items, "count": len(items)}

    def _merge(self, record: Record, changes: dict[str, Any], author: str = "incman") -> Record:
        changes = dict(changes)
        if "status" in changes:
            status = str(changes.pop("status")).lower()
            if status not in STATUSES:
                raise SimError(400, {"error": f"status must be one of {', '.join(STATUSES)}"})
            record.status = status
        if "assignee" in changes:
            record.assignee = str(changes.pop("assignee") or "")
        for key in ("note", "comment"):
            if changes.get(key):
                record.notes.append(
                    {"text": str(changes.pop(key)), "author": author, "at": time.time()}
                )
            changes.pop(key, None)
        record.fields.update(changes)
        record.updated = time.time()
        return record


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SimError(400, {"error": "the body must be a JSON object"})
    return body
