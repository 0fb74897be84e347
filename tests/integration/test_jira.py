"""Jira through the real pipeline (API, PostgreSQL, a Celery worker on `itsm.jira`) against
the Jira simulator (Cloud flavour) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, created_incident, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.jira_sim import JiraSim
from incman.testing.simbase import SimControl, SimServer

TOKEN = "jira-T0ken-5d1e0b77a2"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(JiraSim(flavor="cloud", api_token=TOKEN)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    config = {
        "url": sim.url,
        "flavor": "cloud",
        "username": "incman@example.com",
        "api_token": TOKEN,
        "project": "PROJ",
        "issue_type": "Incident",
        "timeout": 5,
    }
    return make_stack(
        {
            "triggers": [
                {"id": "life", "when": {"device": {"_m": "^jiralife-"}}},
                {"id": "faults", "when": {"device": {"_m": "^jirafault-"}}},
            ],
            "notifications": [
                {
                    "id": "jira-life",
                    "integration": "jira",
                    "triggers": ["life"],
                    "config": config,
                    "options": {"initial_occurrence_only": False, "close_event_on_resolve": True},
                },
                {
                    "id": "jira-faults",
                    "integration": "jira",
                    "triggers": ["faults"],
                    "config": config,
                },
            ],
        },
        queues="itsm.jira",
    )


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "nginx",
            "eventClass": "/Web",
            "severity": 4,
            "summary": "HTTP 502 rate high",
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def issues(sim: SimControl, key: str) -> list[dict[str, Any]]:
    return [i for i in sim.state()["issues"] if f"incman-{key}" in i["labels"]]


def wait_issue(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = next(i for i in sim.state()["issues"] if i["key"] == number)
        return found if check(found) else None

    return wait_for(ready, what=what)


def test_lifecycle_create_comment_assign_close_reopen_and_remote_done(
    client: Client, sim: SimControl
) -> None:
    device = unique("jiralife")
    created = send(client, device)
    event_id = created["eventId"]
    inc = created_incident(client, event_id)
    [issue] = issues(sim, inc["correlationKey"])
    assert issue["key"] == inc["number"] and inc["number"].startswith("PROJ-")
    assert inc["url"] == f"{sim.url}/browse/{inc['number']}"
    assert issue["summary"] == "HTTP 502 rate high"
    assert issue["description_raw"]["type"] == "doc"  # ADF on Cloud
    assert f"/console/events/{event_id}" in issue["description"]

    send(client, device)  # a re-occurrence → a comment
    wait_issue(
        sim,
        inc["number"],
        lambda i: any("occurred again" in c for c in i["comments"]),
        "the re-occur comment",
    )

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_issue(sim, inc["number"], lambda i: i["assignee"] == "tester", "the assign")

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    done = wait_issue(sim, inc["number"], lambda i: i["statusCategory"] == "done", "the close")
    assert done["resolution"] == "Done"
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "CLOSED",
        what="the incident CLOSED",
    )

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_issue(sim, inc["number"], lambda i: i["statusCategory"] == "new", "the re-open")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "OPEN",
        what="the incident OPEN again",
    )

    sim.act(inc["number"], status="Done", comment="fixed upstream")
    result = poll_notification("jira-life")
    assert result["changed"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "CLOSED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(issues(sim, inc["correlationKey"])) == 1


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 5, "retry_after": 1}),
        ("commit_then_drop", {"count": 1, "method": "POST", "path": "/rest/api/3/issue"}),
    ],
)
def test_faults_still_make_exactly_one_issue(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, **options)
    created = send(client, unique("jirafault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(issues(sim, inc["correlationKey"])) == 1
    assert len([r for r in sim.requests()[before:] if r["fault"] == fault]) == options["count"]


def test_the_api_token_stays_out_of_logs_and_answers(client: Client, stack: Any) -> None:
    answers = [
        client.get("/api/v1/notifications/jira-life").text,
        client.get("/api/v1/notifications").text,
        client.get("/api/v1/incidents").text,
    ]
    assert "jira-life" in answers[0]
    logs = [p.read_text(errors="replace") for p in stack.logs.glob("*.log")]
    assert any("jira" in text for text in logs)
    for text in answers + logs:
        assert TOKEN not in text
