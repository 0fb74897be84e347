"""The one HTTP helper of all integrations: a requests.Session with timeouts and auth.

Every failure becomes a TransientError or a PermanentError carrying the HTTP status. The
plugin's auth hook runs here: log in before the first call, once more when a call's failure
says the login expired (that call is then retried once, never more), log out on close. When
the plugin reads from an answer that the remote's request quota is used up
(`rate_limit_wait`), the next calls are held back (Deferred) and the flood guard pauses every
worker until the quota is back, before the remote has to answer 429."""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from incman.integrations.egress import EgressPolicy
from incman.integrations.errors import (
    Deferred,
    EgressRefused,
    IntegrationError,
    PermanentError,
    TransientError,
)
from incman.settings import get_settings

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


ERROR_TEXT = 200  # characters of a remote's error answer kept (for managers' eyes only)
MAX_REDIRECTS = 5


def _checked_connection(base: type[HTTPConnection], policy: EgressPolicy) -> type[HTTPConnection]:
    """`base` whose socket is opened by the egress policy: resolved, checked and connected to
    the very address checked (urllib3's own `_new_conn` would resolve the name again)."""

    class Checked(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            try:
                return policy.connect(
                    self._dns_host, self.port, timeout, self.source_address, self.socket_options
                )
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
            except OSError as exc:
                raise NewConnectionError(self, f"Failed to establish a connection: {exc}") from exc

    return Checked


class EgressAdapter(HTTPAdapter):
    """Every connection of the session, to the remote or to a proxy, through the egress
    policy; with a proxy (which resolves the target itself) the target's name is checked
    before each request as well. Redirects are followed, at most MAX_REDIRECTS: each hop is
    a request of its own through this adapter, so each is checked the same way."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        http_conn = _checked_connection(HTTPConnection, policy)
        https_conn = _checked_connection(HTTPSConnection, policy)
        self._pools = {
            "http": type("CheckedPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("CheckedSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = self._pools
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if select_proxy(str(request.url), kwargs.get("proxies") or {}):
            parts = urlsplit(str(request.url))
            default = 443 if parts.scheme == "https" else 80
            self.policy.check_host(parts.hostname or "", parts.port or default)
        return super().send(request, **kwargs)


class CallGuard(Protocol):
    """Flood control around each call (incman.store.flood.FloodGuard): `before` raises a
    TransientError instead of waiting; `after` learns how the call went."""

    def before(self) -> None: ...

    def after(self, outcome: str, retry_after: float | None = None) -> None: ...

    def note_quota(self, remaining: int, seconds: float) -> None: ...


class Authenticator(Protocol):
    """What the client asks of a plugin (incman.integrations.base.Integration has them)."""

    def auth(self, session: HttpClient) -> None: ...

    def auth_expired(self, error: IntegrationError) -> bool: ...

    def logout(self, session: HttpClient) -> None: ...

    def check_answer(self, method: str, url: str, resp: requests.Response) -> None: ...

    def rate_limit_wait(self, response: requests.Response) -> float | None: ...

    def request_quota(self, response: requests.Response) -> tuple[int, float] | None: ...


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
        egress: EgressPolicy | None = None,
    ) -> None:
        """`egress`: the policy every connection obeys (default: INCMAN_EGRESS_ALLOW's)."""
        self.timeout = timeout
        self.guard = guard
        self.authenticator = authenticator
        self.session = requests.Session()
        adapter = EgressAdapter(egress or EgressPolicy.from_setting(get_settings().egress_allow))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.max_redirects = MAX_REDIRECTS
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
        quota = self.authenticator.request_quota(resp) if self.authenticator else None
        if quota is not None:
            self.guard.note_quota(*quota)
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
        except EgressRefused as exc:  # raised while connecting, this hop or a redirect's
            raise EgressRefused(f"{method} {url}: {exc}") from None
        except requests.TooManyRedirects as exc:
            raise PermanentError(f"{method} {url}: more than {MAX_REDIRECTS} redirects") from exc
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
        snippet = " ".join(resp.text[:ERROR_TEXT].split())
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
