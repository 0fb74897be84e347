"""OTRS / Znuny plugin against the OTRS simulator over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import (
    CannotReopen,
    ConfigurationError,
    PermanentError,
    TransientError,
)
from incman.integrations.otrs import OTRSIntegration
from incman.testing.otrs_sim import OTRSSim, parse_query
from incman.testing.simbase import SimControl, SimServer

URLS = {"eventUrl": "http://incman.example/api/v1/events/e1"}
EVENT = {
    "eventId": "e1",
    "device": "db01",
    "component": "disk",
    "eventClass": "/Perf/Disk",
    "severity": 5,
    "summary": "Disk full",
    "message": "95% used",
    "count": 1,
}
SERVICE = "/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST"


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(OTRSSim()) as srv:
        yield srv


@pytest.fixture()
def control(server: SimServer) -> SimControl:
    control = SimControl(server.url)
    control.reset()
    return control


def plugin_for(url: str, **config: Any) -> OTRSIntegration:
    base = {
        "url": url + SERVICE,
        "username": "incman",
        "password": "incman-secret",
        "customer_user": "monitoring",
        "timeout": 5,
    }
    plugin = OTRSIntegration({**base, **config}, "otrs-test")
    plugin.http.guard = None  # flood control (Redis) is tested on its own
    return plugin


@pytest.fixture()
def otrs(control: SimControl) -> Iterator[OTRSIntegration]:
    plugin = plugin_for(control.url)
    yield plugin
    plugin.shutdown()


def create(plugin: OTRSIntegration, key: str = "k1", **extra: Any) -> RemoteIncident:
    return plugin.create({**plugin.default_fields(EVENT, None, URLS), **extra}, key)


def ticket(control: SimControl, ref: RemoteIncident) -> dict[str, Any]:
    return next(t for t in control.state()["tickets"] if t["TicketID"] == ref.remote_id)


# -- create and fields ----------------------------------------------------------------------
def test_create_makes_a_ticket_with_its_article_and_the_key(
    control: SimControl, otrs: OTRSIntegration
) -> None:
    ref = create(otrs, "3f2a")
    assert (ref.remote_id, ref.state, ref.remote_state) == ("1", "OPEN", "new")
    assert ref.url == f"{control.url}/otrs/index.pl?Action=AgentTicketZoom;TicketID=1"
    made = ticket(control, ref)
    assert made["TicketNumber"] == ref.number and len(ref.number) == 16
    assert (made["Title"], made["Queue"], made["State"]) == ("Disk full", "Raw", "new")
    assert (made["Priority"], made["CustomerUserID"]) == ("5 very high", "monitoring")
    assert made["dynamic"] == {"IncmanKey": "3f2a"}
    [article] = made["Article"]
    assert article["Subject"] == "Disk full" and URLS["eventUrl"] in article["Body"]
    assert (article["CommunicationChannelID"], article["IsVisibleForCustomer"]) == ("3", 0)


@pytest.mark.parametrize(
    ("severity", "priority"),
    [(5, "5 very high"), (4, "4 high"), (3, "3 normal"), (2, "2 low"), (1, "1 very low")],
)
def test_the_priority_follows_the_event_severity(
    otrs: OTRSIntegration, severity: int, priority: str
) -> None:
    assert otrs.default_fields({**EVENT, "severity": severity}, None, URLS)["Priority"] == priority


def test_mapped_fields_go_to_ticket_article_and_dynamic_fields(
    control: SimControl, server: SimServer
) -> None:
    sim = server.app
    assert isinstance(sim, OTRSSim)
    sim.dynamic_fields.append("Device")
    try:
        plugin = plugin_for(control.url, ticket_type="Incident")
        ref = create(plugin, "k-map", DynamicField_Device="db01", Queue="Misc", Body="by hand")
        made = ticket(control, ref)
        assert made["dynamic"] == {"Device": "db01", "IncmanKey": "k-map"}
        assert (made["Queue"], made["Type"], made["Article"][0]["Body"]) == (
            "Misc",
            "Incident",
            "by hand",
        )
        # the correlation key is incman's: a mapping cannot change it
        create(plugin, "k-own", DynamicField_IncmanKey="other")
        assert plugin.find("k-own") is not None and plugin.find("other") is None
    finally:
        sim.dynamic_fields.remove("Device")


def test_an_unknown_field_is_refused_by_name(otrs: OTRSIntegration) -> None:
    with pytest.raises(PermanentError, match=r"unknown field u_device .*DynamicField_<Name>"):
        create(otrs, u_device="db01")


# -- errors in HTTP 200 ----------------------------------------------------------------------
def test_errors_in_a_200_are_errors(control: SimControl, otrs: OTRSIntegration) -> None:
    with pytest.raises(PermanentError, match=r"TicketCreate\.InvalidParameter.*Queue") as caught:
        create(otrs, Queue="No such queue")
    assert caught.value.status == 200
    with pytest.raises(PermanentError, match="Ticket->CustomerUser parameter is invalid"):
        create(otrs, CustomerUser="not a customer")
    wrong = plugin_for(control.url, password="Wr0ng-otrs-pass")
    with pytest.raises(PermanentError, match=r"TicketCreate\.AuthFail") as failed:
        create(wrong)
    assert "Wr0ng-otrs-pass" not in str(failed.value)
    assert control.state()["tickets"] == []


def test_an_error_code_not_known_to_be_final_is_transient(otrs: OTRSIntegration) -> None:
    resp = requests.Response()
    resp.status_code = 200
    resp._content = b'{"Error": {"ErrorCode": "TicketCreate.Busy", "ErrorMessage": "try later"}}'
    with pytest.raises(TransientError, match=r"TicketCreate\.Busy: try later"):
        otrs.check_answer("POST", otrs.cfg.url + "/Ticket", resp)
    resp._content = b'{"TicketID": "1"}'
    otrs.check_answer("POST", otrs.cfg.url + "/Ticket", resp)  # no error: nothing raised


@pytest.mark.parametrize(("mode", "match"), [("429", "HTTP 429"), ("500", "HTTP 500")])
def test_faults_are_transient(
    control: SimControl, otrs: OTRSIntegration, mode: str, match: str
) -> None:
    control.fault(mode, 1, retry_after=7)
    with pytest.raises(TransientError, match=match) as caught:
        create(otrs)
    if mode == "429":
        assert caught.value.retry_after == 7
    assert control.state()["tickets"] == []


# -- finding ---------------------------------------------------------------------------------
def test_find_by_the_dynamic_field(control: SimControl, otrs: OTRSIntegration) -> None:
    ref = create(otrs, "k-find")
    create(otrs, "k-other")
    assert otrs.find("k-find") == ref
    assert otrs.find("k-none") is None
    search = [r for r in control.requests() if r["path"].endswith("/TicketSearch")]
    assert search and all(r["method"] == "POST" for r in search)


def test_a_search_on_an_unknown_field_returns_everything_and_is_checked(
    control: SimControl,
) -> None:
    """Znuny drops the condition on a dynamic field it does not know; the plugin reads what
    the search found instead of taking the first ticket."""
    create(plugin_for(control.url), "k-real")
    plugin = plugin_for(control.url, correlation_field="NoSuchField")
    assert plugin.find("k-real") is None
    with pytest.raises(PermanentError, match="DynamicField->Name parameter is invalid"):
        create(plugin, "k-new")


def test_a_get_cannot_search_by_dynamic_field(control: SimControl) -> None:
    create(plugin_for(control.url), "k-get")
    create(plugin_for(control.url), "k-get-2")
    query = {"UserLogin": "incman", "Password": "incman-secret", "DynamicField_IncmanKey": "k-get"}
    found = requests.get(control.url + SERVICE + "/Ticket", params=query, timeout=5).json()
    assert found == {"TicketID": ["2", "1"]}  # every ticket, the newest first


def test_without_the_search_route_find_is_a_permanent_error() -> None:
    with SimServer(OTRSSim(search_route="")) as srv:
        plugin = plugin_for(srv.url)
        with pytest.raises(PermanentError, match="no route POST /TicketSearch"):
            plugin.find("k")


def test_find_by_number(otrs: OTRSIntegration) -> None:
    ref = create(otrs, "k-num")
    create(otrs, "k-num-2")
    assert otrs.find_by_number(ref.number) == ref
    assert otrs.find_by_number(f"Ticket#{ref.number}") == ref
    assert otrs.find_by_number(ref.number[:8] + "*") is None  # no wildcard searches
    assert otrs.find_by_number("2000010110000011") is None


# -- note, assign, close, re-open ------------------------------------------------------------
def test_a_note_is_internal(control: SimControl, otrs: OTRSIntegration) -> None:
    ref = create(otrs)
    otrs.add_note(ref, "disk cleaned")
    note = ticket(control, ref)["Article"][-1]
    assert note["Body"] == "disk cleaned"
    assert (note["CommunicationChannelID"], note["IsVisibleForCustomer"]) == ("3", 0)


def test_assign_owns_and_locks_or_is_taken_by_the_integrations_agent(
    control: SimControl,
) -> None:
    plugin = plugin_for(control.url, user_map={"tester": "oncall2"})
    ref = create(plugin)
    plugin.assign(ref, "oncall1")
    assert plugin.get_status([ref])[ref.remote_id].assignee == "oncall1"
    plugin.assign(ref, "tester")
    now = plugin.get_status([ref])[ref.remote_id]
    assert (now.state, now.assignee) == ("ASSIGNED", "oncall2")
    plugin.assign(ref, "stranger")
    assert plugin.get_status([ref])[ref.remote_id].assignee == "incman"
    assert "Acknowledged in incman by stranger" in ticket(control, ref)["Article"][-1]["Body"]


def test_close_and_reopen(control: SimControl, otrs: OTRSIntegration) -> None:
    ref = create(otrs)
    otrs.assign(ref, "oncall1")
    otrs.close(ref, "fixed")
    otrs.close(ref, "fixed again")  # already closed: no second article
    made = ticket(control, ref)
    assert (made["State"], made["Lock"]) == ("closed successful", "unlock")
    assert [a["Body"] for a in made["Article"][1:]] == ["fixed"]
    assert otrs.get_status([ref])[ref.remote_id].state == "RESOLVED"
    otrs.reopen(ref, "back")
    assert ticket(control, ref)["State"] == "open"
    control.act(ref.remote_id, State="merged")
    with pytest.raises(CannotReopen, match="is merged"):
        otrs.reopen(ref, "again")


def test_states_by_name_with_a_configurable_map(control: SimControl) -> None:
    plugin = plugin_for(control.url, state_map={"pending reminder": "RESOLVED"})
    ref = create(plugin)
    control.act(ref.remote_id, State="pending reminder")
    assert plugin.get_status([ref])[ref.remote_id].state == "RESOLVED"
    assert plugin_for(control.url).get_status([ref])[ref.remote_id].state == "OPEN"
    control.act(ref.remote_id, State="removed")
    assert plugin.get_status([ref])[ref.remote_id].state == "CLOSED"


def test_status_in_batches_and_a_missing_ticket_left_out(
    control: SimControl, otrs: OTRSIntegration
) -> None:
    refs = [create(otrs, f"k{i}") for i in range(120)]
    before = len(control.requests())
    states = otrs.get_status([*refs, RemoteIncident("999", "x"), RemoteIncident("abc", "y")])
    assert set(states) == {r.remote_id for r in refs}
    assert len(control.requests()) - before == 4  # a search and a read per 100
    gone = requests.get(
        f"{control.url}{SERVICE}/Ticket/1,999",
        params={"UserLogin": "incman", "Password": "incman-secret"},
        timeout=5,
    ).json()
    assert gone["Error"]["ErrorCode"] == "TicketGet.AccessDenied"  # why the search comes first


# -- sessions --------------------------------------------------------------------------------
def test_a_session_is_made_once_renewed_once_and_removed(control: SimControl) -> None:
    plugin = plugin_for(control.url, session=True)
    ref = create(plugin, "k-s")
    assert plugin.find("k-s") == ref
    assert control.state()["logins"] == 1
    control.fault("401")  # the session runs out: the next call gets an AuthFail in a 200
    assert plugin.find("k-s") == ref
    assert (control.state()["logins"], control.state()["sessions"]) == (2, 1)
    control.fault("401", 2, path="/TicketSearch")  # again after the new login: no loop
    with pytest.raises(PermanentError, match="AuthFail"):
        plugin.find("k-s")
    assert control.state()["logins"] == 3
    plugin.shutdown()
    assert control.state()["sessions"] == 0  # SessionRemove on shutdown
    passwords = [r for r in control.requests() if "Password" in r["query"]]
    assert not passwords  # sessions keep the password out of URLs


def test_sessions_left_open_run_into_the_per_user_limit() -> None:
    with SimServer(OTRSSim(sessions_per_user=3)) as srv:
        for _ in range(3):
            plugin_for(srv.url, session=True, logout_route="").find("k")
        with pytest.raises(PermanentError, match=r"SessionCreate\.AuthFail"):
            plugin_for(srv.url, session=True).find("k")
        for _ in range(5):
            plugin = plugin_for(srv.url, session=False)
            plugin.find("k")
            plugin.shutdown()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"correlation_field": "Incman-Key"}, "correlation_field: letters and digits only"),
        ({"state_map": {"open": "WORKING"}}, "state_map: open: must map to one of"),
        ({"search_route": "TicketSearch"}, "search_route: must start with /"),
        ({"customer_user": ""}, "customer_user: may not be empty"),
        ({"session": "maybe"}, "session: must be true or false"),
    ],
)
def test_bad_config_is_a_configuration_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        plugin_for("http://otrs.example", **config)


def test_the_simulator_reads_query_strings_as_the_rest_transport() -> None:
    assert parse_query("TicketID=1&TicketID=2;Title=a+b&x=%41") == {
        "TicketID": ["1", "2"],
        "Title": "a b",
        "x": "A",
    }
    from incman.testing.registry import make_simulator

    sim = make_simulator("otrs", {"search_route": "", "sessions_per_user": "5"})
    assert isinstance(sim, OTRSSim) and sim.sessions_per_user == 5
    assert "TicketSearchPost" not in [r[0] for r in sim.routes]
