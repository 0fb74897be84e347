"""The one HTTP helper of all integrations: a requests.Session with timeouts that turns
every failure into a TransientError or a PermanentError carrying the HTTP status, and runs
the plugin's auth hook: log in before the first call, once more when a call's failure says
the login expired (that call is then retried once, never more), log out on close. When the
plugin reads from an answer that the remote's request quota is used up (`rate_limit_wait`),
the next calls are held back (Deferred) and the flood guard pauses every worker until the
quota is back, before the remote has to answer 429."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any, Protocol

import requests

from incman.integrations.errors import (
    Deferred,
    IntegrationError,
    PermanentError,
    TransientError,
)

log = logging.getLogger(__name__)

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


class Authenticator(Protocol):
    """What the client asks of a plugin (incman.integrations.base.Integration has them)."""

    def auth(self, session: HttpClient) -> None: ...

    def auth_expired(self, error: IntegrationError) -> bool: ...

    def logout(self, session: HttpClient) -> None: ...

    def check_answer(self, method: str, url: str, resp: requests.Response) -> None: ...

    def rate_limit_wait(self, response: requests.Response) -> float | None: ...


class HttpClient:
    """Session, timeouts, TLS and proxy settings and the login of one integration instance."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        headers: dict[str, str] | None = None,
        guard: CallGuard | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.timeout = timeout
        self.guard = guard
        self.authenticator = authenticator
        self.session = requests.Session()
        self.session.verify = ca_bundle if (verify_tls and ca_bundle) else verify_tls
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}
        if headers:
            self.session.headers.update(headers)
        self._authed = False
        self._in_auth = False
        self._held_until = 0.0  # time.monotonic() until which the remote's quota is used up

    # -- what auth hooks use -------------------------------------------------------------
    def use_basic(self, username: str, password: str) -> None:
        self.session.auth = (username, password)

    def use_header(self, name: str, value: str) -> None:
        self.session.headers[name] = value

    def use_param(self, name: str, value: str) -> None:
        """A query parameter on every request (OTRS takes its SessionID so, whatever the
        method: a call retried after a new login then carries the new one)."""
        params = self.session.params if isinstance(self.session.params, dict) else {}
        self.session.params = {**params, name: value}

    # -- calls -----------------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send; return the response for 2xx/3xx, raise the classified error otherwise.
        With a guard, a call it holds back raises before anything is sent."""
        if self.authenticator is None or self._in_auth:
            return self._guarded(method, url, **kwargs)
        if not self._authed:
            self._login()
        try:
            return self._guarded(method, url, **kwargs)
        except IntegrationError as exc:
            if not self.authenticator.auth_expired(exc):
                raise
            log.info("%s %s: the login expired (%s): logging in again", method, url, exc.status)
        self._login()
        return self._guarded(method, url, **kwargs)  # once: a second expiry is an error

    def _login(self) -> None:
        assert self.authenticator is not None
        self._in_auth = True
        try:
            self.authenticator.auth(self)
        finally:
            self._in_auth = False
        self._authed = True

    def _guarded(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        held = self._held_until - time.monotonic()
        if held > 0:
            raise Deferred(f"{method} {url}: the remote's quota is used up", retry_after=held)
        if self.guard is None:
            resp = self._send(method, url, **kwargs)
            self._hold(resp)
            return resp
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
        wait = self._hold(resp)
        if wait:
            self.guard.after("retry_after", wait)  # every worker waits for the quota
        return resp

    def _wait_advised(self, resp: requests.Response) -> float | None:
        if self.authenticator is None:
            return None
        return self.authenticator.rate_limit_wait(resp)

    def _hold(self, resp: requests.Response) -> float | None:
        """Hold the next calls when this answer says the quota is used up."""
        wait = self._wait_advised(resp)
        if wait:
            self._held_until = time.monotonic() + wait
            log.info("%s: the request quota is used up: next call in %.1fs", resp.url, wait)
        return wait

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
            if self.authenticator is not None:
                self.authenticator.check_answer(method, url, resp)  # errors with a 200
            return resp
        code = resp.status_code
        snippet = resp.text[:300].replace("\n", " ")
        message = f"{method} {url}: HTTP {code}: {snippet}"
        if code in TRANSIENT_STATUS:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if retry_after is None and code in (429, 503):
                retry_after = self._wait_advised(resp)  # rate-limit headers instead
            raise TransientError(message, retry_after, status=code)
        raise PermanentError(message, status=code)

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        resp = self.request(method, url, **kwargs)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise PermanentError(f"{method} {url}: answer is not JSON") from exc

    def close(self) -> None:
        """Log out (if the hook logged in) and close the session; a failed logout is only
        logged: the session ends on the remote's side by itself."""
        if self.authenticator is not None and self._authed:
            self._authed = False
            self._in_auth = True
            try:
                self.authenticator.logout(self)
            except IntegrationError as exc:
                log.warning("logout failed: %s", exc)
            finally:
                self._in_auth = False
        self.session.close()
