"""What every console page shares.

Templates, the signed-in user, roles, forms with their CSRF token, redirects with a message, and
the security headers."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from incman import __version__
from incman.api.console import session as sessions
from incman.api.console.session import Session
from incman.domain.event import SEVERITY_NAMES

HERE = Path(__file__).parent
FORM_LIMIT = 256 * 1024
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(version=__version__, severity_names=SEVERITY_NAMES)


class ConsoleError(Exception):
    """A refusal shown as a page: status, title and reason."""

    def __init__(self, status: int, title: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.title, self.reason = status, title, reason


class NeedSignIn(Exception):
    """No session: the browser goes to the sign-in page, then back to `next`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass
class Form:
    """A submitted form (its CSRF token checked): first values and all values."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def all(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v]


def signed_in(request: Request) -> Session:
    """A dependency: the session, else a redirect to the sign-in page (open mode signs in
    as the open API's anonymous admin)."""
    found = sessions.current(request)
    if found is not None:
        return found
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise NeedSignIn(path)


def need_role(who: Session, role: str, what: str) -> None:
    if not who.principal.has_role(role):
        raise ConsoleError(
            403,
            "Not allowed",
            f"{what} needs the role {role} or higher; "
            f"{who.principal.name} is {who.principal.role}.",
        )


async def read_form(request: Request, token: str | None) -> Form:
    """The urlencoded body, refused (403) unless it carries `token` as csrf_token."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_LIMIT:
        raise ConsoleError(413, "Too large", f"a form may be at most {FORM_LIMIT} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_LIMIT:
            raise ConsoleError(413, "Too large", f"a form may be at most {FORM_LIMIT} bytes")
    try:
        values = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=5000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConsoleError(400, "Bad form", f"the form could not be read: {exc}") from exc
    form = Form(values)
    sent = form.get("csrf_token")
    if not token or not sent or not hmac.compare_digest(sent.encode(), token.encode()):
        raise ConsoleError(
            403,
            "Form refused",
            "The form lacks its security token or it is out of date (CSRF protection). "
            "Reload the page and try again.",
        )
    return form


def render(
    request: Request,
    who: Session | None,
    name: str,
    status: int = 200,
    fragment: bool = False,
    **context: Any,
) -> HTMLResponse:
    """A page from a template, with the user, their CSRF token and the pending message
    (left for the next whole page when this is a fragment)."""
    message = None if fragment else sessions.take_flash(request)
    body = templates.get_template(name).render(
        request=request,
        who=who,
        user=who.principal if who else None,
        csrf=who.csrf if who else "",
        message=message,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=HEADERS)
    if message is not None:
        response.delete_cookie(sessions.FLASH_COOKIE, path="/", secure=True, httponly=True)
    return response


def redirect(url: str, level: str = "", lines: list[str] | None = None) -> Response:
    """303 to a page of the console (after a form), with a message for it."""
    response = RedirectResponse(safe_next(url), status_code=303, headers=HEADERS)
    if lines:
        sessions.flash(response, level or "ok", lines)
    return response


def safe_next(url: str, default: str = "/console/events") -> str:
    """Only a path inside the console: never another site (no open redirect)."""
    if not url.startswith("/console") or url.startswith("//") or "\\" in url:
        return default
    return url


def query_url(path: str, params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    return f"{path}?{urlencode(kept, doseq=True)}" if kept else path


templates.globals.update(query_url=query_url)
