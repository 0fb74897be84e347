"""The `urls` of an event, as put in tickets (built from INCMAN_PUBLIC_URL)."""

from __future__ import annotations

from urllib.parse import quote

from incman.config import get_settings


def event_urls(event_id: str, device: str) -> dict[str, str]:
    base = get_settings().public_url
    dev = quote(device, safe="")
    return {
        "baseUrl": base,
        "eventUrl": f"{base}/api/v1/events/{event_id}",
        "eventsUrl": f"{base}/api/v1/events?device={dev}",
        "deviceUrl": f"{base}/api/v1/events?device={dev}",
    }
