"""The integration contract, one table run against every integration and its remote: create →
find by correlation key → find by number → note → assign → close → reopen → batched status,
then 429 with Retry-After, 500, a dropped connection and an answer lost after the remote
committed. What a plugin lacks must be declared (NotSupported), never faked.

Adding an integration to the table is one row in ROWS. Request Tracker runs only where it is
installed (`make test-rt` installs it and requires it: INCMAN_REQUIRE_RT=1).
INCMAN_CONTRACT_ROWS=rt,jira runs only those rows.
Redmine runs for real likewise (`make test-redmine`: INCMAN_REQUIRE_REDMINE=1)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import select

from incman.integrations.base import (
    ALL_CAPABILITIES,
    ASSIGN,
    CLOSE,
    CREATE,
    FIND,
    FIND_NUMBER,
    NOTE,
    REOPEN,
    STATUS,
    UPDATE,
    Integration,
    RemoteIncident,
)
from incman.integrations.casdm import CasdmIntegration
from incman.integrations.casm import CasmIntegration
from incman.integrations.debug import DebugIntegration
from incman.integrations.errors import NotSupported, TransientError
from incman.integrations.generic_http import HttpIntegration
from incman.integrations.jira import JiraIntegration
from incman.integrations.mastodon import MastodonIntegration
from incman.integrations.otrs import OTRSIntegration
from incman.integrations.pagerduty import PagerDutyIntegration
from incman.integrations.redmine import RedmineIntegration
from incman.integrations.registry import BUILTIN
from incman.integrations.remedy import RemedyIntegration
from incman.integrations.remedyforce import RemedyforceIntegration
from incman.integrations.rt import RTIntegration
from incman.integrations.servicenow import ServiceNowIntegration
from incman.integrations.slack import SlackIntegration
from incman.store.db import session_scope
from incman.store.debug_records import DebugStore
from incman.store.models import DebugIncident
from incman.testing.casdm_sim import CasdmSim
from incman.testing.casm_sim import CasmSim
from incman.testing.http_sim import DEFAULT_TOKEN, HttpSim
from incman.testing.jira_sim import JiraSim
from incman.testing.mastodon_sim import DEFAULT_TOKEN as MASTODON_TOKEN
from incman.testing.mastodon_sim import MastodonSim
from incman.testing.otrs_sim import OTRSSim
from incman.testing.pagerduty_sim import DEFAULT_ROUTING_KEY as PAGERDUTY_KEY
from incman.testing.pagerduty_sim import PagerDutySim
from incman.testing.redmine_server import REDMINE_ROOT, RedmineServer, redmine_installed
from incman.testing.remedy_sim import RemedySim
from incman.testing.remedyforce_sim import RemedyforceSim
from incman.testing.rt_server import RT_SERVER, RTServer, rt_installed
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import ProxySim, SimApp, SimControl, SimServer, Ticket
from incman.testing.slack_sim import DEFAULT_TOKEN as SLACK_TOKEN
from incman.testing.slack_sim import SlackSim

EVENT = {
    "eventId": "ev-contract",
    "device": "db01",
    "component": "disk",
    "eventClass": "/Perf/Disk",
    "severity": 5,
    "summary": "Disk full",
    "message": "/var is full",
    "count": 1,
}
URLS = {"eventUrl": "http://incman.test/api/v1/events/ev-contract"}
OPEN, DONE = ("OPEN", "ASSIGNED"), ("RESOLVED", "CLOSED")


@dataclass
class Remote:
    """One integration against its remote system, as the table drives it."""

    make: Callable[[dict[str, Any]], Integration[Any]]  # the plugin, with extra config
    tickets: Callable[[str], list[Ticket]]  # the remote's tickets carrying this key
    inject: Callable[[str], dict[str, Any]]  # arm a fault for the next create
    missing: RemoteIncident  # a reference to nothing there
    capabilities: frozenset[str]  # what the plugin must declare
    user: str = "oncall1"  # someone tickets may be assigned to


# -- the rows ---------------------------------------------------------------------------------


@contextmanager
def sim_row(
    app: SimApp,
    plugin: type[Integration[Any]],
    config: Callable[[str], dict[str, Any]],
    missing: RemoteIncident,
    capabilities: frozenset[str] = ALL_CAPABILITIES,
    marker: Callable[[str], str] = lambda key: key,
) -> Iterator[Remote]:
    """A row for a simulated remote: faults go to the simulator, tickets come from it."""
    with SimServer(app) as server:
        control = SimControl(server.url)

        def inject(mode: str) -> dict[str, Any]:
            control.fault(mode, count=1, method="POST", retry_after=1)
            return {}

        yield Remote(
            make=lambda extra: plugin({**config(server.url), "timeout": 5, **extra}, "contract"),
            tickets=lambda key: control.tickets(marker(key)),
            inject=inject,
            missing=missing,
            capabilities=capabilities,
        )


@contextmanager
def debug_row() -> Iterator[Remote]:
    faults = {"429": "rate_limited", "500": "transient", "drop": "unreachable"}
    faults["commit_then_drop"] = "lost_answer"

    def tickets(key: str) -> list[Ticket]:
        with session_scope() as session:
            rows = session.scalars(
                select(DebugIncident).where(DebugIncident.correlation_key == key)
            ).all()
            return [
                Ticket(
                    str(r.id),
                    r.number,
                    [key],
                    r.state,
                    r.assignee or "",
                    [str(n["text"]) for n in r.notes],
                )
                for r in rows
            ]

    yield Remote(
        make=lambda extra: DebugIntegration(extra, "contract", records=DebugStore()),
        tickets=tickets,
        inject=lambda mode: {"fail": faults[mode]},
        missing=RemoteIncident("99999999", "DBG9999999"),
        capabilities=ALL_CAPABILITIES,
    )


def http_config(url: str) -> dict[str, Any]:
    one = url + "/incidents/${incident/remoteId}"
    return {
        "url": f"{url}/incidents",
        "headers": {"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        "body": {
            "update": {"fields": "${fields/summary}"},
            "note": {"note": "${note}"},
            "assign": {"assignee": "${assignee}", "status": "assigned"},
            "close": {"status": "closed", "note": "${note}"},
            "reopen": {"status": "open", "note": "${note}"},
        },
        "urls": {a: one for a in ("update", "note", "assign", "close", "reopen")},
        "number_path": "number",
        "url_path": "url",
        "status_url": one,
        "find_url": f"{url}/incidents?correlationKey=${{correlationKey}}",
        "find_path": "items[0]",
        "find_number_url": f"{url}/incidents?number=${{number}}",
        "find_number_path": "items[0]",
    }


@contextmanager
def rt_row() -> Iterator[Remote]:
    """A real Request Tracker, its faults injected by a proxy in front of it."""
    if not rt_installed():
        message = f"Request Tracker 5 is not installed ({RT_SERVER}): `make test-rt`"
        if os.environ.get("INCMAN_REQUIRE_RT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with (
        RTServer() as rt,
        sim_row(
            ProxySim(rt.url),
            RTIntegration,
            lambda url: {"url": url, "username": "root", "password": "password"},
            RemoteIncident("999999", "999999"),
        ) as remote,
    ):
        remote.tickets = lambda key: rt_tickets(rt, key)
        remote.user = "root"
        yield remote


def rt_tickets(rt: RTServer, key: str) -> list[Ticket]:
    def get(path: str, **params: Any) -> Any:
        resp = requests.get(f"{rt.rest}/{path}", auth=rt.auth, params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    found = get("tickets", query=f"'CF.{{IncidentID}}' = '{key}'", fields="Status,Owner")
    out = []
    for item in found["items"]:
        history = get(f"ticket/{item['id']}/history", fields="Type", per_page=100)["items"]
        notes = [
            a["Content"]
            for h in history
            if h["Type"] == "Comment"
            for a in get(f"transaction/{h['id']}/attachments", fields="Content")["items"]
        ]
        owner = item["Owner"]["id"] if isinstance(item["Owner"], dict) else item["Owner"]
        out.append(Ticket(str(item["id"]), str(item["id"]), [key], item["Status"], owner, notes))
    return out


@contextmanager
def casdm_row() -> Iterator[Remote]:
    """CA SDM: faults aimed at the incident calls (a new plugin's first POST is its login)."""
    with SimServer(CasdmSim()) as server:
        control = SimControl(server.url)
        config = {
            "url": server.url,
            "username": "servicedesk",
            "password": "sdm-secret",
            "customer": "Monitoring, Incman",
            "timeout": 5,
        }

        def inject(mode: str) -> dict[str, Any]:
            control.fault(mode, count=1, method="POST", path="/caisd-rest/in", retry_after=1)
            return {}

        yield Remote(
            make=lambda extra: CasdmIntegration({**config, **extra}, "contract"),
            tickets=lambda key: control.tickets(key),
            inject=inject,
            missing=RemoteIncident("999999", "999999"),
            capabilities=ALL_CAPABILITIES,
        )


@contextmanager
def login_row(
    app: SimApp,
    plugin: type[Integration[Any]],
    config: Callable[[str], dict[str, Any]],
    missing: RemoteIncident,
    create: tuple[str, str],
    user: str = "oncall1",
) -> Iterator[Remote]:
    """A row for a remote with logins: the faults hit the create (method, path), not the
    login before it."""
    with sim_row(app, plugin, config, missing) as remote:
        control = SimControl(app.base_url)

        def inject(mode: str) -> dict[str, Any]:
            control.fault(mode, count=1, method=create[0], path=create[1], retry_after=1)
            return {}

        remote.inject, remote.user = inject, user
        yield remote


def remedy_config(url: str) -> dict[str, Any]:
    return {"url": url, "username": "incman", "password": "incman-secret", "login_id": "allen"}


def remedyforce_config(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "client_id": "incman-client",
        "client_secret": "incman-client-secret",
        "username": "incman@incman.example",
        "password": "incman-secret",
    }


def otrs_config(url: str, **extra: Any) -> dict[str, Any]:
    service = f"{url}/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST"
    return {"url": service, "username": "incman", "password": "incman-secret", **extra}


@contextmanager
def pagerduty_row() -> Iterator[Remote]:
    """The Events API names no person: an acknowledge (assign) has no assignee to show."""
    with sim_row(
        PagerDutySim(),
        PagerDutyIntegration,
        lambda url: {"url": url, "routing_key": PAGERDUTY_KEY},
        RemoteIncident("no-such-key", "no-such-key"),
        capabilities=frozenset({CREATE, ASSIGN, CLOSE}),
    ) as remote:
        remote.user = ""
        yield remote


@contextmanager
def redmine_row() -> Iterator[Remote]:
    """A real Redmine 5, its faults injected by a proxy in front of it; the plugin uses a
    project member's key (no administrator) and the correlation field's id."""
    if not redmine_installed():
        message = f"Redmine is not installed ({REDMINE_ROOT}): `make test-redmine`"
        if os.environ.get("INCMAN_REQUIRE_REDMINE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with RedmineServer() as rm:
        setup = rm.setup
        assert setup is not None
        config = {
            "api_key": setup.user_api_key,
            "project": "incidents",
            "correlation_field": str(setup.custom_field_id),
        }
        with sim_row(
            ProxySim(rm.url),
            RedmineIntegration,
            lambda url: {"url": url, **config},
            RemoteIncident("999999", "999999"),
        ) as remote:
            remote.tickets = lambda key: redmine_tickets(rm, key)
            remote.user = "jdoe"
            yield remote


def redmine_tickets(rm: RedmineServer, key: str) -> list[Ticket]:
    out = []
    for found in rm.issues_with_key(key):
        issue = rm.issue(found["id"])
        assigned = issue.get("assigned_to")
        login = rm.call("GET", f"users/{assigned['id']}.json")["user"]["login"] if assigned else ""
        notes = [j["notes"] for j in issue.get("journals", []) if j.get("notes")]
        number = str(issue["id"])
        out.append(Ticket(number, number, [key], issue["status"]["name"], login, notes))
    return out


ROWS: dict[str, Callable[[], Any]] = {
    "debug": debug_row,
    "servicenow": lambda: sim_row(
        ServiceNowSim(),
        ServiceNowIntegration,
        lambda url: {"url": url, "username": "incman", "password": "incman-secret"},
        RemoteIncident("0" * 32, "INC9999999"),
    ),
    "jira": lambda: sim_row(
        JiraSim(),
        JiraIntegration,
        lambda url: {
            "url": url,
            "project": "PROJ",
            "username": "incman@example.com",
            "api_token": "jira-api-token",
        },
        RemoteIncident("99999", "PROJ-9999"),
        marker=lambda key: f"incman-{key}",
    ),
    "slack": lambda: sim_row(
        SlackSim(),
        SlackIntegration,
        lambda url: {"api_url": f"{url}/api", "token": SLACK_TOKEN, "channel": "C0INCMAN1"},
        RemoteIncident("C0INCMAN1:1.000001", "1.000001"),
        capabilities=ALL_CAPABILITIES - {STATUS, FIND_NUMBER},
    ),
    "http": lambda: sim_row(
        HttpSim(), HttpIntegration, http_config, RemoteIncident("r999", "HTTP999999")
    ),
    "http-minimal": lambda: sim_row(
        HttpSim(),
        HttpIntegration,
        lambda url: {key: http_config(url)[key] for key in ("url", "headers", "number_path")},
        RemoteIncident("r999", "HTTP999999"),
        capabilities=frozenset({CREATE}),
    ),
    "rt": rt_row,
    "casdm": casdm_row,
    "casm": lambda: sim_row(
        CasmSim(),
        CasmIntegration,
        lambda url: {
            "url": url,
            "username": "incman@example.com",
            "password": "casm-secret",
            "requester": "incman",
        },
        RemoteIncident("9999999", "9999999"),
        marker=lambda key: f"incman:{key}",
    ),
    "remedy": lambda: login_row(
        RemedySim(),
        RemedyIntegration,
        remedy_config,
        RemoteIncident("INC000000099999|INC000000099999", "INC000000099999"),
        ("POST", "/entry/HPD:IncidentInterface_Create"),
    ),
    "remedyforce": lambda: login_row(
        RemedyforceSim(),
        RemedyforceIntegration,
        remedyforce_config,
        RemoteIncident("a2B5g0000000000AAA", "09999999"),
        ("PATCH", "/sobjects/BMCServiceDesk__Incident__c/incman_Key__c/"),
        user="oncall1@incman.example",
    ),
    "otrs": lambda: sim_row(
        OTRSSim(),
        OTRSIntegration,
        lambda url: otrs_config(url, customer_user="monitoring"),
        RemoteIncident("999999", "2000010199999991"),
    ),
    "otrs-session": lambda: sim_row(
        OTRSSim(sessions_per_user=200),
        OTRSIntegration,
        lambda url: otrs_config(url, customer_user="monitoring", session=True),
        RemoteIncident("999999", "2000010199999991"),
    ),
    "pagerduty": pagerduty_row,
    "redmine": redmine_row,
    "mastodon": lambda: sim_row(
        MastodonSim(),
        MastodonIntegration,
        lambda url: {"url": url, "access_token": MASTODON_TOKEN},
        RemoteIncident("1", "1"),
        capabilities=ALL_CAPABILITIES - {FIND, STATUS},
    ),
}


SELECTED = [r for r in os.environ.get("INCMAN_CONTRACT_ROWS", "").split(",") if r]


def test_every_registered_integration_has_a_row() -> None:
    """A new integration joins the table by one row: its registry entry alone fails here."""
    assert set(BUILTIN) <= set(ROWS), f"no contract row for {sorted(set(BUILTIN) - set(ROWS))}"


@pytest.fixture(scope="module", params=sorted(SELECTED or ROWS))
def remote(request: pytest.FixtureRequest, services_here: dict[str, str]) -> Iterator[Remote]:
    with ROWS[request.param]() as row:
        yield row


# -- helpers ------------------------------------------------------------------------------------


def new_key() -> str:
    return uuid.uuid4().hex


def create(remote: Remote, plugin: Integration[Any] | None = None) -> tuple[Any, Any, str]:
    plugin = plugin or remote.make({})
    key = new_key()
    return plugin, plugin.create(plugin.default_fields(EVENT, None, URLS), key), key


def ticket(remote: Remote, key: str) -> Ticket:
    [found] = remote.tickets(key)
    return found


def declared(plugin: Integration[Any], capability: str, call: Callable[[], Any]) -> bool:
    """Call it when the plugin declares the capability; else it must refuse: NotSupported."""
    if plugin.supports(capability):
        call()
        return True
    with pytest.raises(NotSupported):
        call()
    return False


# -- the contract --------------------------------------------------------------------------------


def test_capabilities_are_declared_and_lacking_ones_refused(remote: Remote) -> None:
    plugin = remote.make({})
    assert plugin.capabilities == remote.capabilities
    ref = remote.missing
    calls: dict[str, Callable[[], Any]] = {
        CREATE: lambda: plugin.create({}, new_key()),
        FIND: lambda: plugin.find(new_key()),
        FIND_NUMBER: lambda: plugin.find_by_number(ref.number),
        UPDATE: lambda: plugin.update(ref, {}),
        NOTE: lambda: plugin.add_note(ref, "x"),
        ASSIGN: lambda: plugin.assign(ref, remote.user),
        CLOSE: lambda: plugin.close(ref, "x"),
        REOPEN: lambda: plugin.reopen(ref, "x"),
        STATUS: lambda: plugin.get_status([ref]),
    }
    assert set(calls) == ALL_CAPABILITIES
    for capability in sorted(ALL_CAPABILITIES - plugin.capabilities):
        with pytest.raises(NotSupported):
            calls[capability]()


def test_create_then_find_by_key_and_by_number(remote: Remote) -> None:
    plugin, ref, key = create(remote)
    made = ticket(remote, key)
    assert (made.id, made.number, ref.state) == (ref.remote_id, ref.number, "OPEN")
    found: list[RemoteIncident | None] = []
    if declared(plugin, FIND, lambda: found.append(plugin.find(key))):
        assert found[-1] is not None and found[-1].remote_id == ref.remote_id
        assert plugin.find(new_key()) is None
    if declared(plugin, FIND_NUMBER, lambda: found.append(plugin.find_by_number(ref.number))):
        assert found[-1] is not None
        assert (found[-1].remote_id, found[-1].number) == (ref.remote_id, ref.number)
        assert plugin.find_by_number(remote.missing.number) is None


def test_note_assign_close_reopen(remote: Remote) -> None:
    plugin, ref, key = create(remote)
    note = f"contract note {new_key()[:8]}"
    if declared(plugin, NOTE, lambda: plugin.add_note(ref, note)):
        assert note in ticket(remote, key).notes
    if declared(plugin, ASSIGN, lambda: plugin.assign(ref, remote.user)):
        assert ticket(remote, key).assignee == remote.user
    if declared(plugin, CLOSE, lambda: plugin.close(ref, "closed by the contract")):
        assert plugin.map_state(ticket(remote, key).state) in DONE
        ref.state = "CLOSED"
    if declared(plugin, REOPEN, lambda: plugin.reopen(ref, "re-opened by the contract")):
        assert plugin.map_state(ticket(remote, key).state) == "OPEN"
    assert len(remote.tickets(key)) == 1


def test_status_of_many_incidents_in_one_call(remote: Remote) -> None:
    plugin = remote.make({})
    refs = [create(remote, plugin)[1] for _ in range(3)]
    if plugin.supports(CLOSE):
        plugin.close(refs[0], "closed by the contract")
    states: dict[str, RemoteIncident] = {}
    if not declared(plugin, STATUS, lambda: states.update(plugin.get_status(refs))):
        return
    assert set(states) == {r.remote_id for r in refs}
    assert states[refs[0].remote_id].state in (DONE if plugin.supports(CLOSE) else OPEN)
    assert all(states[r.remote_id].state in OPEN for r in refs[1:])
    assert plugin.get_status([remote.missing]) == {}  # unknown: left out, not an error


@pytest.mark.parametrize(
    ("mode", "status", "retry_after"),
    [("429", 429, 1.0), ("500", 500, None), ("drop", None, None)],
)
def test_a_refused_create_leaves_nothing_and_the_retry_makes_one(
    remote: Remote, mode: str, status: int | None, retry_after: float | None
) -> None:
    key = new_key()
    faulty = remote.make(remote.inject(mode))
    with pytest.raises(TransientError) as caught:
        faulty.create(faulty.default_fields(EVENT, None, URLS), key)
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)
    assert remote.tickets(key) == []
    plugin = remote.make({})
    ref = plugin.create(plugin.default_fields(EVENT, None, URLS), key)
    assert [t.id for t in remote.tickets(key)] == [ref.remote_id]


def test_an_answer_lost_after_commit_is_found_by_the_retry(remote: Remote) -> None:
    """What the worker does: find by the correlation key before creating again."""
    key = new_key()
    faulty = remote.make(remote.inject("commit_then_drop"))
    with pytest.raises(TransientError):
        faulty.create(faulty.default_fields(EVENT, None, URLS), key)
    plugin = remote.make({})
    found: list[RemoteIncident | None] = []
    if not declared(plugin, FIND, lambda: found.append(plugin.find(key))):
        if plugin.idempotent_create:  # the remote itself answers a retry with the first one
            ref = plugin.create(plugin.default_fields(EVENT, None, URLS), key)
            assert [t.id for t in remote.tickets(key)] == [ref.remote_id]
        return  # declared: otherwise a retried create may then make a second ticket
    ref = found[0] or plugin.create(plugin.default_fields(EVENT, None, URLS), key)
    assert [t.id for t in remote.tickets(key)] == [ref.remote_id]
