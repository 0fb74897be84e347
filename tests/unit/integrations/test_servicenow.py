"""ServiceNow plugin against the ServiceNow simulator over real HTTP on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import ConfigurationError, PermanentError, TransientError
from incman.integrations.servicenow import ServiceNowIntegration
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimControl, SimServer

URLS = {
    "eventUrl": "http://incman.example/api/v1/events/e1",
    "deviceUrl": "http://incman.example/api/v1/events?device=db01",
}
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


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(ServiceNowSim(token="snow-bearer-token")) as srv:
        yield srv


@pytest.fixture()
def sim(server: SimServer) -> ServiceNowSim:
    SimControl(server.url).reset()
    app = server.app
    assert isinstance(app, ServiceNowSim)
    return app


def plugin_for(sim: ServiceNowSim, **config: Any) -> ServiceNowIntegration:
    base = {"url": sim.base_url, "username": "incman", "password": "incman-secret", "timeout": 5}
    return unguarded(ServiceNowIntegration({**base, **config}, "snow-test"))


def unguarded(plugin: ServiceNowIntegration) -> ServiceNowIntegration:
    plugin.http.guard = None  # flood control (Redis) is tested on its own
    return plugin


@pytest.fixture()
def snow(sim: ServiceNowSim) -> Iterator[ServiceNowIntegration]:
    plugin = plugin_for(sim)
    yield plugin
    plugin.shutdown()


def record(sim: ServiceNowSim, ref: RemoteIncident) -> dict[str, Any]:
    return next(
        r for r in SimControl(sim.base_url).state()["incidents"] if r["sys_id"] == ref.remote_id
    )


def create(snow: ServiceNowIntegration, key: str = "k1", **extra: Any) -> RemoteIncident:
    return snow.create({**snow.default_fields(EVENT, None, URLS), **extra}, key)


# -- create, find, fields -------------------------------------------------------------------
def test_create_writes_the_correlation_key_and_default_fields(
    sim: ServiceNowSim, snow: ServiceNowIntegration
) -> None:
    ref = create(snow, "3f2a")
    assert re.fullmatch(r"[0-9a-f]{32}", ref.remote_id)
    assert ref.number == "INC0010001"
    assert ref.url == f"{sim.base_url}/incident.do?sys_id={ref.remote_id}"
    assert (ref.state, ref.remote_state) == ("OPEN", "1")
    rec = record(sim, ref)
    assert rec["correlation_id"] == "3f2a"
    assert rec["correlation_display"] == "incman"
    assert rec["short_description"] == "Disk full"
    assert (rec["impact"], rec["urgency"], rec["priority"]) == ("1", "1", "1")
    assert "Event URL: http://incman.example/api/v1/events/e1" in rec["description"]
    assert "[code]" not in rec["description"]
    assert create(snow, "other").number == "INC0010002"


@pytest.mark.parametrize(
    ("severity", "impact", "urgency", "snow_severity"),
    [
        (5, "1", "1", "1"),
        (4, "2", "1", "2"),
        (3, "2", "2", "3"),
        (2, "3", "2", "3"),
        (1, "3", "3", "3"),
        (0, "3", "3", "3"),
    ],
)
def test_impact_urgency_and_severity_follow_the_event_severity(
    snow: ServiceNowIntegration, severity: int, impact: str, urgency: str, snow_severity: str
) -> None:
    fields = snow.default_fields({**EVENT, "severity": severity}, None, URLS)
    assert (fields["impact"], fields["urgency"], fields["severity"]) == (
        impact,
        urgency,
        snow_severity,
    )


def test_default_fields_cut_the_summary_and_add_configured_caller_and_group(
    sim: ServiceNowSim,
) -> None:
    plugin = plugin_for(sim, caller="oncall1", assignment_group="Network", category="network")
    fields = plugin.default_fields({**EVENT, "summary": "x" * 300}, None, URLS)
    assert len(fields["short_description"]) == 160
    assert (fields["caller_id"], fields["assignment_group"], fields["category"]) == (
        "oncall1",
        "Network",
        "network",
    )


def test_reference_fields_given_by_name_are_resolved_by_servicenow(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, caller="oncall1", assignment_group="Network")
    rec = record(sim, create(plugin))
    assert rec["caller_id_name"] == "Oncall1"
    assert rec["assignment_group_name"] == "Network"
    assert not any("sys_user" in r["path"] for r in SimControl(sim.base_url).requests())


def test_find_by_correlation_key(sim: ServiceNowSim, snow: ServiceNowIntegration) -> None:
    made = create(snow, "key-a")
    create(snow, "key-ab")
    found = snow.find("key-a")
    assert found is not None and found.remote_id == made.remote_id
    assert snow.find("missing") is None  # v1: 404 "No Record found" means none


def test_find_on_v2_where_an_empty_list_is_200(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, api_version="v2")
    assert plugin.find("missing") is None
    made = create(plugin, "key-v2")
    found = plugin.find("key-v2")
    assert found is not None and found.number == made.number


def test_simulator_drops_unknown_query_terms_like_servicenow(
    sim: ServiceNowSim, snow: ServiceNowIntegration
) -> None:
    create(snow, "a")
    create(snow, "b")
    url = f"{sim.base_url}/api/now/table/incident"
    auth = ("incman", "incman-secret")
    typo = requests.get(url, params={"sysparm_query": "corelation_id=zzz"}, auth=auth, timeout=5)
    assert len(typo.json()["result"]) == 2  # the trap the plugin guards against
    v2 = requests.get(
        url.replace("/now/", "/now/v2/"), params={"sysparm_query": "number=x"}, auth=auth, timeout=5
    )
    assert (v2.status_code, v2.json()) == (200, {"result": []})
    v1 = requests.get(url, params={"sysparm_query": "number=x"}, auth=auth, timeout=5)
    assert v1.status_code == 404 and v1.json()["error"]["message"] == "No Record found"


# -- notes, assign ---------------------------------------------------------------------------
def test_note_is_a_work_note(sim: ServiceNowSim, snow: ServiceNowIntegration) -> None:
    ref = create(snow)
    snow.add_note(ref, "New event for existing incident: e2")
    journal = record(sim, ref)["journal"]
    assert [(j["element"], j["value"]) for j in journal] == [
        ("work_notes", "New event for existing incident: e2")
    ]


def test_note_field_comments(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, note_field="comments")
    ref = create(plugin)
    plugin.add_note(ref, "visible")
    assert record(sim, ref)["journal"][0]["element"] == "comments"


def test_manual_style_assign_is_a_patch_of_the_incident_without_user_lookups(
    sim: ServiceNowSim,
) -> None:
    """The seed's 3.0.2 bug: assign after a manual create answered 403. The account may not
    read sys_user here either; assign must not need to."""
    control = SimControl(sim.base_url)
    forbidden = requests.get(
        f"{sim.base_url}/api/now/table/sys_user", auth=("incman", "incman-secret"), timeout=5
    )
    assert forbidden.status_code == 403
    plugin = plugin_for(sim, assignment_group="Service Desk")
    ref = create(plugin, "manual-1", caller_id="tester")  # as made from the event console
    plugin.assign(ref, "tester")
    rec = record(sim, ref)
    assert rec["assigned_to_name"] == "Tester"
    assert rec["assignment_group_name"] == "Service Desk"
    assign = [r for r in control.requests() if r["method"] == "PATCH"][-1]
    assert assign["path"] == f"/api/now/table/incident/{ref.remote_id}"
    assert assign["query"]["sysparm_input_display_value"] == "true"
    assert assign["status"] == 200
    assert not any("sys_user" in r["path"] for r in control.requests() if r["status"] != 403)
    fresh = plugin.get_status([ref])[ref.remote_id]
    assert fresh.state == "ASSIGNED" and fresh.assignee


def test_assign_maps_users_and_refuses_unknown_ones(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, user_map={"alice": "oncall2"})
    ref = create(plugin)
    plugin.assign(ref, "alice")
    assert record(sim, ref)["assigned_to_name"] == "Oncall2"
    with pytest.raises(PermanentError, match=r"no user 'nobody'.*user_map"):
        plugin.assign(ref, "nobody")


# -- close, reopen, status ------------------------------------------------------------------
def test_close_resolves_with_close_code_and_notes(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, close_code="Solved Remotely (Permanently)")
    ref = create(plugin)
    plugin.close(ref, "Event e1 closed by oncall1")
    rec = record(sim, ref)
    assert (rec["state"], rec["close_code"], rec["close_notes"]) == (
        "6",
        "Solved Remotely (Permanently)",
        "Event e1 closed by oncall1",
    )
    assert plugin.get_status([ref])[ref.remote_id].state == "RESOLVED"


def test_resolving_without_close_code_is_refused_by_the_data_policy(
    sim: ServiceNowSim, snow: ServiceNowIntegration
) -> None:
    ref = create(snow)
    with pytest.raises(PermanentError, match=r"403.*mandatory"):
        snow.update(ref, {"state": "6"})


def test_close_of_an_incident_closed_meanwhile_is_done(
    sim: ServiceNowSim, snow: ServiceNowIntegration
) -> None:
    ref = create(snow)
    SimControl(sim.base_url).act(
        ref.number, state="7", close_code="Solved (Work Around)", close_notes="done by hand"
    )
    snow.close(ref, "again")  # read-only now (403), but closed: nothing left to do
    assert record(sim, ref)["state"] == "7"


def test_reopen_from_resolved_and_not_from_closed(
    sim: ServiceNowSim, snow: ServiceNowIntegration
) -> None:
    ref = create(snow)
    snow.close(ref, "fixed")
    snow.reopen(ref, "Event e1 re-opened by oncall1")
    rec = record(sim, ref)
    assert (rec["state"], rec["reopen_count"]) == ("2", "1")
    assert rec["journal"][-1]["value"] == "Event e1 re-opened by oncall1"
    SimControl(sim.base_url).act(ref.remote_id, state="7", close_code="x", close_notes="y")
    with pytest.raises(PermanentError, match="read-only"):
        snow.reopen(ref, "")


def test_status_is_read_in_batches_of_100(sim: ServiceNowSim, snow: ServiceNowIntegration) -> None:
    refs = [create(snow, f"k{n}") for n in range(150)]
    control = SimControl(sim.base_url)
    control.act(refs[0].number, state="6", close_code="x", close_notes="y")
    control.act(refs[1].number, state="7", close_code="x", close_notes="y")
    control.act(refs[2].number, assigned_to="oncall1")
    before = len(control.requests())
    gone = RemoteIncident(remote_id="0" * 32, number="INC0999999")
    fresh = snow.get_status([*refs, gone])
    reads = control.requests()[before:]
    assert len(reads) == 2 and all("sys_idIN" in r["query"]["sysparm_query"] for r in reads)
    assert len(fresh) == 150
    assert [fresh[r.remote_id].state for r in refs[:4]] == [
        "RESOLVED",
        "CLOSED",
        "ASSIGNED",
        "OPEN",
    ]
    assert fresh[refs[1].remote_id].remote_state == "7"


def test_the_default_final_state_is_7(sim: ServiceNowSim, snow: ServiceNowIntegration) -> None:
    """Seed 000, 2.9.4: "ServiceNow 'Incident Final States' configuration added (default
    '7')": with nothing configured 7 (Closed) is final, 6 (Resolved) is not."""
    assert snow.cfg.final_states == ("7",)
    resolved, closed = create(snow, "k-resolved"), create(snow, "k-closed")
    control = SimControl(sim.base_url)
    control.act(resolved.number, state="6", close_code="x", close_notes="y")
    control.act(closed.number, state="7", close_code="x", close_notes="y")
    fresh = snow.get_status([resolved, closed])
    assert fresh[resolved.remote_id].state == "RESOLVED"
    assert fresh[closed.remote_id].state == "CLOSED"


