"""The `urls` of an event as put in tickets, built from INCMAN_PUBLIC_URL.

They include the one-click ack/close/re-open links: signed, expiring tokens that open a
confirmation page (nothing happens on a bare GET; no API key needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from incman.settings import get_settings

LINK_ACTIONS = ("acknowledge", "close", "reopen")
LINK_TTL = 7 * 24 * 3600


class LinkError(ValueError):
    """A token that is malformed, forged or expired."""


def _secret() -> bytes:
    """INCMAN_SECRET_KEY, else a key kept in the data folder (created once, mode 0600).
    Several hosts must share INCMAN_SECRET_KEY for their links to verify everywhere."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / "link-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    return path.read_bytes().strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_action(action: str, event_id: str, ttl: int = LINK_TTL, now: float | None = None) -> str:
    if action not in LINK_ACTIONS:
        raise ValueError(f"unknown link action {action!r}")
    expires = int((now if now is not None else time.time()) + ttl)
    body = _b64(
        json.dumps({"a": action, "e": event_id, "x": expires}, separators=(",", ":")).encode()
    )
    mac = _b64(hmac.new(_secret(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def verify_action(token: str, now: float | None = None) -> tuple[str, str]:
    """(action, event id) of a valid token; LinkError otherwise."""
    body, _, mac = token.partition(".")
    if not body or not mac or not (body + mac).isascii():
        raise LinkError("malformed link")
    expected = _b64(hmac.new(_secret(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        raise LinkError("this link is not valid")
    try:
        claims = json.loads(_unb64(body))
        action, event_id, expires = claims["a"], claims["e"], int(claims["x"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkError("malformed link") from exc
    if (now if now is not None else time.time()) > expires:
        raise LinkError("this link has expired")
    if action not in LINK_ACTIONS:
        raise LinkError("malformed link")
    return action, event_id


def derived_key(purpose: str) -> bytes:
    """A key of its own for one use of the secret (the console's session cookies, ...)."""
    return hmac.new(_secret(), f"incman:{purpose}".encode(), hashlib.sha256).digest()


def event_urls(event_id: str, device: str) -> dict[str, str]:
    """Links to the event console's pages (a person signs in there) and the one-click links."""
    base = get_settings().public_url
    dev = quote(device, safe="")
    event_page = f"{base}/console/events/{quote(event_id, safe='')}"
    urls = {
        "baseUrl": base,
        "eventUrl": event_page,
        "eventsUrl": f"{base}/console/events?device={dev}",
        "deviceUrl": f"{base}/console/devices/{dev}",
        "smartViewUrl": event_page,
    }
    for action, key in (("acknowledge", "ackUrl"), ("close", "closeUrl"), ("reopen", "reopenUrl")):
        urls[key] = f"{base}/links/{sign_action(action, event_id)}"
    return urls
