"""The event console: server-rendered pages over the same functions as the JSON API."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from incman.api.console import routes_events, routes_login, routes_other
from incman.api.console.session import current
from incman.api.console.web import HEADERS, HERE, ConsoleError, NeedSignIn, render


def install_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its error pages to the app."""
    app.include_router(routes_login.router)
    app.include_router(routes_events.router)
    app.include_router(routes_other.router)
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console")

    @app.exception_handler(ConsoleError)
    async def _refused(request: Request, exc: ConsoleError) -> Response:
        return render(
            request,
            current(request),
            "error.html",
            status=exc.status,
            title=exc.title,
            reason=exc.reason,
        )

    @app.exception_handler(NeedSignIn)
    async def _sign_in(_: Request, exc: NeedSignIn) -> Response:
        return RedirectResponse(
            f"/console/login?next={quote(exc.next_url, safe='')}", status_code=303, headers=HEADERS
        )