def test_final_states_decide_what_is_closed(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, final_states=["6", "7"])
    ref = create(plugin)
    plugin.close(ref, "done")
    assert plugin.get_status([ref])[ref.remote_id].state == "CLOSED"
    assert plugin_for(sim, final_states="6,7").cfg.final_states == ("6", "7")


# -- Import Set API -------------------------------------------------------------------------
def test_import_set_creates_through_the_transform_and_coalesces(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, api="importset", import_table="u_incman_incident")
    fields = {f"u_{k}": v for k, v in plugin.default_fields(EVENT, None, URLS).items()}
    ref = plugin.create(fields, "imp-1")
    assert ref.number == "INC0010001"
    assert ref.url == f"{sim.base_url}/incident.do?sys_id={ref.remote_id}"
    rec = record(sim, ref)
    assert (rec["short_description"], rec["correlation_id"]) == ("Disk full", "imp-1")
    again = plugin.create(fields, "imp-1")  # coalesces on correlation_id
    assert again.remote_id == ref.remote_id
    assert [s["result"]["status"] for s in SimControl(sim.base_url).state()["import_sets"]] == [
        "inserted",
        "updated",
    ]
    found = plugin.find("imp-1")
    assert found is not None and found.remote_id == ref.remote_id


def test_import_set_transform_error_is_permanent(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, api="importset", import_table="u_incman_incident")
    with pytest.raises(PermanentError, match="short_description is mandatory"):
        plugin.create({"u_description": "no summary"}, "imp-2")
    with pytest.raises(PermanentError, match="Invalid table"):
        plugin_for(sim, api="importset", import_table="u_other").create({}, "imp-3")


