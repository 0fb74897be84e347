"""The HTTP helper: errors carrying the status and Retry-After, and the auth hook (log in
once, refresh once on expiry, never loop, log out on shutdown) against a session-key server
shaped like CA Service Desk's `rest_access` (an expired key is a 400, not a 401)."""

from __future__ import annotations

import pickle
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from incman.integrations.base import STATUS, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import IntegrationError, PermanentError, TransientError
from incman.integrations.http import HttpClient
from incman.integrations.servicenow import ServiceNowIntegration
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import (
    SimApp,
    SimControl,
    SimError,
    SimRequest,
    SimResponse,
    SimServer,
    basic_credentials,
)


class KeyServer(SimApp):
    """Access keys from `POST /rest_access` (Basic auth), sent as `X-AccessKey`;
    `DELETE /rest_access/<id>` ends one. `POST /_sim/records/keys {"expire": true}` expires
    every key; `{"dead_keys": true}` hands out keys that are already expired."""

    name = "keyed"

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.keys: dict[str, str] = {}  # id → key
        self.logins = self.logouts = 0
        self.dead_keys = False

    def authenticate(self, req: SimRequest) -> bool:
        return True  # each route checks its own credentials

    def error(self, status: int, message: str) -> SimResponse:
        return SimResponse(status, {"error": message})

    def state(self) -> dict[str, Any]:
        return {"keys": len(self.keys), "logins": self.logins, "logouts": self.logouts}

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        if changes.get("expire"):
            self.keys.clear()
        self.dead_keys = bool(changes.get("dead_keys", self.dead_keys))
        return self.state()

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path == "/rest_access" and req.method == "POST":
            if basic_credentials(req.headers) != ("admin", "pw"):
                raise SimError(401, {"error": "Unauthorized"})
            self.logins += 1
            key_id, key = str(self.logins), secrets.token_hex(8)
            if not self.dead_keys:
                self.keys[key_id] = key
            return SimResponse(201, {"rest_access": {"@id": key_id, "access_key": key}})
        key = req.headers.get("x-accesskey", "")
        if key not in self.keys.values():
            raise SimError(400, {"error": "Invalid REST Access Key"})
        if req.path.startswith("/rest_access/") and req.method == "DELETE":
            self.keys.pop(req.path.rsplit("/", 1)[1], None)
            self.logouts += 1
            return SimResponse(204)
        return SimResponse(200, {"things": [{"id": "1", "status": "OP"}]})


class KeyConfig(IntegrationConfig):
    url: str = url_setting(required=True, help="the server")
    username: str = setting(required=True, help="who logs in")
    password: str = setting(required=True, secret=True, help="its password")


class KeyPlugin(Integration[KeyConfig]):
    """A plugin with a session login, as CA SDM, Remedy (AR-JWT) or OTRS need."""

    name = "keyed"
    capabilities = frozenset({STATUS})
    key_id = ""

    def auth(self, session: HttpClient) -> None:
        cfg = self.cfg
        answer = session.json("POST", f"{cfg.url}/rest_access", auth=(cfg.username, cfg.password))
        self.key_id = answer["rest_access"]["@id"]
        session.use_header("X-AccessKey", answer["rest_access"]["access_key"])

    def auth_expired(self, error: IntegrationError) -> bool:
        return error.status == 400 and "Invalid REST Access Key" in str(error)

    def logout(self, session: HttpClient) -> None:
        session.request("DELETE", f"{self.cfg.url}/rest_access/{self.key_id}")

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        things = self.http.json("GET", f"{self.cfg.url}/things")["things"]
        return {t["id"]: RemoteIncident(t["id"], t["id"], remote_state=t["status"]) for t in things}


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(KeyServer()) as srv:
        yield srv


@pytest.fixture()
def control(server: SimServer) -> SimControl:
    control = SimControl(server.url)
    control.reset()
    return control


def plugin(control: SimControl, password: str = "pw") -> KeyPlugin:
    return KeyPlugin({"url": control.url, "username": "admin", "password": password})


def read(p: KeyPlugin) -> dict[str, RemoteIncident]:
    return p.get_status([])


def test_one_login_for_many_calls_and_a_logout_on_shutdown(control: SimControl) -> None:
    p = plugin(control)
    for _ in range(3):
        assert set(read(p)) == {"1"}
    assert control.state() == {"keys": 1, "logins": 1, "logouts": 0}
    p.shutdown()
    assert control.state() == {"keys": 0, "logins": 1, "logouts": 1}


def test_an_expired_login_is_refreshed_once_and_the_call_retried(control: SimControl) -> None:
    p = plugin(control)
    read(p)
    control.act("keys", expire=True)
    assert set(read(p)) == {"1"}
    assert control.state()["logins"] == 2
    paths = [(r["method"], r["path"], r["status"]) for r in control.requests()]
    assert paths == [
        ("POST", "/rest_access", 201),
        ("GET", "/things", 200),
        ("GET", "/things", 400),
        ("POST", "/rest_access", 201),
        ("GET", "/things", 200),
    ]


def test_a_login_that_expires_again_is_an_error_not_a_loop(control: SimControl) -> None:
    control.act("keys", dead_keys=True)
    with pytest.raises(PermanentError, match="Invalid REST Access Key") as caught:
        read(plugin(control))
    assert caught.value.status == 400
    assert control.state()["logins"] == 2
    assert [r["path"] for r in control.requests()].count("/things") == 2


def test_no_call_no_login_no_logout(control: SimControl) -> None:
    plugin(control).shutdown()
    assert control.requests() == []


def test_a_refused_login_is_permanent_and_not_retried(control: SimControl) -> None:
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        read(plugin(control, password="wrong"))
    assert caught.value.status == 401
    assert [r["path"] for r in control.requests()] == ["/rest_access"]


def test_fixed_credentials_are_not_retried_on_401() -> None:
    with SimServer(ServiceNowSim(password="right")) as srv:
        snow = ServiceNowIntegration({"url": srv.url, "username": "incman", "password": "wrong"})
        with pytest.raises(PermanentError) as caught:
            snow.find("key")
        assert caught.value.status == 401
        assert len(SimControl(srv.url).requests()) == 1


@pytest.mark.parametrize(
    ("mode", "status", "retry_after"),
    [("429", 429, 7.0), ("500", 500, None), ("drop", None, None)],
)
def test_errors_carry_the_status_and_retry_after(
    control: SimControl, mode: str, status: int | None, retry_after: float | None
) -> None:
    p = plugin(control)
    read(p)
    control.fault(mode, retry_after=7)
    with pytest.raises(TransientError) as caught:
        read(p)
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)


def test_status_and_retry_after_survive_pickling() -> None:
    error = TransientError("busy", 3.0, status=429)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.status, again.retry_after) == (
        TransientError,
        "busy",
        429,
        3.0,
    )
