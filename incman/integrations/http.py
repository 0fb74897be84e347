"""The one HTTP helper of all integrations: a requests.Session with timeouts that turns
every failure into a TransientError or a PermanentError."""

from __future__ import annotations

import email.utils
import time
from typing import Any, Protocol

import requests

from incman.integrations.errors import PermanentError, TransientError

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


class CallGuard(Protocol):
    """Flood control around each call (incman.store.flood.FloodGuard): `before` raises a
    TransientError instead of waiting; `after` learns how the call went."""

    def before(self) -> None: ...

    def after(self, outcome: str, retry_after: float | None = None) -> None: ...


class HttpClient:
    """Session, timeouts, TLS and proxy settings of one integration instance."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        guard: CallGuard | None = None,
    ) -> None:
        self.timeout = timeout
        self.guard = guard
        self.session = requests.Session()
        self.session.verify = ca_bundle if (verify_tls and ca_bundle) else verify_tls
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send; return the response for 2xx/3xx, raise the classified error otherwise.
        With a guard, a call it holds back raises before anything is sent."""
        if self.guard is None:
            return self._send(method, url, **kwargs)
        self.guard.before()
        try:
            resp = self._send(method, url, **kwargs)
        except TransientError as exc:
            self.guard.after(
                "transient" if exc.retry_after is None else "retry_after", exc.retry_after
            )
            raise
        except PermanentError:
            self.guard.after("ok")  # the remote answered (a 4xx) or the request was ours
            raise
        self.guard.after("ok")
        return resp

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            resp = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise TransientError(f"{method} {url}: timed out") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"{method} {url}: connection failed: {exc}") from exc
        except requests.RequestException as exc:
            raise PermanentError(f"{method} {url}: {exc}") from exc
        if resp.status_code < 400:
            return resp
        snippet = resp.text[:300].replace("\n", " ")
        message = f"{method} {url}: HTTP {resp.status_code}: {snippet}"
        if resp.status_code in TRANSIENT_STATUS:
            raise TransientError(message, parse_retry_after(resp.headers.get("Retry-After")))
        raise PermanentError(message)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        resp = self.request(method, url, **kwargs)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise PermanentError(f"{method} {url}: answer is not JSON") from exc

    def close(self) -> None:
        self.session.close()