# -- errors, auth, config -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "options", "match"),
    [
        ("429", {"retry_after": 7}, "HTTP 429"),
        ("500", {}, "HTTP 500"),
        ("drop", {}, "connection failed"),
    ],
)
def test_faults_are_transient(
    sim: ServiceNowSim, snow: ServiceNowIntegration, mode: str, options: dict[str, Any], match: str
) -> None:
    SimControl(sim.base_url).fault(mode, 1, **options)
    with pytest.raises(TransientError, match=match) as caught:
        create(snow)
    if mode == "429":
        assert caught.value.retry_after == 7
    assert SimControl(sim.base_url).state()["incidents"] == []
    assert create(snow).number == "INC0010001"  # the fault was used up


def test_lost_answers_leave_a_record_the_next_find_sees(sim: ServiceNowSim) -> None:
    plugin = plugin_for(sim, timeout=0.5)
    control = SimControl(sim.base_url)
    control.fault("commit_then_drop", 1, method="POST")
    with pytest.raises(TransientError):
        create(plugin, "lost-1")
    control.fault("slow", 1, method="POST", delay=1.5)
    with pytest.raises(TransientError, match="timed out"):
        create(plugin, "lost-2")
    for key in ("lost-1", "lost-2"):
        assert plugin.find(key) is not None
    assert len(control.state()["incidents"]) == 2


