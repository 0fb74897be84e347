"""Redmine for real: a private Redmine 5 instance, the plugin against it, and the whole
lifecycle through the pipeline (API → worker on itsm.redmine → Redmine REST → poll → events),
faults injected by a proxy in front of the real server.

`make test-redmine` installs Redmine (deploy/install-redmine.sh) and runs this module; without
Redmine installed the tests here are skipped, saying so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, created_incident, send_disk_event, unique, wait_for

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import CannotReopen, PermanentError
from incman.integrations.redmine import RedmineIntegration
from incman.sync.poll import poll_notification
from incman.testing.redmine_server import (
    PROJECT,
    REDMINE_ROOT,
    RedmineServer,
    RedmineSetup,
    redmine_installed,
)
from incman.testing.simbase import ProxySim, SimControl, SimServer

MISSING = (
    f"Redmine is not installed ({REDMINE_ROOT}/config.ru or puma is absent): "
    "`make test-redmine` installs it and runs these tests"
)
REQUIRED = os.environ.get("INCMAN_REQUIRE_REDMINE") == "1"  # set by `make test-redmine`
needs_redmine = pytest.mark.skipif(not redmine_installed() and not REQUIRED, reason=MISSING)
EVENT = {"summary": "Disk full", "message": "/var is full", "device": "db01", "severity": 5}


@pytest.fixture(scope="module")
def rm() -> Iterator[RedmineServer]:
    if not redmine_installed():
        if REQUIRED:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with RedmineServer() as server:
        yield server


@pytest.fixture(scope="module")
def setup(rm: RedmineServer) -> RedmineSetup:
    assert rm.setup is not None
    return rm.setup


def plugin(rm: RedmineServer, key: str, **extra: Any) -> RedmineIntegration:
    return RedmineIntegration({"url": rm.url, "api_key": key, "project": PROJECT, **extra})


def notes(rm: RedmineServer, issue_id: str) -> list[str]:
    return [j["notes"] for j in rm.issue(issue_id)["journals"] if j.get("notes")]


# -- the plugin against a real Redmine -----------------------------------------------------------


@needs_redmine
def test_create_find_and_batched_status_with_an_admin_key(
    rm: RedmineServer, setup: RedmineSetup
) -> None:
    admin = plugin(rm, setup.admin_api_key)  # the field by name: admins may list fields
    fields = admin.default_fields(EVENT, None, {"eventUrl": "http://incman.test/e/1"})
    ref = admin.create(fields, "key-admin")
    issue = rm.issue(ref.remote_id)
    assert issue["subject"] == "Disk full" and issue["priority"]["name"] == "Urgent"
    assert "Event URL: http://incman.test/e/1" in issue["description"]
    assert [c["value"] for c in issue["custom_fields"] if c["name"] == "IncidentID"] == [
        "key-admin"
    ]
    assert (ref.url, ref.state, ref.remote_state) == (
        f"{rm.url}/issues/{ref.remote_id}",
        "OPEN",
        "New",
    )
    found = admin.find("key-admin")
    assert found is not None and found.remote_id == ref.remote_id
    assert admin.find("key-nothing") is None

    others = [admin.create({"subject": f"other {n}"}, f"key-other-{n}") for n in range(3)]
    rm.call("PUT", f"issues/{others[0].remote_id}.json", json={"issue": {"status_id": 3}})
    rm.call("PUT", f"issues/{others[1].remote_id}.json", json={"issue": {"status_id": 6}})
    rm.call("PUT", f"issues/{others[2].remote_id}.json", json={"issue": {"assigned_to_id": 1}})
    rm.call("DELETE", f"issues/{ref.remote_id}.json")
    states = admin.get_status([ref, *others, RemoteIncident("999999", "999999")])
    assert {k: (v.state, v.remote_state) for k, v in states.items()} == {
        others[0].remote_id: ("RESOLVED", "Resolved"),
        others[1].remote_id: ("CLOSED", "Rejected"),
        others[2].remote_id: ("ASSIGNED", "New"),
    }
    assert states[others[2].remote_id].assignee == "Redmine Admin"


@needs_redmine
def test_what_redmine_drops_quietly_is_a_clear_error(
    rm: RedmineServer, setup: RedmineSetup
) -> None:
    member = setup.user_api_key
    # A tracker without the correlation field: Redmine drops the value and answers 201.
    bare = plugin(rm, member, correlation_field=str(setup.custom_field_id), tracker="Bare")
    with pytest.raises(PermanentError, match="did not keep the correlation key") as caught:
        bare.create({"subject": "orphan"}, "key-orphan")
    orphan = str(caught.value).split("issue ")[1].split(" ")[0]
    assert rm.issue(orphan)["status"]["name"] == "Resolved"  # a member may not delete it
    assert "correlation custom field is missing" in notes(rm, orphan)[0]

    # A field that is no filter: Redmine ignores `cf_2=` and answers every issue.
    unfiltered = plugin(rm, member, correlation_field=str(setup.unfiltered_field_id))
    with pytest.raises(PermanentError, match="must be 'used as a filter'"):
        unfiltered.find("key-anything")

    with pytest.raises(PermanentError, match="only an administrator may list custom fields"):
        plugin(rm, member).find("key-by-name")
    with pytest.raises(PermanentError, match="HTTP 401") as unauthorized:
        plugin(rm, "0" * 40, correlation_field="1").find("key-x")
    assert unauthorized.value.status == 401
    with pytest.raises(PermanentError, match="no project 'nosuch'"):
        plugin(rm, member, project="nosuch", correlation_field="1").find("key-x")
    checked = plugin(rm, member, correlation_field="1")
    with pytest.raises(PermanentError, match="no priority 'Bogus'"):
        checked.create({"subject": "x", "priority": "Bogus"}, "key-bad")
    ref = checked.create({"subject": "valid"}, unique("key"))
    with pytest.raises(PermanentError, match="Subject cannot be blank") as refused:
        checked.update(ref, {"subject": ""})  # 422 {"errors": [...]}
    assert refused.value.status == 422


@needs_redmine
def test_the_workflow_decides_and_closed_is_for_good(
    rm: RedmineServer, setup: RedmineSetup
) -> None:
    """A member (Developer) may go New → Resolved → In Progress, not out of Closed; a status
    Redmine would ignore silently is refused up front."""
    member = plugin(rm, setup.user_api_key, correlation_field=str(setup.custom_field_id))
    ref = member.create({"subject": "workflow"}, unique("key"))
    member.close(ref, "fixed")
    member.close(ref, "fixed again")  # already Resolved: no second note
    assert notes(rm, ref.remote_id) == ["fixed"]
    member.reopen(ref, "back")
    assert rm.issue(ref.remote_id)["status"]["name"] == "In Progress"
    with pytest.raises(PermanentError, match="does not allow this user to go from In Progress"):
        plugin(rm, setup.user_api_key, correlation_field="1", close_status="Rejected").close(
            ref, "x"
        )
    rm.call("PUT", f"issues/{ref.remote_id}.json", json={"issue": {"status_id": 5}})
    with pytest.raises(CannotReopen, match="is Closed"):
        member.reopen(ref, "again")
    # an administrator may re-open anything
    plugin(rm, setup.admin_api_key, correlation_field="1").reopen(ref, "admin re-opens")
    assert rm.issue(ref.remote_id)["status"]["name"] == "In Progress"


@needs_redmine
def test_assign_by_login_name_or_to_the_api_user(rm: RedmineServer, setup: RedmineSetup) -> None:
    member = plugin(rm, setup.user_api_key, correlation_field="1")
    admin = plugin(rm, setup.admin_api_key, correlation_field="1")
    ref = member.create({"subject": "assign"}, unique("key"))
    admin.assign(ref, "jdoe")  # by login: an administrator may list users
    assert rm.issue(ref.remote_id)["assigned_to"]["id"] == setup.user_id
    rm.call("PUT", f"issues/{ref.remote_id}.json", json={"issue": {"assigned_to_id": ""}})
    member.assign(ref, "Jane Doe")  # by name among the project's members
    assert rm.issue(ref.remote_id)["assigned_to"]["id"] == setup.user_id
    rm.call("PUT", f"issues/{ref.remote_id}.json", json={"issue": {"assigned_to_id": ""}})
    member.assign(ref, "alice")  # nobody of that name: the API user takes it, and says why
    assert rm.issue(ref.remote_id)["assigned_to"]["id"] == setup.user_id
    assert notes(rm, ref.remote_id) == [
        "Acknowledged in incman by alice (no Redmine user of that name)"
    ]


# -- the pipeline -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(rm: RedmineServer) -> Iterator[SimControl]:
    with SimServer(ProxySim(rm.url)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def stack(make_stack: Any, rm: RedmineServer, setup: RedmineSetup, proxy: SimControl) -> Any:
    def notification(nid: str, trigger: str, url: str, **extra: Any) -> dict[str, Any]:
        config = {
            "url": url,
            "api_key": "${env:REDMINE_TEST_KEY}",
            "project": PROJECT,
            "correlation_field": str(setup.custom_field_id),
            "user_map": {"tester": "Jane Doe"},
            "timeout": 10,
        }
        return {
            "id": nid,
            "integration": "redmine",
            "triggers": [trigger],
            "config": config,
            **extra,
        }

    config = {
        "triggers": [
            {"id": "rm-devices", "when": {"device": {"_m": "^rm-"}}},
            {"id": "rmfault-devices", "when": {"device": {"_m": "^rmfault-"}}},
        ],
        "notifications": [
            notification(
                "rm-ops",
                "rm-devices",
                rm.url,
                options={"initial_occurrence_only": False, "close_event_on_resolve": True},
                field_mapping=(
                    "subject, [${defaultFields/priority}] ${evt/summary} on ${dev/titleOrId}\n"
                    "priority, ${removeField}\n"
                ),
            ),
            notification("rm-faults", "rmfault-devices", proxy.url),
        ],
        "devices": [{"id": "rm-db01", "title": "Primary database"}],
    }
    return make_stack(
        config,
        queues="ingest,poll,maintenance,itsm.redmine",
        extra_env={"REDMINE_TEST_KEY": setup.user_api_key},
    )


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def status_of(rm: RedmineServer, issue_id: str) -> str:
    return str(rm.issue(issue_id)["status"]["name"])


@needs_redmine
def test_the_whole_lifecycle_on_a_real_redmine(
    client: Client, rm: RedmineServer, setup: RedmineSetup, stack: Any
) -> None:
    event_id = send_disk_event(client, "rm-db01")
    inc = created_incident(client, event_id, timeout=60)
    issue_id = inc["number"]
    issue = rm.issue(issue_id)
    # the field mapping: the default priority's name in the subject, the priority removed
    assert issue["subject"] == "[Urgent] Disk full on Primary database"
    assert issue["priority"]["name"] == "Normal"
    assert f"/events/{event_id}" in issue["description"]  # the event's URL
    assert [i["id"] for i in rm.issues_with_key(inc["correlationKey"])] == [int(issue_id)]
    assert inc["url"] == f"{rm.url}/issues/{issue_id}"

    send_disk_event(client, "rm-db01")  # re-occurrence → a note
    wait_for(
        lambda: any("occurred again" in n for n in notes(rm, issue_id)),
        timeout=60,
        what="the re-occurrence note",
    )
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(
        lambda: rm.issue(issue_id).get("assigned_to", {}).get("id") == setup.user_id,
        timeout=60,
        what="the issue assigned",
    )
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"}).ok
    wait_for(lambda: "tester: disks checked" in notes(rm, issue_id), timeout=60, what="the note")
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: status_of(rm, issue_id) == "Resolved", timeout=60, what="the resolve")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_for(lambda: status_of(rm, issue_id) == "In Progress", timeout=60, what="the re-open")

    # Someone resolves it in Redmine; the poller brings that back onto the event.
    rm.call("PUT", f"issues/{issue_id}.json", json={"issue": {"status_id": 3}})
    result = poll_notification("rm-ops")
    assert result["polled"] >= 1 and result["changed"] >= 1, result
    ev = client.get(f"/api/v1/events/{event_id}").json()
    assert ev["status"] == "Closed"
    assert ev["incidents"][0]["state"] == "RESOLVED"
    assert len(rm.issues_with_key(inc["correlationKey"])) == 1

    logs = "".join(w.output() for w in stack.workers) + stack.api.output()
    assert setup.user_api_key not in logs
    assert setup.user_api_key not in client.get("/api/v1/notifications/rm-ops").text


@needs_redmine
def test_reopen_of_an_issue_closed_for_good_opens_a_new_one(
    client: Client, rm: RedmineServer
) -> None:
    """The member's workflow has no way out of Closed: the event gets a new issue."""
    event_id = send_disk_event(client, unique("rm"))
    old = created_incident(client, event_id, timeout=60)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: status_of(rm, old["number"]) == "Resolved", timeout=60, what="resolve")
    rm.call("PUT", f"issues/{old['number']}.json", json={"issue": {"status_id": 5}})
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> str | None:
        number = client.get(f"/api/v1/events/{event_id}").json()["incident"]
        return number if number and number != old["number"] else None

    new = wait_for(moved, timeout=60, what="a new issue for the event")
    assert status_of(rm, new) == "New" and status_of(rm, old["number"]) == "Closed"
    dead = client.get("/api/v1/dead-letter", params={"notificationId": "rm-ops"}).json()
    assert dead["items"] == [], dead


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 3, "retry_after": 1}),
        ("500", {"count": 2}),
        ("drop", {"count": 1}),
        ("commit_then_drop", {"count": 1}),
    ],
)
@needs_redmine
def test_faults_still_make_exactly_one_issue(
    client: Client, rm: RedmineServer, proxy: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(proxy.requests())
    proxy.fault(fault, method="POST", path="/issues.json", **options)
    event_id = send_disk_event(client, unique("rmfault"))
    inc = created_incident(client, event_id, timeout=90)
    assert [i["id"] for i in rm.issues_with_key(inc["correlationKey"])] == [int(inc["number"])]
    seen = [r for r in proxy.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"]
    assert proxy.faults() == []


@needs_redmine
def test_a_key_refused_mid_run_is_not_retried_and_replays_once_fixed(
    client: Client, rm: RedmineServer, proxy: SimControl
) -> None:
    """Redmine's API keys do not expire, so a 401 means the key was revoked or is wrong: the
    action goes to the dead letter at once (no login to refresh, no retry loop), and a replay
    once the key works makes the one issue."""
    before = len(proxy.requests())
    proxy.fault("401", method="POST", path="/issues.json")
    event_id = send_disk_event(client, unique("rmfault"))

    def dead() -> list[dict[str, Any]]:
        items = client.get("/api/v1/dead-letter", params={"notificationId": "rm-faults"}).json()
        return [a for a in items["items"] if a["eventId"] == event_id]

    [action] = wait_for(dead, timeout=60, what="the refused create in the dead letter")
    assert "HTTP 401" in action["lastError"]
    assert [r["fault"] for r in proxy.requests()[before:] if r["status"] == 401] == ["401"]
    resp = client.post("/api/v1/dead-letter/replay", {"ids": [action["id"]]})
    assert resp.status_code == 200, resp.text
    inc = created_incident(client, event_id, timeout=60)
    assert [i["id"] for i in rm.issues_with_key(inc["correlationKey"])] == [int(inc["number"])]
