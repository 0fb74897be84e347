"""Mastodon through the real pipeline (API → PostgreSQL → Celery worker on itsm.mastodon →
the Mastodon simulator): a status per incident, its state on the first line, the rest as
replies; Mastodon's own idempotency under faults; its rate-limit headers respected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, created_incident, unique, wait_for
from sqlalchemy import select

from incman.integrations.mastodon import countable_length
from incman.store.db import session_scope
from incman.store.models import Action
from incman.testing.mastodon_sim import MastodonSim
from incman.testing.simbase import SimControl, SimServer

TOKEN = "mastodon-pipeline-secret-0815"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(MastodonSim(token=TOKEN)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def tight() -> Iterator[SimControl]:
    """A server that allows 5 requests per 10 seconds."""
    with SimServer(MastodonSim(token=TOKEN, rate_limit=5, rate_period=10)) as server:
        yield SimControl(server.url)


def _notification(nid: str, trigger: str, url: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "access_token": "${env:MASTODON_TEST_TOKEN}",
        "visibility": "unlisted",
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {"id": nid, "integration": "mastodon", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl, tight: SimControl) -> Any:
    def trigger(prefix: str) -> dict[str, Any]:
        return {"id": prefix, "when": {"device": {"_m": f"^{prefix}-"}}}

    config = {
        "triggers": [trigger(p) for p in ("toot", "tootmap", "tootfault", "tootrate")],
        "notifications": [
            _notification(
                "toot-ops",
                "toot",
                sim.url,
                options={"initial_occurrence_only": False, "send_clear": True},
            ),
            _notification(
                "toot-map",
                "tootmap",
                sim.url,
                field_mapping=(
                    "spoiler_text, ${python: removeField if evt.severity < 5 "
                    "else 'Critical incident'}\n"
                    "status, ${defaultFields/status} #ops\n"
                ),
            ),
            _notification("toot-faults", "tootfault", sim.url),
            _notification("toot-rate", "tootrate", tight.url),
        ],
        "devices": [{"id": "toot-db01", "title": "Primary database"}],
    }
    # one worker process: the quota test counts on no two calls being in flight at once
    return make_stack(
        config,
        queues="ingest,maintenance,itsm.mastodon",
        concurrency=1,
        extra_env={"MASTODON_TEST_TOKEN": TOKEN},
    )


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str, severity: int = 5, **fields: Any) -> str:
    body = {
        "device": device,
        "component": "disk",
        "eventClass": "/Perf",
        "severity": severity,
        "summary": "Disk full",
        **fields,
    }
    resp = client.post("/api/v1/events", body)
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["eventId"])


def status(sim: SimControl, status_id: str) -> dict[str, Any]:
    found = [s for s in sim.state()["statuses"] if s["id"] == status_id]
    assert found, f"no status {status_id}"
    return found[0]


def source(sim: SimControl, status_id: str) -> str:
    resp = requests.get(
        f"{sim.url}/api/v1/statuses/{status_id}/source",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    resp.raise_for_status()
    return str(resp.json()["text"])


def replies(sim: SimControl, status_id: str) -> list[str]:
    [ticket] = [t for t in sim.tickets() if t.id == status_id]
    return ticket.notes


def first_line(sim: SimControl, status_id: str) -> str:
    return source(sim, status_id).partition("\n")[0]


def finished(event_id: str, kind: str) -> bool:
    with session_scope() as session:
        rows = list(
            session.scalars(select(Action).where(Action.event_id == event_id, Action.kind == kind))
        )
    return bool(rows) and all(a.status in ("done", "skipped", "dead") for a in rows)


def test_the_whole_lifecycle_in_one_thread(client: Client, sim: SimControl) -> None:
    event_id = send(client, "toot-db01")
    inc = created_incident(client, event_id)
    sid = inc["number"]
    text = source(sim, sid)
    assert text.startswith("🔴 OPEN\nCritical: Disk full on Primary database\nhttp")
    assert text.endswith(f"/events/{event_id}")  # the event's URL
    assert inc["url"] == status(sim, sid)["url"]
    assert requests.get(inc["url"], timeout=5).status_code == 200  # the status page
    assert [t.keys for t in sim.tickets() if t.id == sid] == [[inc["correlationKey"]]]

    send(client, "toot-db01")  # a re-occurrence → a reply
    wait_for(
        lambda: any("occurred again" in r for r in replies(sim, sid)), what="the re-occurrence"
    )
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(
        lambda: first_line(sim, sid) == "🟠 ACKNOWLEDGED by tester", what="the acknowledgement"
    )
    assert "🟠 Acknowledged by tester" in replies(sim, sid)
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"}).ok
    wait_for(lambda: "tester: disks checked" in replies(sim, sid), what="the note")

    send(client, "toot-db01", severity=0)  # the clear → resolved
    wait_for(lambda: first_line(sim, sid) == "✅ RESOLVED", what="the resolved status")
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: finished(event_id, "close"), what="the close action")
    assert sum(r.startswith("✅") for r in replies(sim, sid)) == 1  # said once

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_for(lambda: first_line(sim, sid) == "🔁 RE-OPENED", what="the re-opened status")
    assert sum(r.startswith("🔁") for r in replies(sim, sid)) == 1
    assert len(status(sim, sid)["content"]) > 0 and status(sim, sid)["edited_at"]
    assert [t.id for t in sim.tickets(inc["correlationKey"])] == [sid]


def test_field_mapping_with_the_defaults_and_remove_field(client: Client, sim: SimControl) -> None:
    critical = created_incident(client, send(client, unique("tootmap"), severity=5))
    error = created_incident(client, send(client, unique("tootmap"), severity=4))
    first, second = status(sim, critical["number"]), status(sim, error["number"])
    assert first["spoiler_text"] == "Critical incident" and first["sensitive"] is True
    assert second["spoiler_text"] == "" and second["sensitive"] is False  # removed
    assert source(sim, critical["number"]).endswith(" #ops")
    assert source(sim, error["number"]).startswith("🔴 OPEN\nError: Disk full on tootmap-")


def test_long_texts_are_cut_to_the_limit_not_refused(client: Client, sim: SimControl) -> None:
    long = "Disk full on /var/lib/postgresql " * 40
    event_id = send(client, unique("toot"), summary=long)
    inc = created_incident(client, event_id)
    text = source(sim, inc["number"])
    assert countable_length(text) <= 500 and text.endswith("…")
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": long}).ok
    wait_for(
        lambda: any(r.startswith("tester: Disk full") for r in replies(sim, inc["number"])),
        what="the long note",
    )
    [note] = [r for r in replies(sim, inc["number"]) if r.startswith("tester: ")]
    assert countable_length(note) <= 500 and note.endswith("…")
    assert not [r for r in sim.requests() if r["status"] == 422]


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 2, "retry_after": 1}),  # as Mastodon: X-RateLimit-Reset, no Retry-After
        ("500", {"count": 2}),
        ("drop", {"count": 1}),
        ("commit_then_drop", {"count": 1}),  # the retry's Idempotency-Key finds the first
    ],
)
def test_faults_still_make_exactly_one_status(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, method="POST", path="/api/v1/statuses", **options)
    inc = created_incident(client, send(client, unique("tootfault")), timeout=60)
    assert [t.id for t in sim.tickets(inc["correlationKey"])] == [inc["number"]]
    assert len([r for r in sim.requests()[before:] if r["fault"] == fault]) == options["count"]
    assert sim.faults() == []


def test_a_lost_reply_is_posted_once(client: Client, sim: SimControl) -> None:
    event_id = send(client, unique("tootfault"))
    inc = created_incident(client, event_id)
    sim.fault("commit_then_drop", method="POST", path="/api/v1/statuses")
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "once only"}).ok
    wait_for(lambda: finished(event_id, "note"), timeout=60, what="the note action")
    assert replies(sim, inc["number"]).count("tester: once only") == 1
    assert sim.faults() == []


def test_a_revoked_token_is_not_retried_and_replays_once_fixed(
    client: Client, sim: SimControl
) -> None:
    """Mastodon's access tokens do not expire: a 401 means the token was revoked, so the
    action goes to the dead letter at once, and a replay once it works makes one status."""
    before = len(sim.requests())
    sim.fault("401", method="POST", path="/api/v1/statuses")
    event_id = send(client, unique("tootfault"))

    def dead() -> list[dict[str, Any]]:
        items = client.get("/api/v1/dead-letter", params={"notificationId": "toot-faults"})
        return [a for a in items.json()["items"] if a["eventId"] == event_id]

    [action] = wait_for(dead, timeout=60, what="the refused create in the dead letter")
    assert action["lastError"] == "the remote system answered HTTP 401 (a refusal)"
    assert "The access token is invalid" in action["errorDetail"]  # the remote's words: managers
    assert len([r for r in sim.requests()[before:] if r["status"] == 401]) == 1
    assert client.post("/api/v1/dead-letter/replay", {"ids": [action["id"]]}).status_code == 200
    inc = created_incident(client, event_id, timeout=60)
    assert [t.id for t in sim.tickets(inc["correlationKey"])] == [inc["number"]]


def test_the_rate_limit_headers_pause_calls_before_a_429(
    client: Client, tight: SimControl, stack: Any
) -> None:
    """Twelve incidents against a server allowing five requests per ten seconds (so at least
    one window is used up): the calls wait for X-RateLimit-Reset when Remaining reaches 0,
    and the server never has to say 429."""
    events = [send(client, unique("tootrate")) for _ in range(12)]
    incidents = [created_incident(client, e, timeout=120) for e in events]
    assert len({i["number"] for i in incidents}) == 12
    seen = tight.requests()
    assert len(seen) >= 12
    assert [r for r in seen if r["status"] == 429] == []
    logs = "".join(w.output() for w in stack.workers)
    assert "the request quota is used up" in logs  # the limit was reached, and waited for


def test_the_token_stays_out_of_logs_and_answers(client: Client, stack: Any) -> None:
    logs = "".join(w.output() for w in stack.workers) + stack.api.output()
    assert "mastodon" in logs and TOKEN not in logs
    for path in ("/api/v1/notifications/toot-ops", "/api/v1/incidents", "/api/v1/events"):
        resp = client.get(path)
        assert resp.status_code == 200 and TOKEN not in resp.text
