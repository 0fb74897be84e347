"""The API under hostile input: a catastrophic-backtracking trigger, deep and non-standard
JSON, NUL characters in paths, and keys that try to do more than their role allows."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from helpers import API_KEY, Client, send_disk_event, unique, wait_for

OPERATOR_KEY, INGEST_KEY = "operator-key", "ingest-key"
KEYS = f"tester:admin:{API_KEY},feeder:ingest:{INGEST_KEY},duty:operator:{OPERATOR_KEY}"
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "all", "when": {"severity": {"_gte": 3}}}],
    "notifications": [{"id": "debug-all", "integration": "debug", "triggers": ["all"]}],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    return make_stack(CONFIG, extra_env={"INCMAN_API_KEYS": KEYS})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def as_key(client: Client, key: str) -> Client:
    return Client(client.base, key)


def deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


# -- ReDoS ---------------------------------------------------------------------------------


def test_a_catastrophic_pattern_does_not_stall_the_api(client: Client) -> None:
    tid, prefix = unique("evil"), unique("redos")
    assert (
        client.post(
            "/api/v1/triggers", {"id": tid, "when": {"summary": {"_m": "^(a+)+$"}}}
        ).status_code
        == 201
    )
    nid = unique("evil-debug")
    created = client.post(
        "/api/v1/notifications", {"id": nid, "integration": "debug", "triggers": [tid]}
    )
    assert created.status_code == 201, created.text
    answers: list[int] = []

    def post() -> None:
        event = {"device": prefix, "severity": 4, "summary": "a" * 27 + "!"}  # 28 characters
        answers.append(client.post("/api/v1/events", event).status_code)

    sender = threading.Thread(target=post)
    sender.start()
    health = 0
    while sender.is_alive() or health == 0:
        # With backtracking, one match of this text holds the process for many seconds.
        requests.get(client.base + "/healthz", timeout=5).raise_for_status()
        health += 1
    sender.join()
    assert answers == [201]


def test_patterns_the_linear_engine_refuses_are_422(client: Client) -> None:
    for pattern in (r"(a)\1", "(?=lookahead)", "[unclosed"):
        resp = client.post(
            "/api/v1/triggers", {"id": unique("bad-re"), "when": {"d": {"_m": pattern}}}
        )
        assert resp.status_code == 422, (pattern, resp.text)
        assert "when.d._m: regular expression refused" in resp.json()["detail"]


# -- JSON shapes ---------------------------------------------------------------------------


def body_endpoints(client: Client) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that takes a JSON body."""
    doc = client.get("/openapi.json").json()
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("post", "put", "patch") and "requestBody" in op:
                found.append((method.upper(), path.replace("{", "").replace("}", "")))
    return found


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a": ' * 150 + "1" + "}" * 150,
        '{"severity": 5, "device": "x", "summary": "s", "details": {"v": NaN}}',
        '{"severity": Infinity, "device": "x", "summary": "s"}',
    ],
    ids=["10000-deep", "150-deep", "NaN", "Infinity"],
)
def test_malformed_json_is_400_on_every_json_endpoint(client: Client, body: str) -> None:
    endpoints = body_endpoints(client)
    assert len(endpoints) >= 12
    for method, path in endpoints:
        resp = client.session.request(
            method,
            client.base + path,
            data=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert resp.status_code == 400, (method, path, resp.status_code, resp.text[:300])


def test_deep_or_large_details_are_refused_naming_the_limit(client: Client) -> None:
    device = unique("deep")
    base = {"device": device, "severity": 4, "summary": "deep"}
    single = client.post("/api/v1/events", {**base, "details": deep(33)})
    assert single.status_code == 422 and "32 levels" in single.json()["detail"], single.text
    assert client.post("/api/v1/events", {**base, "details": deep(32)}).status_code == 201
    big = client.post("/api/v1/events", {**base, "details": {"x": "y" * 300_000}})
    assert big.status_code == 422 and "262144" in big.json()["detail"], big.text
    batch = client.post("/api/v1/events", [{**base, "details": deep(40)}])
    assert "32 levels" in str(batch.json()), batch.text
    pd = requests.post(
        client.base + "/v2/enqueue",
        json={
            "routing_key": INGEST_KEY,
            "event_action": "trigger",
            "payload": {
                "summary": "deep",
                "source": device,
                "severity": "error",
                "custom_details": deep(40),
            },
        },
        timeout=30,
    )
    assert pd.status_code == 400 and "32 levels" in str(pd.json()["errors"]), pd.text
    entity = client.post(
        "/api/v1/entity-incidents",
        {"id": unique("inc"), "entityId": device, "state": 1, "data": deep(40)},
    )
    assert entity.status_code == 422 and "32 levels" in entity.json()["detail"], entity.text
    alert = {"status": "firing", "labels": {"alertname": "Deep", "x": deep(40)}}
    am = client.post("/api/v1/alertmanager", {"alerts": [alert]})
    assert am.status_code < 500, am.text
    itsm = client.post("/events", {"subject": "deep", "note": deep(40)})
    assert itsm.status_code == 422, itsm.text
    listed = client.get("/api/v1/events", params={"device": device})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1


def test_nul_in_a_path_id_is_404(client: Client) -> None:
    for path in (
        "/api/v1/events/a%00b",
        "/api/v1/incidents/a%00b",
        "/api/v1/triggers/a%00b",
        "/api/v1/notifications/%00",
        "/debug/incidents/%00",
    ):
        resp = client.get(path)
        assert resp.status_code == 404, (path, resp.status_code, resp.text)
    resp = client.post("/api/v1/events/a%00b/acknowledge")
    assert resp.status_code == 404, resp.text


# -- what each role may do to events, in every format -----------------------------------


def pd_send(base: str, key: str, action: str, dedup_key: str) -> requests.Response:
    """The key as the routing_key, as PagerDuty senders do."""
    body: dict[str, Any] = {"routing_key": key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {"summary": "pd", "source": unique("pd-host"), "severity": "error"}
    return requests.post(f"{base}/v2/enqueue", json=body, timeout=30)


def status_of(client: Client, event_id: str) -> str:
    return str(client.get(f"/api/v1/events/{event_id}").json()["status"])


def test_pagerduty_actions_by_role(client: Client) -> None:
    key, base = unique("pd"), client.base
    (event_id,) = pd_send(base, INGEST_KEY, "trigger", key).json()["eventIds"]
    refused = pd_send(base, INGEST_KEY, "acknowledge", key)
    assert refused.status_code == 403 and "role operator" in refused.text
    assert status_of(client, event_id) == "New"
    assert pd_send(base, OPERATOR_KEY, "acknowledge", key).status_code == 202
    assert status_of(client, event_id) == "Acknowledged"
    assert pd_send(base, INGEST_KEY, "resolve", key).status_code == 202  # the source's clear
    assert status_of(client, event_id) == "Cleared"


def test_entity_incident_actions_by_role(client: Client) -> None:
    ingest, operator = as_key(client, INGEST_KEY), as_key(client, OPERATOR_KEY)
    ident, entity = unique("inc"), unique("entity")
    obj = {"id": ident, "entityId": entity, "state": 1, "comment": "seen by the source"}
    created = ingest.post("/api/v1/entity-incidents", obj)
    assert created.status_code == 201, created.text
    event_id = created.json()["eventId"]
    for extra in ({"acknowledgedBy": "someone"}, {"removed": {"userId": "someone"}}):
        refused = ingest.post("/api/v1/entity-incidents", {**obj, **extra})
        assert refused.status_code == 403, refused.text
        batch = ingest.post("/api/v1/entity-incidents", [{**obj, **extra}])
        assert batch.json()["results"][0]["status"] == 403
    assert status_of(client, event_id) == "New"
    assert operator.post("/api/v1/entity-incidents", {**obj, "acknowledgedBy": "op"}).ok
    assert status_of(client, event_id) == "Acknowledged"
    cleared = ingest.post("/api/v1/entity-incidents", {**obj, "clearTimestamp": 1})
    assert cleared.ok and status_of(client, event_id) == "Cleared"


def test_itsm_actions_by_role(client: Client) -> None:
    ingest, operator = as_key(client, INGEST_KEY), as_key(client, OPERATOR_KEY)
    subject = unique("itsm")
    created = ingest.post("/events", {"subject": subject, "note": "from the source"})
    assert created.status_code == 201, created.text
    event_id = created.json()["eventId"]
    refused = ingest.post("/events", {"subject": subject, "status": "completed"})
    assert refused.status_code == 403 and "role operator" in refused.text
    assert status_of(client, event_id) == "New"
    # Requests are matched per account: the operator's own request, created completed.
    done = operator.post("/events", {"subject": subject, "status": "completed"})
    assert done.status_code == 201, done.text
    assert status_of(client, done.json()["eventId"]) == "Closed"


def test_native_event_management_and_alertmanager_actions_by_role(client: Client) -> None:
    ingest, operator = as_key(client, INGEST_KEY), as_key(client, OPERATOR_KEY)
    event_id = send_disk_event(ingest, unique("native"))
    for op in ("acknowledge", "close", "reopen"):
        assert ingest.post(f"/api/v1/events/{event_id}/{op}").status_code == 403
    assert ingest.post(f"/api/v1/events/{event_id}/notes", {"text": "n"}).status_code == 403
    item = {"eventId": event_id, "occurrenceId": f"{event_id}:1", "acknowledged": True}
    status = {"statuses": [item]}
    assert ingest.post("/v1/event-management/status", status).status_code == 403
    assert operator.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    alert = {"status": "firing", "labels": {"alertname": unique("am"), "severity": "critical"}}
    assert ingest.post("/api/v1/alertmanager", {"alerts": [alert]}).status_code == 200
    resolved = ingest.post("/api/v1/alertmanager", {"alerts": [{**alert, "status": "resolved"}]})
    assert resolved.status_code == 200


# -- the Debug integration's page ----------------------------------------------------------


def test_the_debug_page_needs_a_key(client: Client) -> None:
    event_id = send_disk_event(client, unique("page"))
    number = wait_for(lambda: client.get(f"/api/v1/events/{event_id}").json().get("incident"))
    url = f"{client.base}/debug/incidents/{number}"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, params={"api_key": "wrong"}, timeout=30).status_code == 401
    assert requests.get(url, params={"api_key": INGEST_KEY}, timeout=30).status_code == 200
    assert client.get(f"/debug/incidents/{number}").status_code == 200
