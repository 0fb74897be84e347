"""A PagerDuty Events API v2 simulator: `POST /v2/enqueue`, answered as PagerDuty answers it.

The sources: remote-apis.md "PagerDuty Events API v2", PagerDuty's developer docs and its
OpenAPI file.

What it keeps like PagerDuty: 202 `{"status": "success", "message": "Event processed",
"dedup_key"}` for every accepted event, 400 `{"status": "invalid event", "message": "Event
object is invalid", "errors": [...]}` naming every fault at once (the event's own checks are
incman's inbound ones, incman.domain.formats.pagerduty, which follow PagerDuty's), the routing
key checked (32 letters and digits, and known); alerts deduplicated by routing key and
`dedup_key` while open, a trigger for the key of a resolved alert opening a new alert (and
incident), an acknowledge or resolve for a key with no open alert dropped (still 202); a
trigger without `dedup_key` gets a key of its own; about 120 events a minute per routing key,
then 429. Nothing can be read back over the Events API: tests read `/_sim/...`."""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Any

from incman.domain.formats.pagerduty import InvalidEvent, parse_enqueue
from incman.testing.simbase import Fault, SimApp, SimError, SimRequest, SimResponse, Ticket

DEFAULT_ROUTING_KEY = "incmanpagerdutysimroutingkey0001"
ENQUEUE = "/v2/enqueue"
OPEN = ("triggered", "acknowledged")


def _invalid(errors: list[str]) -> SimError:
    return SimError(
        400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    )


def _routing_key_errors(key: Any) -> list[str]:
    if not isinstance(key, str) or not key:
        return ["'routing_key' is missing or blank"]  # unverified: the exact wording
    errors = []
    if len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    return errors


