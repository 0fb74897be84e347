"""What every remote-system simulator shares: its HTTP server, auth, faults and controls.

A real HTTP server on loopback, auth helpers, fault injection and the `/_sim/...` control
endpoints.

Control endpoints (no auth, never faulted):
- `GET /_sim/state` — the simulator's records, for tests and demos.
- `POST /_sim/faults` — `{"mode": "429", "count": 5, "retry_after": 1}` (or `{"faults": [...]}`);
  modes: `429` (with Retry-After), `500`, `401` (every login the simulator gave out expires:
  a session or token to refresh), `slow` (the request is carried out, the answer comes
  `delay` seconds late), `drop` (the connection closes before anything is done),
  `commit_then_drop` (the request is carried out, the answer is lost). `method` and `path`
  (a substring; a SOAP simulator adds the operation: `request_path`) limit a fault to some
  requests. `GET` lists and `DELETE` clears them.
- `POST /_sim/records/<id>` — act on a record as a person would (resolve, assign, comment).
- `GET /_sim/tickets` — every simulator's records in one shape (`Ticket`), for checks that
  hold for every integration (the contract-test table).
- `GET /_sim/requests` — the requests seen (method, path, status, fault).
- `POST /_sim/reset` — forget every record.

`ProxySim` puts the same faults in front of a real remote system (Request Tracker)."""

from __future__ import annotations

import base64
import html
import json
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import requests

FAULT_MODES = ("429", "500", "401", "slow", "drop", "commit_then_drop")
MAX_BODY = 16 * 1024 * 1024


@dataclass
class SimRequest:
    """One HTTP request as a simulator sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any = None  # parsed JSON, or None
    raw: bytes = b""
    query_string: str = ""  # as sent, for a simulator that reads repeated parameters

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() == "true"


@dataclass
class SimResponse:
    status: int
    body: Any = None  # JSON-able; None is an empty body
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of `body` (a proxied answer)


@dataclass
class Ticket:
    """A simulator's record in the one shape every simulator gives: `keys` are the
    correlation markers it carries (a correlation field, labels, metadata), `state` the raw
    state the plugin's status map reads, `notes` the texts of its notes and comments."""

    id: str
    number: str
    keys: list[str]
    state: str
    assignee: str = ""
    notes: list[str] = field(default_factory=list)


class SimError(Exception):
    """Raised inside a simulator to answer with an error."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = SimResponse(status, body, headers or {})


@dataclass
class Fault:
    """A fault injected into the next `count` matching requests."""

    mode: str
    count: int = 1
    retry_after: float = 1.0
    delay: float = 2.0
    method: str = ""
    path: str = ""

    @classmethod
    def from_dict(cls, raw: Any) -> Fault:
        if not isinstance(raw, dict):
            raise ValueError('a fault is an object such as {"mode": "429", "count": 5}')
        unknown = set(raw) - {"mode", "count", "retry_after", "delay", "method", "path"}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        mode = str(raw.get("mode", ""))
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
        try:
            fault = cls(
                mode=mode,
                count=int(raw.get("count", 1)),
                retry_after=float(raw.get("retry_after", 1.0)),
                delay=float(raw.get("delay", 2.0)),
                method=str(raw.get("method", "")).upper(),
                path=str(raw.get("path", "")),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad fault: {exc}") from None
        if fault.count < 1 or fault.retry_after < 0 or fault.delay < 0:
            raise ValueError("count must be >= 1, retry_after and delay >= 0")
        return fault

    def matches(self, method: str, path: str) -> bool:
        return (not self.method or self.method == method) and self.path in path


class FaultQueue:
    """Pending faults, first come first served, safe across request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


def basic_credentials(headers: dict[str, str]) -> tuple[str, str] | None:
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def bearer_token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