def test_bearer_token_and_bad_credentials(sim: ServiceNowSim) -> None:
    plugin = unguarded(ServiceNowIntegration({"url": sim.base_url, "token": "snow-bearer-token"}))
    assert plugin.find("nothing") is None
    wrong = plugin_for(sim, password="wrong-password")
    with pytest.raises(PermanentError, match="HTTP 401") as caught:
        wrong.find("x")
    assert "wrong-password" not in str(caught.value)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"url": "ftp://x", "token": "t"}, "url"),
        ({"url": "http://x"}, "username and password, or token"),
        ({"url": "http://x", "token": "t", "api": "soap"}, "config.api: must be one of"),
        ({"url": "http://x", "token": "t", "api": "importset"}, "import_table"),
        ({"url": "http://x", "token": "t", "final_states": []}, "final_states"),
        ({"url": "http://x", "token": "t", "note_field": "x"}, "note_field"),
    ],
)
def test_bad_config_is_a_configuration_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ServiceNowIntegration(config)


def test_fault_control_refuses_bad_faults(sim: ServiceNowSim) -> None:
    resp = requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "teapot"}, timeout=5)
    assert resp.status_code == 400 and "mode must be one of" in resp.json()["error"]
    resp = requests.post(
        f"{sim.base_url}/_sim/faults",
        json={"faults": [{"mode": "500", "count": 2, "path": "/incident"}]},
        timeout=5,
    )
    assert resp.status_code == 201 and resp.json()["faults"][0]["count"] == 2