class PagerDutySim(SimApp):
    """Options: the `routing_keys` of the service's integrations (comma-separated), the
    `rate_per_minute` per routing key (0: no limit), and whether a 429 carries a
    `retry_after_header`."""

    name = "pagerduty"

    def __init__(
        self,
        routing_keys: list[str] | str | None = None,
        rate_per_minute: int | str = 120,
        retry_after_header: bool | str = True,
    ) -> None:
        super().__init__()
        keys = routing_keys if routing_keys is not None else [DEFAULT_ROUTING_KEY]
        self.routing_keys = keys.split(",") if isinstance(keys, str) else list(keys)
        self.rate_per_minute = int(rate_per_minute)
        if self.rate_per_minute < 0:
            raise ValueError("rate_per_minute must be >= 0")
        self.retry_after_header = str(retry_after_header).lower() in ("1", "true", "yes")
        self.reset()

    def reset(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.recent: dict[str, deque[float]] = {}
        self.next_incident = 1

    def authenticate(self, req: SimRequest) -> bool:
        return True  # the routing key in the body is the only credential

    def describe(self) -> str:
        return (
            f"PagerDuty Events API v2 simulator at {self.base_url}\n"
            f"  routing key: {self.routing_keys[0]}\n"
            f"  events: POST {self.base_url}{ENQUEUE}\n"
            f"  notification config: {{url: {self.base_url}, routing_key: ...}}"
        )

    # -- errors in PagerDuty's shape -----------------------------------------------------------
    def error(self, status: int, message: str) -> SimResponse:
        # the OpenAPI file's error object; unverified: the status and wording of a real 5xx
        return SimResponse(status, {"status": "error", "message": message, "errors": [message]})

    def rate_limited(self, fault: Fault) -> SimResponse:
        # unverified: PagerDuty documents the 429 ("retry after some time") but neither its
        # body nor a Retry-After header; the header is sent only with retry_after_header
        resp = SimResponse(
            429,
            {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly. "
                "Please retry later.",
            },
        )
        if self.retry_after_header:
            resp.headers["Retry-After"] = f"{fault.retry_after:g}"
        return resp

    # -- the Events API ------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        if req.path != ENQUEUE:
            # unverified: what events.pagerduty.com answers on other paths
            raise SimError(404, {"status": "Not Found", "message": f"no such path {req.path}"})
        if req.method != "POST":
            raise SimError(405, {"status": "Method Not Allowed", "message": "POST only"})
        doc = req.body
        if not isinstance(doc, dict):
            # the OpenAPI file's example error; unverified: that it comes with a 400
            raise SimError(
                400,
                {
                    "status": "Unrecognized object",
                    "message": "Event object format is unrecognized",
                    "errors": ["JSON parse error"],
                },
            )
        errors = _routing_key_errors(doc.get("routing_key"))
        try:
            # unverified: PagerDuty's own wording of payload errors (these are incman's
            # inbound ones) and that it reports routing key and payload faults together
            event = parse_enqueue(doc)
        except InvalidEvent as exc:
            raise _invalid(errors + exc.errors) from None
        if errors:
            raise _invalid(errors)
        key = str(doc["routing_key"])
        if key not in self.routing_keys:
            raise _invalid(["Invalid routing key"])  # unverified: wording and status
        self._count(key)
        self._apply(key, event.action, event.dedup_key, doc)
        # unverified: that an acknowledge or resolve PagerDuty drops is answered 202 too
        return SimResponse(
            202, {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}
        )

    def _count(self, routing_key: str) -> None:
        """About 120 events a minute per routing key (PagerDuty's figure), then 429."""
        if not self.rate_per_minute:
            return
        now = time.monotonic()
        seen = self.recent.setdefault(routing_key, deque())
        while seen and seen[0] < now - 60:
            seen.popleft()
        if len(seen) >= self.rate_per_minute:
            wait = max(1, round(seen[0] + 60 - now))
            resp = self.rate_limited(Fault("429", retry_after=wait))
            raise SimError(429, resp.body, resp.headers)
        seen.append(now)

    def _open(self, routing_key: str, dedup_key: str) -> dict[str, Any] | None:
        return next(
            (
                a
                for a in reversed(self.alerts)
                if (a["routing_key"], a["dedup_key"]) == (routing_key, dedup_key)
                and a["status"] in OPEN
            ),
            None,
        )

    def _apply(self, routing_key: str, action: str, dedup_key: str, doc: dict[str, Any]) -> None:
        alert = self._open(routing_key, dedup_key)
        self.events.append(
            {"action": action, "dedup_key": dedup_key, "at": time.time(), "applied": bool(alert)}
        )
        if action == "trigger" and alert is None:
            self.alerts.append(self._new_alert(routing_key, dedup_key, doc))
            self.events[-1]["applied"] = True
        elif action == "trigger" and alert is not None:
            alert["log"].append({"type": "trigger", "at": time.time()})  # attached, no new page
        elif alert is not None:  # acknowledge, resolve; dropped when no alert is open
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            alert["log"].append({"type": action, "at": time.time()})

    def _new_alert(self, routing_key: str, dedup_key: str, doc: dict[str, Any]) -> dict[str, Any]:
        payload = doc.get("payload") or {}
        alert = {
            "id": "Q" + secrets.token_hex(6).upper(),
            "incident_number": self.next_incident,
            "routing_key": routing_key,
            "dedup_key": dedup_key,
            "status": "triggered",
            "summary": payload.get("summary"),
            "source": payload.get("source"),
            "severity": payload.get("severity"),
            "component": payload.get("component"),
            "class": payload.get("class"),
            "custom_details": payload.get("custom_details"),
            "client": doc.get("client"),
            "links": doc.get("links") or [],
            "log": [{"type": "trigger", "at": time.time()}],
        }
        self.next_incident += 1
        return alert

    # -- control -------------------------------------------------------------------------------
    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        """A responder in PagerDuty: `{"status": "acknowledged" | "resolved"}` on an alert
        (its id, or the open alert of a dedup_key)."""
        alert = next((a for a in self.alerts if a["id"] == record_id), None)
        if alert is None:
            alert = next((a for a in reversed(self.alerts) if a["dedup_key"] == record_id), None)
        if alert is None:
            raise SimError(404, {"error": f"no alert {record_id}"})
        status = changes.get("status")
        if status not in ("acknowledged", "resolved"):
            raise SimError(400, {"error": "status must be acknowledged or resolved"})
        alert["status"] = status
        alert["log"].append({"type": status, "at": time.time(), "by": changes.get("by", "")})
        return alert

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(a["dedup_key"], a["dedup_key"], [a["dedup_key"]], a["status"])
            for a in self.alerts
        ]

    def state(self) -> dict[str, Any]:
        return {"alerts": list(self.alerts), "events": list(self.events)}
