"""Helpers of the integration tests: an API client, polling, unique names."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

API_KEY = "test-admin-key"


class Client:
    """A small HTTP client for the API under test."""

    def __init__(self, base: str, key: str = API_KEY) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.put(self.base + path, json=body, timeout=30, **kw)


def wait_for(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll until `check()` is truthy; its last value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def send_disk_event(client: Client, device: str, severity: int = 5) -> str:
    """A "Disk full" event for `device`; its id."""
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf",
            "severity": severity,
            "summary": "Disk full",
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["eventId"])


def created_incident(client: Client, event_id: str, timeout: float = 30) -> dict[str, Any]:
    """The event's first incident, once it exists remotely (no longer PENDING)."""

    def ready() -> dict[str, Any] | None:
        items = client.get("/api/v1/incidents", params={"eventId": event_id}).json()["items"]
        return items[0] if items and items[0]["state"] != "PENDING" else None

    return wait_for(ready, timeout=timeout, what=f"an incident for event {event_id}")
