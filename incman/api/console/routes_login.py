"""Signing in (a configured user's password, or an API key) and out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from incman.api.auth import ANONYMOUS, Principal, hash_key, key_table
from incman.api.console import session as sessions
from incman.api.console.passwords import verify_password
from incman.api.console.session import Session
from incman.api.console.web import HEADERS, read_form, render, safe_next, signed_in
from incman.store.catalog import get_catalog

router = APIRouter(include_in_schema=False)


def _login_page(request: Request, next_url: str, error: str = "", status: int = 200) -> Response:
    # Kept while it lives, so that two sign-in tabs do not spoil each other's token.
    token = request.cookies.get(sessions.LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request, None, "login.html", status=status, next_url=next_url, login_csrf=token, error=error
    )
    sessions.set_cookie(response, sessions.LOGIN_COOKIE, token, 3600)
    return response


def _signed_in_to(next_url: str, principal: Principal, via: str, proof: str = "") -> Response:
    response = RedirectResponse(safe_next(next_url), status_code=303, headers=HEADERS)
    sessions.start(response, principal, via, proof)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/", secure=True, httponly=True)
    return response


@router.get("/console/login")
async def login_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next", ""))
    if sessions.current(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    if sessions.open_mode():
        return _signed_in_to(next_url, ANONYMOUS, sessions.VIA_OPEN)
    return _login_page(request, next_url)


def _check_password(name: str, password: str) -> tuple[Principal, str] | None:
    user = get_catalog().users.get(name)
    stored = user.password_hash if user is not None else ""
    if not verify_password(stored, password) or user is None:
        return None
    return Principal(user.name, user.role, user.groups), sessions.password_proof(stored)


@router.post("/console/login")
async def login(request: Request) -> Response:
    form = await read_form(request, request.cookies.get(sessions.LOGIN_COOKIE))
    next_url = safe_next(form.get("next"))
    key = form.get("api_key").strip()
    if key:
        principal = key_table().get(hash_key(key))
        if principal is None:
            return _login_page(request, next_url, "That API key is not known.", 401)
        return _signed_in_to(next_url, principal, sessions.VIA_KEY, sessions.key_proof(key))
    name, password = form.get("username").strip(), form.get("password")
    if not name or not password:
        return _login_page(request, next_url, "Give a user name and a password, or a key.", 400)
    found = await run_in_threadpool(_check_password, name, password[:1024])
    if found is None:
        return _login_page(request, next_url, "Unknown user or wrong password.", 401)
    principal, proof = found
    return _signed_in_to(next_url, principal, sessions.VIA_PASSWORD, proof)


@router.post("/console/logout")
async def logout(request: Request, who: Session = Depends(signed_in)) -> Response:
    await read_form(request, who.csrf)
    response = RedirectResponse("/console/login", status_code=303, headers=HEADERS)
    sessions.end(response)
    return response
