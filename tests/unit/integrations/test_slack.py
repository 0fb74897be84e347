"""The Slack plugin against the Slack simulator over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incman.integrations.base import STATUS, RemoteIncident
from incman.integrations.errors import (
    ConfigurationError,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.integrations.slack import SlackIntegration
from incman.testing.simbase import SimControl, SimServer
from incman.testing.slack_sim import DEFAULT_TOKEN, SlackSim

CHANNEL = "C0INCMAN1"
EVENT = {
    "eventId": "ev-1",
    "device": "db01",
    "component": "disk",
    "severity": 5,
    "summary": "Disk full",
    "message": "/var is 100% full",
    "count": 3,
}
URLS = {"eventUrl": "http://incman.test/api/v1/events/ev-1", "baseUrl": "http://incman.test"}


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(SlackSim()) as running:
        yield running


@pytest.fixture()
def sim(server: SimServer) -> tuple[SlackSim, SimServer]:
    SimControl(server.url).reset()
    assert isinstance(server.app, SlackSim)
    return server.app, server


def plugin_for(sim: tuple[SlackSim, SimServer], **config: Any) -> SlackIntegration:
    app, _ = sim
    return SlackIntegration(
        {
            "api_url": app.api_url,
            "token": DEFAULT_TOKEN,
            "channel": CHANNEL,
            "timeout": 5,
            **config,
        },
        "slack-test",
    )


def fields_for(plugin: SlackIntegration, **event: Any) -> dict[str, Any]:
    return plugin.default_fields({**EVENT, **event}, {"id": "db01", "title": "Primary DB"}, URLS)


def channel_messages(app: SlackSim) -> list[dict[str, Any]]:
    return app.state()["channels"][CHANNEL]["messages"]


def thread(app: SlackSim, ref: RemoteIncident) -> list[str]:
    parent = next(m for m in channel_messages(app) if m["ts"] == ref.number)
    return [reply["text"] for reply in parent["replies"]]


def test_default_texts_use_the_mapping_context(sim: Any) -> None:
    fields = fields_for(plugin_for(sim))
    assert fields["text"] == (
        ":rotating_light: *Critical*: Disk full on Primary DB\n"
        "http://incman.test/api/v1/events/ev-1"
    )
    assert fields["closeText"].startswith(":white_check_mark: *Closed*: Disk full on Primary DB")
    assert fields["updateText"] == "Updated: Disk full (count 3)"


def test_templates_are_configurable_with_python_expressions(sim: Any) -> None:
    plugin = plugin_for(
        sim,
        create_template="${evt/summary} on ${dev/titleOrId}",
        close_template="${python: 'OK: ' + evt.summary.upper()}",
    )
    fields = fields_for(plugin)
    assert fields["text"] == "Disk full on Primary DB"
    assert fields["closeText"] == "OK: DISK FULL"


def test_a_bad_template_is_a_configuration_error(sim: Any) -> None:
    with pytest.raises(ConfigurationError, match="close_template"):
        plugin_for(sim, close_template="${nothing/here}")


def test_create_posts_one_message_with_the_key_in_its_metadata(sim: Any) -> None:
    app, _ = sim
    plugin = plugin_for(sim)
    ref = plugin.create(fields_for(plugin), "key-1")
    [message] = channel_messages(app)
    assert message["text"].startswith(":rotating_light: *Critical*: Disk full")
    assert message["metadata"]["event_type"] == "incman_incident"
    assert message["metadata"]["event_payload"]["key"] == "key-1"
    assert ref.number == message["ts"]
    assert ref.remote_id == f"{CHANNEL}:{message['ts']}"
    assert ref.state == "OPEN"
    opened = requests.get(ref.url, timeout=5)
    assert opened.status_code == 200
    assert opened.json()["message"]["text"] == message["text"]


def test_find_by_key_within_the_recent_messages(sim: Any) -> None:
    plugin = plugin_for(sim, find_depth=3)
    ref = plugin.create(fields_for(plugin), "key-old")
    found = plugin.find("key-old")
    assert found is not None
    assert (found.remote_id, found.url) == (ref.remote_id, ref.url)
    assert plugin.find("key-other") is None
    for n in range(3):
        plugin.create(fields_for(plugin, summary=f"newer {n}"), f"key-new-{n}")
    assert plugin.find("key-new-0") is not None
    assert plugin.find("key-old") is None  # older than find_depth messages


def test_find_pages_through_history(sim: Any) -> None:
    app, server = sim
    plugin = plugin_for(sim, find_depth=450)
    target = plugin.create(fields_for(plugin), "deep-key")
    for n in range(250):
        app.add_message(CHANNEL, f"note {n}", thread_ts=target.number)  # not top-level
        app.add_message(
            CHANNEL,
            f"filler {n}",
            metadata={"event_type": "incman_incident", "event_payload": {"key": f"filler-{n}"}},
        )
    found = plugin.find("deep-key")
    assert found is not None and found.number == target.number
    pages = [
        r for r in SimControl(server.url).requests() if r["path"] == "/api/conversations.history"
    ]
    assert len(pages) == 2


def test_notes_and_updates_are_thread_replies(sim: Any) -> None:
    app, _ = sim
    plugin = plugin_for(sim)
    ref = plugin.create(fields_for(plugin), "key-2")
    plugin.add_note(ref, "Event occurred again")
    plugin.update(ref, fields_for(plugin, count=4))
    assert thread(app, ref) == ["Event occurred again", "Updated: Disk full (count 4)"]
    assert len(channel_messages(app)) == 1


def test_close_and_reopen_change_the_parent_and_say_so_once(sim: Any) -> None:
    app, _ = sim
    plugin = plugin_for(sim)
    ref = plugin.create(fields_for(plugin), "key-3")
    plugin.close(ref, "Event ev-1 closed by oncall1")
    plugin.close(ref, "Event ev-1 closed by oncall1")
    [parent] = channel_messages(app)
    assert parent["text"].startswith(":white_check_mark: *Closed*: Disk full on Primary DB")
    assert parent["metadata"]["event_payload"]["state"] == "closed"
    assert thread(app, ref) == ["Event ev-1 closed by oncall1"]

    plugin.reopen(ref, "Event ev-1 re-opened by oncall1")
    plugin.reopen(ref, "Event ev-1 re-opened by oncall1")
    [parent] = channel_messages(app)
    assert parent["text"].startswith(":repeat: *Re-opened*: Disk full")
    assert thread(app, ref) == ["Event ev-1 closed by oncall1", "Event ev-1 re-opened by oncall1"]
    found = plugin.find("key-3")
    assert found is not None and found.state == "OPEN"

    plugin.close(ref, "closed again")
    assert thread(app, ref)[-1] == "closed again"
    assert plugin.find("key-3").state == "CLOSED"  # type: ignore[union-attr]


def test_a_close_retried_after_a_lost_reply_posts_the_reply_once(sim: Any) -> None:
    app, server = sim
    plugin = plugin_for(sim)
    ref = plugin.create(fields_for(plugin), "key-4")
    control = SimControl(server.url)
    # chat.update goes through; the thread reply after it is refused once.
    requests.post(
        f"{server.url}/_sim/slack_errors",
        json={"error": "ratelimited", "method": "chat.postMessage", "retry_after": 2},
        timeout=5,
    )
    with pytest.raises(TransientError) as caught:
        plugin.close(ref, "Event cleared")
    assert caught.value.retry_after == 2
    assert thread(app, ref) == []
    plugin.close(ref, "Event cleared")
    plugin.close(ref, "Event cleared")
    assert thread(app, ref) == ["Event cleared"]
    updates = [r for r in control.requests() if r["path"] == "/api/chat.update"]
    assert len(updates) == 1


def test_assign_shows_the_assignee_once(sim: Any) -> None:
    app, _ = sim
    plugin = plugin_for(sim)
    ref = plugin.create(fields_for(plugin), "key-5")
    plugin.assign(ref, "oncall1")
    plugin.assign(ref, "oncall1")
    [parent] = channel_messages(app)
    assert parent["text"].endswith("Assigned to oncall1")
    assert thread(app, ref) == ["Assigned to oncall1"]
    assert plugin.find("key-5").state == "ASSIGNED"  # type: ignore[union-attr]


def test_a_channel_name_is_looked_up(sim: Any) -> None:
    plugin = plugin_for(sim, channel="#incidents")
    ref = plugin.create({"text": "hello"}, "key-6")
    assert ref.remote_id.startswith(f"{CHANNEL}:")
    assert plugin.find("key-6") is not None
    with pytest.raises(PermanentError, match="#nowhere not found"):
        plugin_for(sim, channel="#nowhere").find("x")


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        ("channel_not_found", PermanentError, "slack chat.postMessage: channel_not_found"),
        ("not_in_channel", PermanentError, "not_in_channel"),
        ("is_archived", PermanentError, "is_archived"),
        ("internal_error", TransientError, "internal_error"),
        ("ratelimited", TransientError, "ratelimited"),
    ],
)
def test_slack_errors_are_classified(sim: Any, error: str, kind: type, text: str) -> None:
    _, server = sim
    requests.post(f"{server.url}/_sim/slack_errors", json={"error": error}, timeout=5)
    with pytest.raises(kind, match=text):
        plugin_for(sim).create({"text": "x"}, "key-7")


def test_a_wrong_token_is_permanent_and_not_shown(sim: Any) -> None:
    plugin = plugin_for(sim, token="xoxb-wrong-secret")
    with pytest.raises(PermanentError) as caught:
        plugin.create({"text": "x"}, "key-8")
    assert "invalid_auth" in str(caught.value)
    assert "xoxb-wrong-secret" not in str(caught.value)


@pytest.mark.parametrize("mode", ["429", "500", "drop"])
def test_http_faults_are_transient(sim: Any, mode: str) -> None:
    _, server = sim
    SimControl(server.url).fault(mode, retry_after=3)
    with pytest.raises(TransientError) as caught:
        plugin_for(sim).create({"text": "x"}, "key-9")
    if mode == "429":
        assert caught.value.retry_after == 3


def test_slack_declares_no_status_polling(sim: Any) -> None:
    plugin = plugin_for(sim)
    assert not plugin.supports(STATUS)
    with pytest.raises(NotSupported):
        plugin.get_status([RemoteIncident(remote_id=f"{CHANNEL}:1.0", number="1.0")])