class SimApp:
    """A simulated remote system. Subclasses implement the hooks below; every hook runs
    under `self.lock`, so the state needs no locking of its own."""

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults = FaultQueue()
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.base_url = ""  # set by SimServer once the port is known

    # -- hooks ---------------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        raise NotImplementedError

    def handle(self, req: SimRequest) -> SimResponse:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        """Change a record as a person would; SimError(404) when there is no such record."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def tickets(self) -> list[Ticket]:
        """Every record as a Ticket."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> SimResponse:
        """An error answer in the system's own shape."""
        raise NotImplementedError

    def describe(self) -> str:
        """What a user needs to point a notification at this simulator."""
        return f"{self.name} simulator at {self.base_url}"

    def page(self, req: SimRequest) -> SimResponse | None:
        """A page of the system's web UI as a signed-in person's browser sees it (the link
        an incident carries), or None: asked before authentication, for GETs only."""
        return None

    @staticmethod
    def html_page(
        status: int, title: str, fields: list[tuple[str, str]], notes: list[str]
    ) -> SimResponse:
        """A plain record page: its fields, then its activity."""
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in fields
        )
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        body = (
            f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><table>{rows}</table><h2>Activity</h2><ul>{items}</ul>"
        )
        return SimResponse(
            status, raw=body.encode(), headers={"Content-Type": "text/html; charset=utf-8"}
        )

    # -- faults in the system's shape ----------------------------------------------------
    def rate_limited(self, fault: Fault) -> SimResponse:
        resp = self.error(429, "Rate limit exceeded")
        resp.headers["Retry-After"] = f"{fault.retry_after:g}"
        return resp

    def server_error(self) -> SimResponse:
        return self.error(500, "Internal server error (injected)")

    def expire_logins(self) -> None:
        """Forget the sessions or tokens handed out by logins (fixed credentials stay)."""

    def request_path(self, req: SimRequest) -> str:
        """The path faults are matched against and requests are logged with: the URL path,
        with more for systems whose calls share one URL (a SOAP operation)."""
        return req.path

    def login_expired(self) -> SimResponse:
        """The answer to a call whose login has just expired (fault `401`), in the system's
        own shape: a 401 for most, something else for some (CA SDM: a 400)."""
        return self.error(401, "Not authenticated")

    def logins_expired(self, req: SimRequest) -> SimResponse:
        """The `401` fault: forget the logins, then answer as the system answers a request
        whose login ran out (`login_expired`; OTRS answers the request itself, with an error)."""
        self.expire_logins()
        return self.login_expired()

    # -- control -------------------------------------------------------------------------
    def control(self, req: SimRequest) -> SimResponse:
        action = req.path[len("/_sim/") :].strip("/")
        if action == "state" and req.method == "GET":
            with self.lock:
                return SimResponse(200, self.state())
        if action == "tickets" and req.method == "GET":
            with self.lock:
                return SimResponse(200, {"tickets": [asdict(t) for t in self.tickets()]})
        if action == "requests" and req.method == "GET":
            return SimResponse(200, {"requests": list(self.requests)})
        if action == "reset" and req.method == "POST":
            with self.lock:
                self.reset()
            self.faults.clear()
            self.requests.clear()
            return SimResponse(200, {"reset": True})
        if action == "faults":
            return self._control_faults(req)
        if action.startswith("records/") and req.method == "POST":
            if not isinstance(req.body, dict):
                return SimResponse(400, {"error": "the body must be a JSON object of changes"})
            with self.lock:
                return SimResponse(200, self.act(unquote(action[len("records/") :]), req.body))
        return SimResponse(404, {"error": f"no control endpoint {req.method} {req.path}"})

    def _control_faults(self, req: SimRequest) -> SimResponse:
        if req.method == "GET":
            return SimResponse(200, {"faults": self.faults.pending()})
        if req.method == "DELETE":
            self.faults.clear()
            return SimResponse(200, {"faults": []})
        if req.method != "POST":
            return SimResponse(405, {"error": "GET, POST or DELETE"})
        raw = (
            req.body.get("faults")
            if isinstance(req.body, dict) and "faults" in req.body
            else [req.body]
        )
        try:
            faults = [Fault.from_dict(item) for item in (raw if isinstance(raw, list) else [raw])]
        except ValueError as exc:
            return SimResponse(400, {"error": str(exc)})
        for fault in faults:
            self.faults.add(fault)
        return SimResponse(201, {"faults": self.faults.pending()})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _read(self) -> SimRequest:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise SimError(413, {"error": "body too large"})
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return SimRequest(self.command, unquote(parts.path), query, headers, body, raw, parts.query)

    def _send(self, resp: SimResponse) -> None:
        payload = b"" if resp.body is None else json.dumps(resp.body).encode()
        payload = payload if resp.raw is None else resp.raw
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            if payload and resp.raw is None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True

    def _serve(self) -> None:
        app = self.server.app
        try:
            req = self._read()
        except SimError as exc:
            self._send(exc.response)
            return
        if req.path.startswith("/_sim/"):
            try:
                self._send(app.control(req))
            except SimError as exc:
                self._send(exc.response)
            return
        if req.method == "GET":
            with app.lock:
                page = app.page(req)
            if page is not None:
                self._send(page)
                return
        fault = app.faults.take(req.method, app.request_path(req))
        mode = fault.mode if fault else ""
        resp: SimResponse | None = None
        if fault is not None and mode == "drop":
            pass
        elif fault is not None and mode == "429":
            resp = app.rate_limited(fault)
        elif fault is not None and mode == "500":
            resp = app.server_error()
        elif fault is not None and mode == "401":
            with app.lock:
                resp = app.logins_expired(req)
        elif not app.authenticate(req):
            resp = app.error(401, "Not authenticated")
        else:
            try:
                with app.lock:
                    resp = app.handle(req)
            except SimError as exc:
                resp = exc.response
        app.requests.append(
            {
                "method": req.method,
                "path": app.request_path(req),
                "query": req.query,
                "status": resp.status if resp and mode != "commit_then_drop" else None,
                "fault": mode or None,
                "at": time.time(),
            }
        )
        if resp is None or mode == "commit_then_drop":
            self._drop()
            return
        if fault is not None and mode == "slow":
            time.sleep(fault.delay)
        self._send(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # the stdlib's names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimApp, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose


class SimServer:
    """Serve a SimApp on loopback, in a background thread (`start`) or in the foreground
    (`serve_forever`)."""

    def __init__(
        self, app: SimApp, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
    ) -> None:
        self.app = app
        self._server = _Server((host, port), app, verbose)
        self._thread: threading.Thread | None = None
        host_part = f"[{host}]" if ":" in host else host
        app.base_url = f"http://{host_part}:{self.port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return self.app.base_url

    def start(self) -> SimServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.app.name}-sim", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class SimControl:
    """A client of the control endpoints, for tests and scripts."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = requests.request(method, f"{self.url}/_sim/{path}", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")  # type: ignore[no-any-return]

    def fault(self, mode: str, count: int = 1, **options: Any) -> None:
        self._call("POST", "faults", {"mode": mode, "count": count, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["faults"]  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def act(self, record_id: str, **changes: Any) -> Any:
        return self._call("POST", f"records/{record_id}", changes)

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "requests")["requests"]  # type: ignore[no-any-return]

    def tickets(self, marker: str | None = None) -> list[Ticket]:
        """Every record as a Ticket; with `marker`, those carrying it among their keys."""
        found = [Ticket(**t) for t in self._call("GET", "tickets")["tickets"]]
        return [t for t in found if marker is None or marker in t.keys]

    def reset(self) -> None:
        self._call("POST", "reset")


class ProxySim(SimApp):
    """The shared faults in front of a real system: every other request is passed on to
    `upstream` as it came (credentials included) and its answer returned as it was."""

    name = "proxy"
    HOP_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding"})

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")

    def authenticate(self, req: SimRequest) -> bool:
        return True  # the upstream decides

    def handle(self, req: SimRequest) -> SimResponse:
        headers = {k: v for k, v in req.headers.items() if k not in self.HOP_HEADERS}
        answer = requests.request(
            req.method,
            self.upstream + req.path,
            params=req.query,
            data=req.raw or None,
            headers=headers,
            timeout=60,
            allow_redirects=False,
        )
        kept = {"content-type", "location", "retry-after", "etag"}
        out = {k: v for k, v in answer.headers.items() if k.lower() in kept}
        return SimResponse(answer.status_code, headers=out, raw=answer.content)

    def error(self, status: int, message: str) -> SimResponse:
        return SimResponse(status, {"message": message})

    def state(self) -> dict[str, Any]:
        return {"upstream": self.upstream}

    def tickets(self) -> list[Ticket]:
        raise SimError(404, {"error": "a proxy keeps no tickets: ask the upstream system"})

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        raise SimError(404, {"error": "a proxy keeps no records"})

    def reset(self) -> None:
        """Nothing of the upstream's is forgotten."""
