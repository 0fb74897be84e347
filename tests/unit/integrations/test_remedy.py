"""BMC Remedy ITSM plugin against the Remedy simulator over real HTTP on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
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
from incman.integrations.remedy import RemedyIntegration
from incman.integrations.remedyforce import RemedyforceIntegration
from incman.testing.procs import free_port, wait_port
from incman.testing.registry import make_simulator
from incman.testing.remedy_sim import RemedySim
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
BASE = {"username": "incman", "password": "incman-secret", "login_id": "allen", "timeout": 5}


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(RemedySim()) as srv:
        yield srv


@pytest.fixture()
def sim(server: SimServer) -> RemedySim:
    SimControl(server.url).reset()
    app = server.app
    assert isinstance(app, RemedySim)
    app.clock = RemedySim().clock
    app.tokens.clear()  # logins of earlier tests
    app.token_ttl = 3600.0
    app.answer_values, app.create_drops = True, set()
    return app


def plugin_for(sim: RemedySim, **config: Any) -> RemedyIntegration:
    plugin = RemedyIntegration({"url": sim.base_url, **BASE, **config}, "remedy-test")
    plugin.http.guard = None  # flood control (Redis) is tested on its own
    return plugin


@pytest.fixture()
def remedy(sim: RemedySim) -> Iterator[RemedyIntegration]:
    plugin = plugin_for(sim)
    yield plugin
    plugin.shutdown()


def create(plugin: RemedyIntegration, key: str = "k1", **extra: Any) -> RemoteIncident:
    return plugin.create({**plugin.default_fields(EVENT, None, URLS), **extra}, key)


def incident(sim: RemedySim, ref: RemoteIncident) -> dict[str, Any]:
    return sim.incidents[ref.remote_id]


def requests_to(sim: RemedySim, path: str) -> list[dict[str, Any]]:
    return [r for r in SimControl(sim.base_url).requests() if r["path"].endswith(path)]


# -- create and find --------------------------------------------------------------------------
def test_create_goes_through_the_create_form_and_keeps_the_key(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    ref = create(remedy, "3f2a", Description="x" * 100)
    assert re.fullmatch(r"INC\d{12}", ref.number)
    assert ref.remote_id == f"{incident(sim, ref)['Entry ID']}|{incident(sim, ref)['Entry ID']}"
    assert ref.number != incident(sim, ref)["Entry ID"]  # the number is not the entry id
    assert (ref.state, ref.remote_state) == ("OPEN", "New")
    rec = incident(sim, ref)
    assert rec["Vendor Ticket Number"] == "3f2a"
    assert (rec["Impact"], rec["Urgency"], rec["Priority"]) == (
        "1-Extensive/Widespread",
        "1-Critical",
        "Critical",
    )
    assert (rec["Service Type"], rec["Reported Source"]) == (
        "Infrastructure Event",
        "Systems Management",
    )
    assert rec["Customer Login ID"] == "allen"
    assert "Event URL: http://incman.example/api/v1/events/e1" in rec["Detailed Decription"]
    assert ref.url.endswith(
        "/api/arsys/v1/entry/HPD:IncidentInterface/" + ref.remote_id.replace("|", "%7C")
    )


def test_default_fields_follow_severity_and_cut_the_summary(sim: RemedySim) -> None:
    plugin = plugin_for(sim, first_name="Allen", last_name="Support", login_id="")
    fields = plugin.default_fields({**EVENT, "severity": 3, "summary": "s" * 300}, None, URLS)
    assert (fields["Impact"], fields["Urgency"]) == ("3-Moderate/Limited", "3-Medium")
    assert len(fields["Description"]) == 100 and "Login_ID" not in fields
    assert (fields["First_Name"], fields["Last_Name"]) == ("Allen", "Support")
    assert create(plugin).number
    info = plugin.default_fields({**EVENT, "severity": 2}, None, URLS)
    assert (info["Impact"], info["Urgency"]) == ("4-Minor/Localized", "4-Low")


def test_the_simulator_is_strict_where_remedy_is(sim: RemedySim, remedy: RemedyIntegration) -> None:
    with pytest.raises(PermanentError, match="Value does not fall within the limits"):
        create(remedy, Description="y" * 101)  # the summary holds 100 characters
    with pytest.raises(PermanentError, match="No records have been found"):
        create(remedy, Login_ID="nobody")
    with pytest.raises(PermanentError, match="does not exist on the current form"):
        create(remedy, Detailed_Description="the correct spelling is not AR's")
    assert sim.incidents == {}


def test_the_number_is_read_from_location_when_the_answer_has_no_values(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    sim.answer_values = False
    ref = create(remedy, "from-location")
    assert incident(sim, ref)["Incident Number"] == ref.number
    assert requests_to(sim, "/HPD:IncidentInterface_Create/000000000000001")


def test_a_create_form_that_drops_the_key_gets_it_written(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    sim.create_drops = {"Vendor Ticket Number"}
    ref = create(remedy, "dropped")
    assert incident(sim, ref)["Vendor Ticket Number"] == "dropped"
    assert remedy.find("dropped") == ref


def test_find_by_key_and_by_number(sim: RemedySim, remedy: RemedyIntegration) -> None:
    ref = create(remedy, "k-find")
    create(remedy, "k-other")
    assert remedy.find("k-find") == ref
    assert remedy.find("k-none") is None
    assert remedy.find_by_number(ref.number.lower()) == ref
    assert remedy.find_by_number("INC000000099999") is None
    query = requests_to(sim, "/HPD:IncidentInterface")[-1]["query"]
    assert query["q"] == "'Incident Number'=\"INC000000099999\""
    assert "Vendor Ticket Number" in query["fields"]


# -- notes, assign, close, reopen -------------------------------------------------------------
def test_a_note_is_a_work_log_entry(sim: RemedySim, remedy: RemedyIntegration) -> None:
    ref = create(remedy)
    remedy.add_note(ref, "disks checked\nall of them")
    [entry] = sim.worklogs
    assert entry["Incident Number"] == ref.number
    assert (entry["Description"], entry["Detailed Description"]) == (
        "disks checked",
        "disks checked\nall of them",
    )
    assert (entry["Work Log Type"], entry["View Access"]) == ("General Information", "Internal")


def test_assign_sets_the_login_id_and_the_group(sim: RemedySim) -> None:
    plugin = plugin_for(sim, user_map={"tester": "oncall2"}, assigned_group="Service Desk")
    ref = create(plugin)
    plugin.assign(ref, "tester")
    rec = incident(sim, ref)
    assert (rec["Assignee Login ID"], rec["Assignee"]) == ("oncall2", "Oncall2 Support")
    assert (rec["Assigned Group"], rec["Status"]) == ("Service Desk", "Assigned")
    [status] = plugin.get_status([ref]).values()
    assert (status.state, status.assignee) == ("ASSIGNED", "oncall2")
    with pytest.raises(PermanentError, match="not a valid support person"):
        plugin.assign(ref, "stranger")


def test_resolving_needs_a_reason_and_a_resolution(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    ref = create(remedy)
    with pytest.raises(PermanentError, match="Status_Reason is required"):
        remedy.update(ref, {"Status": "Resolved"})
    with pytest.raises(PermanentError, match="Resolution is required"):
        remedy.update(ref, {"Status": "Resolved", "Status_Reason": "Monitoring Incident"})
    remedy.close(ref, "the disk was cleaned")
    rec = incident(sim, ref)
    assert (rec["Status"], rec["Status_Reason"], rec["Resolution"]) == (
        "Resolved",
        "Automated Resolution Reported",
        "the disk was cleaned",
    )
    remedy.close(ref, "again")  # a retried close is harmless


def test_reopen_from_resolved_and_not_from_closed(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    ref = create(remedy)
    remedy.close(ref, "fixed")
    remedy.reopen(ref, "it is back")
    rec = incident(sim, ref)
    assert (rec["Status"], rec["Status_Reason"]) == ("Assigned", None)
    assert sim.worklogs[-1]["Detailed Description"] == "it is back"
    remedy.close(ref, "fixed again")
    SimControl(sim.base_url).act(ref.number, Status="Closed")
    remedy.close(ref, "closing a closed one is done")  # final already: nothing to do
    with pytest.raises(CannotReopen, match="Closed, which is final"):
        remedy.reopen(ref, "no")
    assert incident(sim, ref)["Status"] == "Closed"
    [status] = remedy.get_status([ref]).values()
    assert status.state == "CLOSED"


def test_status_is_read_fifty_incidents_per_query(
    sim: RemedySim, remedy: RemedyIntegration
) -> None:
    refs = [create(remedy, f"k{n}") for n in range(60)]
    remedy.close(refs[7], "done")
    before = len(requests_to(sim, "/HPD:IncidentInterface"))
    states = remedy.get_status([*refs, RemoteIncident("INC1|INC1", "INC000000099999")])
    assert len(requests_to(sim, "/HPD:IncidentInterface")) - before == 2
    assert set(states) == {r.remote_id for r in refs}
    assert states[refs[7].remote_id].state == "RESOLVED"
    assert {s.state for k, s in states.items() if k != refs[7].remote_id} == {"OPEN"}


# -- the login -----------------------------------------------------------------------------------
def test_an_expired_token_means_one_more_login(sim: RemedySim, remedy: RemedyIntegration) -> None:
    now = [1000.0]
    sim.clock = lambda: now[0]
    ref = create(remedy)
    now[0] += 3601  # the token ran out
    assert remedy.find_by_number(ref.number) == ref
    logins = requests_to(sim, "/api/jwt/login")
    assert [r["status"] for r in logins] == [200, 200]
    assert [r["status"] for r in requests_to(sim, "/HPD:IncidentInterface")].count(401) == 1


def test_a_token_that_never_works_is_an_error_not_a_loop(sim: RemedySim) -> None:
    sim.token_ttl = 0.0  # every token is dead on arrival
    plugin = plugin_for(sim)
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        plugin.find("k")
    assert caught.value.status == 401
    assert len(requests_to(sim, "/api/jwt/login")) == 2


def test_shutdown_logs_out(sim: RemedySim) -> None:
    plugin = plugin_for(sim)
    plugin.find("k")
    assert len(sim.tokens) == 1
    plugin.shutdown()
    assert sim.tokens == {} and len(requests_to(sim, "/api/jwt/logout")) == 1
    plugin_for(sim).shutdown()  # never logged in: nothing to end
    assert len(requests_to(sim, "/api/jwt/logout")) == 1


def test_a_wrong_password_is_permanent_and_not_repeated(sim: RemedySim) -> None:
    plugin = plugin_for(sim, password="Wr0ng-5ecret")
    with pytest.raises(PermanentError, match="Authentication failed") as caught:
        plugin.find("k")
    assert caught.value.status == 401 and "Wr0ng-5ecret" not in str(caught.value)
    assert len(requests_to(sim, "/api/jwt/login")) == 1


def test_the_login_takes_form_fields_and_answers_plain_text(sim: RemedySim) -> None:
    as_json = requests.post(
        f"{sim.base_url}/api/jwt/login", json={"username": "incman", "password": "x"}, timeout=5
    )
    assert as_json.status_code == 400 and as_json.json()[0]["messageType"] == "ERROR"
    good = requests.post(
        f"{sim.base_url}/api/jwt/login",
        data={"username": "incman", "password": "incman-secret"},
        timeout=5,
    )
    assert good.status_code == 200 and good.headers["Content-Type"] == "text/plain"
    unknown = requests.get(
        f"{sim.base_url}/api/arsys/v1/entry/HPD:IncidentInterface",
        params={"q": "'No Such Field'=\"x\""},
        headers={"Authorization": f"AR-JWT {good.text}"},
        timeout=5,
    )
    assert unknown.status_code == 400 and unknown.json()[0]["messageNumber"] == 1587


@pytest.mark.parametrize(("mode", "status"), [("429", 429), ("500", 500), ("drop", None)])
def test_faults_are_transient(
    sim: RemedySim, remedy: RemedyIntegration, mode: str, status: int | None
) -> None:
    SimControl(sim.base_url).fault(mode, path="/HPD:IncidentInterface_Create")
    with pytest.raises(TransientError) as caught:
        create(remedy)
    assert caught.value.status == status and sim.incidents == {}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"login_id": ""}, "set login_id, or first_name and last_name"),
        ({"web_url": "https://midtier/{nope}"}, "only {number} may be filled in"),
        ({"reopen_status": "Closed"}, "must be one of Assigned, In Progress"),
    ],
)
def test_bad_config_is_a_configuration_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(match)):
        RemedyIntegration({"url": "https://ar.example", **BASE, **config})


def test_web_url_makes_the_incident_link(sim: RemedySim) -> None:
    plugin = plugin_for(sim, web_url="https://midtier.example/incident/{number}")
    ref = create(plugin)
    assert ref.url == f"https://midtier.example/incident/{ref.number}"


def test_simulator_options() -> None:
    sim = make_simulator("remedy", {"token_ttl": "5", "people": "a,b", "answer_values": "no"})
    assert isinstance(sim, RemedySim)
    assert (sim.token_ttl, sorted(sim.people), sim.answer_values) == (5.0, ["a", "b"], False)


@pytest.mark.parametrize(
    ("system", "plugin", "config"),
    [
        ("remedy", RemedyIntegration, {"login_id": "allen", "username": "incman"}),
        (
            "remedyforce",
            RemedyforceIntegration,
            {"client_id": "incman-client", "client_secret": "incman-client-secret"},
        ),
    ],
)
def test_simulate_command_serves_both_bmc_simulators(
    system: str, plugin: type[Any], config: dict[str, Any]
) -> None:
    """`incman simulate remedy|remedyforce --port N` as a user would start it."""
    port = free_port()
    command = [sys.executable, "-m", "incman.cli", "simulate", system, "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--set", "password=demo-pass"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port("127.0.0.1", port, timeout=20)
        url = f"http://127.0.0.1:{port}"
        user = "incman" if system == "remedy" else "incman@incman.example"
        made = plugin({"url": url, **config, "username": user, "password": "demo-pass"})
        ref = made.create(made.default_fields(EVENT, None, URLS), "demo")
        assert made.find("demo") == ref
        made.shutdown()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"{system} simulator at http://127.0.0.1:{port}" in out
