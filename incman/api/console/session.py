"""The console's session: a signed, secure, HTTP-only cookie naming who signed in and how.

The cookie also carries the session's CSRF token. The principal is resolved again from the
configuration on every request, so a removed user, a changed password or a revoked key ends
the session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from incman.api.auth import ANONYMOUS, Principal, hash_key, key_table
from incman.store.catalog import get_catalog
from incman.store.links import derived_key

COOKIE = "incman_session"
LOGIN_COOKIE = "incman_login"  # the sign-in form's CSRF token (double submit)
FLASH_COOKIE = "incman_flash"
LIFETIME = 12 * 3600
VIA_PASSWORD, VIA_KEY, VIA_OPEN = "password", "key", "open"


@dataclass(frozen=True)
class Session:
    """Who is signed in (resolved now), how, and the CSRF token of the session."""

    principal: Principal
    via: str
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], purpose: str = "console-session") -> str:
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = _b64(hmac.new(derived_key(purpose), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unsign(token: str, purpose: str = "console-session") -> dict[str, Any] | None:
    """The claims of a value this server signed, or None (forged, altered, malformed)."""
    body, _, mac = token.partition(".")
    if not body or not mac or not (body + mac).isascii():
        return None
    expected = _b64(hmac.new(derived_key(purpose), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        return None
    try:
        claims = json.loads(_unb64(body))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def open_mode() -> bool:
    """No API key and no console password configured: the console is open, as the API is
    (which then listens on loopback only)."""
    return not key_table() and not any(u.password_hash for u in get_catalog().users.values())


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def _resolve(claims: dict[str, Any]) -> Principal | None:
    via, name, proof = claims.get("v"), claims.get("u"), claims.get("p")
    if via == VIA_OPEN:
        return ANONYMOUS if open_mode() else None
    if via == VIA_PASSWORD:
        user = get_catalog().users.get(str(name))
        if user is None or not user.password_hash or _fingerprint(user.password_hash) != proof:
            return None
        return Principal(user.name, user.role, user.groups)
    if via == VIA_KEY and isinstance(proof, str):
        principal = key_table().get(proof)
        return principal if principal is not None and principal.name == name else None
    return None


def current(request: Request) -> Session | None:
    """The signed-in session of this request, or None."""
    claims = unsign(request.cookies.get(COOKIE, ""))
    if claims is None or not isinstance(claims.get("x"), int) or claims["x"] < time.time():
        return None
    principal = _resolve(claims)
    if principal is None:
        return None
    return Session(principal, str(claims.get("v")), str(claims.get("c", "")))


def start(response: Response, principal: Principal, via: str, proof: str = "") -> None:
    """Set the session cookie (a new CSRF token with it)."""
    claims = {
        "u": principal.name,
        "v": via,
        "p": proof,
        "c": secrets.token_urlsafe(24),
        "x": int(time.time()) + LIFETIME,
    }
    set_cookie(response, COOKIE, sign(claims), LIFETIME)


def password_proof(password_hash: str) -> str:
    return _fingerprint(password_hash)


def key_proof(key: str) -> str:
    return hash_key(key)


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    # Secure: browsers keep it on https and on loopback (http://127.0.0.1, localhost) only.
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax"
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")


FLASH_CHARS = 2400  # a cookie holds about 4 KB, signed and base64-encoded


def flash(response: Response, level: str, lines: list[str]) -> None:
    """Messages for the next page shown (after a redirect): "ok", "warn" or "error"."""
    kept: list[str] = []
    for line in lines:
        if sum(len(k) for k in kept) + len(line) > FLASH_CHARS:
            kept.append(f"... and {len(lines) - len(kept)} more")
            break
        kept.append(line)
    set_cookie(response, FLASH_COOKIE, sign({"l": level, "t": kept}, "console-flash"), 120)


def take_flash(request: Request) -> dict[str, Any] | None:
    claims = unsign(request.cookies.get(FLASH_COOKIE, ""), "console-flash")
    if claims is None or not isinstance(claims.get("t"), list):
        return None
    return {"level": str(claims.get("l", "ok")), "lines": [str(t) for t in claims["t"]]}
