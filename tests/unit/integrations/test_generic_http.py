"""The generic HTTP plugin against the HTTP incident simulator over real HTTP on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    CREATE,
    FIND,
    FIND_NUMBER,
    NOTE,
    REOPEN,
    STATUS,
    UPDATE,
    RemoteIncident,
)
from incman.integrations.errors import (
    ConfigurationError,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.integrations.generic_http import HttpIntegration, is_secret_header
from incman.testing.http_sim import DEFAULT_TOKEN, HttpSim
from incman.testing.simbase import SimControl, SimServer

EVENT = {
    "eventId": "ev-1",
    "device": "db01",
    "component": "disk",
    "severity": 5,
    "summary": "Disk full",
    "message": "/var is full",
    "count": 2,
}
DEVICE = {"id": "db01", "title": "Primary DB", "priority": 800}
URLS = {"eventUrl": "http://incman.test/api/v1/events/ev-1"}
ONE = "/incidents/${incident/remoteId}"


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(HttpSim()) as running:
        yield running


@pytest.fixture()
def sim(server: SimServer) -> HttpSim:
    SimControl(server.url).reset()
    assert isinstance(server.app, HttpSim)
    return server.app


def full_config(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"{base}/incidents",
        "headers": {"Authorization": f"Bearer {DEFAULT_TOKEN}", "X-Source": "incman"},
        "body": {
            "create": {
                "title": "${evt/summary} on ${dev/titleOrId}",
                "severity": "${python: evt.severity}",
                "correlationKey": "${correlationKey}",
                "tag": "incman-${correlationKey}",
                "details": {"component": "${component}", "notes": ["${urls/eventUrl}"]},
                "gone": "${removeField}",
            },
            "update": {"title": "${fields/title}", "count": "${fields/count}"},
            "note": {"note": "${note}"},
            "assign": {"assignee": "${assignee}", "status": "assigned"},
            "close": {"status": "closed", "note": "${note}"},
            "reopen": {"status": "open", "note": "${note} (was ${incident/state})"},
        },
        "urls": {action: base + ONE for action in ("update", "note", "assign", "close", "reopen")},
        "methods": {"close": "PATCH"},
        "number_path": "number",
        "url_path": "url",
        "status_url": base + ONE,
        "find_url": f"{base}/incidents?correlationKey=${{correlationKey}}",
        "find_path": "items[0]",
        "find_number_url": f"{base}/incidents?number=${{number}}",
        "find_number_path": "items[0]",
        "timeout": 5,
        **extra,
    }


def plugin(sim: HttpSim, **extra: Any) -> HttpIntegration:
    return HttpIntegration(full_config(sim.base_url, **extra), "http-test")


def fields(p: HttpIntegration) -> dict[str, Any]:
    return p.default_fields(EVENT, DEVICE, URLS)


def test_the_create_template_renders_with_the_event_and_keeps_types(sim: HttpSim) -> None:
    rendered = fields(plugin(sim))
    assert rendered["title"] == "Disk full on Primary DB"
    assert rendered["severity"] == 5
    assert rendered["details"] == {"component": "disk", "notes": [URLS["eventUrl"]]}
    assert "gone" not in rendered


def test_create_sends_the_body_with_the_correlation_key(sim: HttpSim) -> None:
    ref = plugin(sim).create(fields(plugin(sim)), "key-1")
    [record] = sim.records.values()
    assert record.fields["title"] == "Disk full on Primary DB"
    assert record.fields["severity"] == 5
    assert record.fields["tag"] == "incman-key-1"
    assert record.correlation_key == "key-1"
    assert (ref.remote_id, ref.number, ref.state) == (record.id, record.number, "OPEN")
    assert ref.url == f"{sim.base_url}/incidents/{record.id}"


def test_find_uses_find_url_and_is_not_supported_without_it(sim: HttpSim) -> None:
    p = plugin(sim)
    ref = p.create(fields(p), "key-2")
    found = p.find("key-2")
    assert found is not None and found.remote_id == ref.remote_id
    assert p.find("key-unknown") is None
    blind = plugin(sim, find_url=None)
    assert not blind.supports(FIND)
    with pytest.raises(NotSupported, match="no find_url"):
        blind.find("key-2")


def test_find_by_number_uses_find_number_url(sim: HttpSim) -> None:
    p = plugin(sim)
    ref = p.create(fields(p), "key-2b")
    found = p.find_by_number(ref.number)
    assert found is not None and (found.remote_id, found.number) == (ref.remote_id, ref.number)
    assert p.find_by_number("HTTP999999") is None
    without = plugin(sim, find_number_url="")
    assert not without.supports(FIND_NUMBER)
    with pytest.raises(NotSupported, match="no find_number_url"):
        without.find_by_number(ref.number)


def test_actions_change_the_record(sim: HttpSim) -> None:
    p = plugin(sim)
    ref = p.create(fields(p), "key-3")
    record = sim.records[ref.remote_id]
    p.add_note(ref, "occurred again")
    p.assign(ref, "oncall1")
    assert (record.status, record.assignee) == ("assigned", "oncall1")
    p.close(ref, "event closed")
    assert record.status == "closed"
    ref.state = "CLOSED"
    p.reopen(ref, "event re-opened")
    p.update(ref, {"title": "New title", "count": 7})
    assert record.status == "open"
    assert [n["text"] for n in record.notes] == [
        "occurred again",
        "event closed",
        "event re-opened (was CLOSED)",
    ]
    assert (record.fields["title"], record.fields["count"]) == ("New title", 7)
    methods = [(r["method"], r["path"]) for r in SimControl(sim.base_url).requests()]
    assert ("PATCH", f"/incidents/{ref.remote_id}") in methods


def test_status_is_read_per_incident_and_mapped(sim: HttpSim) -> None:
    p = plugin(sim)
    first, second = p.create(fields(p), "key-4"), p.create(fields(p), "key-5")
    SimControl(sim.base_url).act(first.remote_id, status="resolved")
    sim.records[second.remote_id].assignee = "someone"
    sim.records[second.remote_id].status = "assigned"
    gone = RemoteIncident(remote_id="r999", number="HTTP999")
    states = p.get_status([first, second, gone])
    assert set(states) == {first.remote_id, second.remote_id}
    assert (states[first.remote_id].state, states[first.remote_id].remote_state) == (
        "RESOLVED",
        "resolved",
    )
    assert states[second.remote_id].state == "ASSIGNED"
    custom = plugin(sim, status_map={"resolved": "CLOSED"}, assignee_path="assignee")
    assert custom.get_status([first])[first.remote_id].state == "CLOSED"
    assert custom.get_status([second])[second.remote_id].assignee == "someone"


def test_capabilities_follow_the_configuration(sim: HttpSim) -> None:
    assert plugin(sim).capabilities == {
        CREATE,
        UPDATE,
        NOTE,
        ASSIGN,
        CLOSE,
        REOPEN,
        STATUS,
        FIND,
        FIND_NUMBER,
    }
    minimal = HttpIntegration(
        {"url": f"{sim.base_url}/incidents", "body": {"close": {"status": "closed"}}}
    )
    assert minimal.capabilities == {CREATE, CLOSE}
    ref = RemoteIncident(remote_id="r1", number="1")
    with pytest.raises(NotSupported):
        minimal.add_note(ref, "x")
    with pytest.raises(NotSupported):
        minimal.get_status([ref])


def test_without_a_create_template_the_base_fields_are_sent(sim: HttpSim) -> None:
    p = HttpIntegration(
        {
            "url": f"{sim.base_url}/incidents",
            "headers": {"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        }
    )
    body = p.default_fields(EVENT, None, URLS)
    assert body["summary"] == "Disk full" and body["severityName"] == "Critical"
    ref = p.create(body, "key-6")
    assert sim.records[ref.remote_id].correlation_key == "key-6"


def test_id_path_null_uses_the_correlation_key(sim: HttpSim) -> None:
    ref = plugin(sim, id_path=None, number_path=None).create(fields(plugin(sim)), "key-7")
    assert (ref.remote_id, ref.number) == ("key-7", "key-7")


def test_an_answer_without_the_id_is_a_permanent_error(sim: HttpSim) -> None:
    with pytest.raises(PermanentError, match=r"no id at 'ticket\.sys_id'"):
        plugin(sim, id_path="ticket.sys_id").create(fields(plugin(sim)), "key-8")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"close": {"text": "${evt/summary}"}}, "available in the create template"),
        ({"note": {"text": "${incident/colour}"}}, "incident/colour"),
        ({"create": {"t": "${python: __import__('os')}"}}, "config.body: create"),
        ({"create": {"t": "${nothing/x}"}}, "unknown name"),
        ({"delete": {}}, "unknown actions delete"),
        ({"create": ["not", "an", "object"]}, "must be a JSON object"),
    ],
)
def test_bad_templates_are_configuration_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        HttpIntegration({"url": "http://127.0.0.1:9/x", "body": body})


def test_secret_headers_never_reach_the_log(sim: HttpSim, caplog: pytest.LogCaptureFixture) -> None:
    assert is_secret_header("Authorization") and is_secret_header("X-Api-Key")
    assert is_secret_header("PRIVATE-TOKEN") and not is_secret_header("X-Source")
    p = plugin(sim)
    with caplog.at_level(logging.DEBUG, logger="incman.integrations.generic_http"):
        p.create(fields(p), "key-9")
    assert "***" in caplog.text and "incman" in caplog.text
    assert DEFAULT_TOKEN not in caplog.text


def test_a_wrong_token_is_permanent_and_masked(sim: HttpSim) -> None:
    p = plugin(sim, headers={"Authorization": "Bearer s3cret-value-123"})
    with pytest.raises(PermanentError) as caught:
        p.create(fields(p), "key-10")
    assert "HTTP 401" in str(caught.value)
    assert "s3cret-value-123" not in str(caught.value)


def test_a_lost_create_answer_then_find_gives_one_record(sim: HttpSim) -> None:
    p = plugin(sim)
    SimControl(sim.base_url).fault("commit_then_drop", method="POST", path="/incidents")
    with pytest.raises(TransientError):
        p.create(fields(p), "key-11")
    found = p.find("key-11")  # what the worker does before creating again
    assert found is not None
    assert len(sim.records) == 1


def test_429_carries_retry_after(sim: HttpSim) -> None:
    SimControl(sim.base_url).fault("429", retry_after=4)
    with pytest.raises(TransientError) as caught:
        plugin(sim).create(fields(plugin(sim)), "key-12")
    assert caught.value.retry_after == 4