def test_simulate_command_serves_a_simulator(tmp_path: Any) -> None:
    """`incman simulate servicenow --port N` as a user would start it."""
    import subprocess
    import sys

    from incman.testing.procs import free_port, wait_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incman.cli",
            "simulate",
            "servicenow",
            "--port",
            str(port),
            "--set",
            "password=demo-pass",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port("127.0.0.1", port, timeout=20)
        url = f"http://127.0.0.1:{port}"
        plugin = unguarded(
            ServiceNowIntegration({"url": url, "username": "incman", "password": "demo-pass"})
        )
        ref = plugin.create({"short_description": "tried by hand"}, "demo")
        assert ref.number == "INC0010001"
        assert SimControl(url).state()["incidents"][0]["short_description"] == "tried by hand"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"ServiceNow simulator at http://127.0.0.1:{port}" in out


def test_simulator_registry_checks_options() -> None:
    from incman.testing.registry import make_simulator, simulator_names

    assert {"servicenow", "jira"} <= set(simulator_names())
    sim = make_simulator("servicenow", {"sys_user_readable": "true", "users": "a,b"})
    assert isinstance(sim, ServiceNowSim) and sim.sys_user_readable
    assert [u["user_name"] for u in sim.users.values()] == ["a", "b"]
    with pytest.raises(ValueError, match="unknown option colour"):
        make_simulator("servicenow", {"colour": "red"})
    with pytest.raises(ValueError, match="unknown simulator 'nosuchsystem'"):
        make_simulator("nosuchsystem")


def test_oauth_logs_in_once_and_refreshes_an_expired_token() -> None:
    sim = ServiceNowSim(client_id="incman-client", client_secret="client-secret")
    with SimServer(sim) as srv:
        control = SimControl(srv.url)
        plugin = unguarded(
            ServiceNowIntegration(
                {
                    "url": srv.url,
                    "username": "incman",
                    "password": "incman-secret",
                    "client_id": "incman-client",
                    "client_secret": "client-secret",
                }
            )
        )
        ref = plugin.create({"short_description": "via OAuth"}, "k-oauth")
        assert plugin.find("k-oauth") == ref
        control.fault("401")  # every token handed out so far expires
        assert plugin.find("k-oauth") == ref
        logins = [r for r in control.requests() if r["path"] == "/oauth_token.do"]
        assert [r["status"] for r in logins] == [200, 200]
        assert [r["status"] for r in control.requests() if r["fault"] == "401"] == [401]
        assert len(sim.access_tokens) == 1 and len(sim.refresh_tokens) == 1  # refreshed
        plugin.shutdown()
        wrong = ServiceNowIntegration(
            {
                "url": srv.url,
                "username": "incman",
                "password": "incman-secret",
                "client_id": "incman-client",
                "client_secret": "not-it",
            }
        )
        with pytest.raises(PermanentError, match="HTTP 401") as caught:
            wrong.find("k-oauth")
        assert "not-it" not in str(caught.value)
