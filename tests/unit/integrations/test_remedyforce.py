"""BMC Remedyforce plugin against the Remedyforce simulator over real HTTP on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import ConfigurationError, PermanentError, TransientError
from incman.integrations.remedyforce import RemedyforceIntegration
from incman.testing.registry import make_simulator
from incman.testing.remedyforce_sim import INCIDENT, RemedyforceSim
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
BASE = {
    "client_id": "incman-client",
    "client_secret": "incman-client-secret",
    "username": "incman@incman.example",
    "password": "incman-secret",
    "timeout": 5,
}
ONCALL = "oncall1@incman.example"


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(RemedyforceSim(security_token="T0KEN")) as srv:
        yield srv


@pytest.fixture()
def sim(server: SimServer) -> RemedyforceSim:
    SimControl(server.url).reset()
    app = server.app
    assert isinstance(app, RemedyforceSim)
    app.clock = RemedyforceSim().clock
    app.tokens.clear()
    app.limit, app.used, app.query_batch, app.token_ttl = 0, 0, 2000, 7200.0
    return app


def plugin_for(sim: RemedyforceSim, **config: Any) -> RemedyforceIntegration:
    settings = {"url": sim.base_url, **BASE, "security_token": "T0KEN", **config}
    plugin = RemedyforceIntegration(settings, "rf-test")
    plugin.http.guard = None  # flood control (Redis) is tested on its own
    return plugin


@pytest.fixture()
def rf(sim: RemedyforceSim) -> Iterator[RemedyforceIntegration]:
    plugin = plugin_for(sim)
    yield plugin
    plugin.shutdown()


def create(plugin: RemedyforceIntegration, key: str = "k1", **extra: Any) -> RemoteIncident:
    return plugin.create({**plugin.default_fields(EVENT, None, URLS), **extra}, key)


def record(sim: RemedyforceSim, ref: RemoteIncident) -> dict[str, Any]:
    return sim.records[INCIDENT][ref.remote_id]


def named(sim: RemedyforceSim, obj: str, record_id: str) -> str:
    return str(sim.records[obj][record_id]["Name"])


def calls(sim: RemedyforceSim, path: str = "") -> list[dict[str, Any]]:
    return [r for r in SimControl(sim.base_url).requests() if path in r["path"]]


# -- create ---------------------------------------------------------------------------------
def test_create_is_an_upsert_on_the_external_id_with_names_turned_into_ids(
    sim: RemedyforceSim,
) -> None:
    plugin = plugin_for(sim, category="Monitoring", client=ONCALL)
    ref = create(plugin, "3f2a")
    rec = record(sim, ref)
    assert re.fullmatch(r"a2B[a-zA-Z0-9]{15}", ref.remote_id) and ref.number == rec["Name"]
    assert (ref.state, ref.remote_state) == ("OPEN", "OPENED")
    assert rec["incman_Key__c"] == "3f2a" and rec["BMCServiceDesk__state__c"] is True
    assert named(sim, "BMCServiceDesk__Urgency__c", rec["BMCServiceDesk__FKUrgency__c"]) == "HIGH"
    assert named(sim, "BMCServiceDesk__Impact__c", rec["BMCServiceDesk__FKImpact__c"]) == "HIGH"
    assert named(sim, "BMCServiceDesk__Category__c", rec["BMCServiceDesk__FKCategory__c"]) == (
        "Monitoring"
    )
    assert sim.records["User"][rec["BMCServiceDesk__FKClient__c"]]["Username"] == ONCALL
    assert rec["BMCServiceDesk__shortDescription__c"] == "Disk full"
    assert "Event URL: http" in rec["BMCServiceDesk__incidentDescription__c"]
    [upsert] = calls(sim, "/incman_Key__c/")
    assert (upsert["method"], upsert["path"], upsert["status"]) == (
        "PATCH",
        f"/services/data/v59.0/sobjects/{INCIDENT}/incman_Key__c/3f2a",
        201,
    )
    assert ref.url == f"{sim.base_url}/{ref.remote_id}"


def test_lookups_are_made_once_per_plugin_instance(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    create(rf, "a")
    first = len(calls(sim, "/query"))
    create(rf, "b", BMCServiceDesk__FKUrgency__c="LOW")
    assert len(calls(sim, "/query")) - first == 2  # the new urgency, then the read back
    fields = rf.default_fields({**EVENT, "severity": 3}, None, URLS)
    assert (fields["BMCServiceDesk__FKUrgency__c"], fields["BMCServiceDesk__FKImpact__c"]) == (
        "MEDIUM",
        "MEDIUM",
    )


def test_a_second_create_with_the_key_updates_the_first(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    ref = create(rf, "twice")
    again = create(rf, "twice", BMCServiceDesk__shortDescription__c="Disk still full")
    assert again.remote_id == ref.remote_id and len(sim.records[INCIDENT]) == 1
    assert record(sim, ref)["BMCServiceDesk__shortDescription__c"] == "Disk still full"
    assert [c["status"] for c in calls(sim, "/incman_Key__c/")] == [201, 200]


def test_before_v46_an_upsert_that_updates_answers_204(sim: RemedyforceSim) -> None:
    plugin = plugin_for(sim, api_version="v45.0")
    ref = create(plugin, "old")
    assert create(plugin, "old") == ref
    assert [c["status"] for c in calls(sim, "/incman_Key__c/")] == [201, 204]


def test_the_key_field_never_goes_in_the_upsert_body(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    ref = create(rf, "mapped", incman_Key__c="something else")  # a mapping may set it
    assert record(sim, ref)["incman_Key__c"] == "mapped"
    token = next(iter(sim.tokens))
    refused = requests.patch(
        f"{sim.base_url}/services/data/v59.0/sobjects/{INCIDENT}/incman_Key__c/other",
        json={"incman_Key__c": "other"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"


def test_a_key_on_two_incidents_is_refused_with_300(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    first, second = create(rf, "one"), create(rf, "two")
    record(sim, second)["incman_Key__c"] = "one"  # as a bad data import would leave it
    with pytest.raises(PermanentError, match="several incidents carry") as caught:
        create(rf, "one")
    assert caught.value.status == 300
    assert {first.remote_id, second.remote_id} == set(sim.records[INCIDENT])


def test_unknown_names_and_bad_fields_are_permanent(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    with pytest.raises(PermanentError, match="no BMCServiceDesk__Status__c with Name 'NEW'"):
        create(rf, BMCServiceDesk__FKStatus__c="NEW")
    with pytest.raises(PermanentError, match="INVALID_FIELD"):
        create(rf, BMCServiceDesk__noSuchField__c="x")
    with pytest.raises(PermanentError, match="STRING_TOO_LONG"):
        create(rf, BMCServiceDesk__shortDescription__c="s" * 256)
    assert sim.records[INCIDENT] == {}


# -- find, notes, assign, close, reopen, status ------------------------------------------------
def test_find_by_key_and_by_number(sim: RemedyforceSim, rf: RemedyforceIntegration) -> None:
    ref = create(rf, "k-find")
    create(rf, "k-other")
    assert rf.find("k-find") == ref and rf.find("k-none") is None
    assert rf.find_by_number(ref.number) == ref
    assert rf.find_by_number("09999999") is None


def test_a_note_is_incident_history_with_the_notes_action(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    ref = create(rf)
    rf.add_note(ref, "disks checked")
    [history] = sim.records["BMCServiceDesk__IncidentHistory__c"].values()
    assert history["BMCServiceDesk__FKIncident__c"] == ref.remote_id
    assert history["BMCServiceDesk__note__c"] == "disks checked"
    assert named(sim, "BMCServiceDesk__Action__c", history["BMCServiceDesk__FKAction__c"]) == (
        "Notes"
    )


def test_assign_makes_the_user_the_owner(sim: RemedyforceSim) -> None:
    plugin = plugin_for(sim, user_map={"tester": ONCALL}, assigned_status="ASSIGNED")
    ref = create(plugin)
    plugin.assign(ref, "tester")
    rec = record(sim, ref)
    assert sim.records["User"][rec["OwnerId"]]["Username"] == ONCALL
    assert rec["BMCServiceDesk__Status_ID__c"] == "ASSIGNED"
    [status] = plugin.get_status([ref]).values()
    assert (status.state, status.assignee) == ("ASSIGNED", ONCALL)
    with pytest.raises(PermanentError, match="no User with Username 'stranger'"):
        plugin.assign(ref, "stranger")


def test_close_needs_a_resolution_and_can_be_reopened(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    ref = create(rf)
    with pytest.raises(PermanentError, match="Resolution is required"):
        rf.update(ref, {"BMCServiceDesk__FKStatus__c": "CLOSED"})
    rf.close(ref, "cleaned up")
    rec = record(sim, ref)
    assert (rec["BMCServiceDesk__Status_ID__c"], rec["BMCServiceDesk__state__c"]) == (
        "CLOSED",
        False,
    )
    assert rec["BMCServiceDesk__incidentResolution__c"] == "cleaned up"
    assert rf.get_status([ref])[ref.remote_id].state == "RESOLVED"
    rf.reopen(ref, "it is back")
    rec = record(sim, ref)
    assert (rec["BMCServiceDesk__Status_ID__c"], rec["BMCServiceDesk__state__c"]) == (
        "OPENED",
        True,
    )
    assert SimControl(sim.base_url).tickets()[0].notes == ["it is back"]


def test_status_in_one_query_following_next_records(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    refs = [create(rf, f"k{n}") for n in range(5)]
    rf.close(refs[0], "done")
    SimControl(sim.base_url).act(refs[1].number, status="PENDING", owner=ONCALL)
    sim.query_batch = 2  # pages of two records
    before = len(calls(sim, "/query"))
    states = rf.get_status([*refs, RemoteIncident("a2B5g0000000000AAA", "09999999")])
    assert len(calls(sim, "/query")) - before == 3  # the query, then two more pages
    assert set(states) == {r.remote_id for r in refs}
    assert states[refs[0].remote_id].state == "RESOLVED"
    assert (states[refs[1].remote_id].state, states[refs[1].remote_id].assignee) == (
        "ASSIGNED",
        ONCALL,
    )
    assert {states[r.remote_id].state for r in refs[2:]} == {"OPEN"}


def test_an_orgs_own_status_is_read_from_its_state_flag(sim: RemedyforceSim) -> None:
    plugin = plugin_for(sim, status_map={"WAITING": "OPEN"})
    assert plugin.map_state("WAITING") == "OPEN" and plugin.map_state("CLOSED") == "RESOLVED"
    ref = create(plugin)
    status = sim.records["BMCServiceDesk__Status__c"]
    closed = next(r for r in status.values() if r["Name"] == "CLOSED")
    closed["Name"] = "DONE FOR NOW"  # an org's renamed closed status
    record(sim, ref)["BMCServiceDesk__Status_ID__c"] = "DONE FOR NOW"
    record(sim, ref)["BMCServiceDesk__state__c"] = False
    assert plugin.get_status([ref])[ref.remote_id].state == "RESOLVED"


# -- login and limits ----------------------------------------------------------------------------
def test_an_expired_session_means_one_more_login(
    sim: RemedyforceSim, rf: RemedyforceIntegration
) -> None:
    now = [1000.0]
    sim.clock = lambda: now[0]
    ref = create(rf)
    now[0] += 7201
    assert rf.find("k1") == ref
    tokens = calls(sim, "/services/oauth2/token")
    assert [t["status"] for t in tokens] == [200, 200]
    assert [c["status"] for c in calls(sim, "/query")].count(401) == 1


def test_a_session_that_never_works_is_an_error_not_a_loop(sim: RemedyforceSim) -> None:
    sim.token_ttl = 0.0
    with pytest.raises(PermanentError, match="INVALID_SESSION_ID") as caught:
        plugin_for(sim).find("k")
    assert caught.value.status == 401 and len(calls(sim, "/services/oauth2/token")) == 2


def test_client_credentials_and_bad_secrets(sim: RemedyforceSim) -> None:
    plugin = plugin_for(sim, grant="client_credentials", username="", password="")
    assert plugin.find("k") is None
    wrong = plugin_for(sim, client_secret="n0t-the-5ecret")
    with pytest.raises(PermanentError, match="invalid_client") as caught:
        wrong.find("k")
    assert "n0t-the-5ecret" not in str(caught.value)
    no_token = plugin_for(sim, security_token="")
    with pytest.raises(PermanentError, match="authentication failure"):
        no_token.find("k")  # the security token belongs after the password


def test_the_used_up_request_limit_is_transient(sim: RemedyforceSim) -> None:
    plugin = plugin_for(sim, limit_backoff=90)
    ref = create(plugin)
    SimControl(sim.base_url)._call("POST", "limits", {"limit": sim.used, "used": sim.used})
    with pytest.raises(TransientError, match="request limit is used up") as caught:
        plugin.close(ref, "x")
    assert (caught.value.status, caught.value.retry_after) == (403, 90)
    assert "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
    SimControl(sim.base_url)._call("POST", "limits", {"limit": 0})
    plugin.close(ref, "x")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"username": ""}, "the password grant needs username and password"),
        ({"external_id_field": "IncmanKey"}, "must be a custom field"),
        ({"status_map": {"X": "DONE"}}, "states must be among"),
        ({"api_version": "59"}, "must look like v59.0"),
    ],
)
def test_bad_config_is_a_configuration_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RemedyforceIntegration({"url": "https://acme.my.salesforce.com", **BASE, **config})


def test_simulator_options_and_soql_strictness(sim: RemedyforceSim) -> None:
    made = make_simulator("remedyforce", {"request_limit": "5", "users": "a@x.example"})
    assert isinstance(made, RemedyforceSim) and made.limit == 5
    token = requests.post(
        f"{sim.base_url}/services/oauth2/token",
        data={**{k: v for k, v in BASE.items() if k != "timeout"}, "grant_type": "password"},
        timeout=5,
    )
    assert token.status_code == 400  # without the security token
    plugin_for(sim).find("k")
    bearer = {"Authorization": f"Bearer {next(iter(sim.tokens))}"}
    bad = requests.get(
        f"{sim.base_url}/services/data/v59.0/query",
        params={"q": f"SELECT Id, Nope__c FROM {INCIDENT}"},
        headers=bearer,
        timeout=5,
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
