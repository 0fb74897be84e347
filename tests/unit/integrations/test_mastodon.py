"""The Mastodon plugin: texts fitted to the limit, state labels, the rate-limit headers read
into a hold, and the plugin against the simulator over real HTTP on loopback."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from incman.integrations.base import FIND, STATUS
from incman.integrations.errors import Deferred, NotSupported, PermanentError
from incman.integrations.mastodon import (
    MAX_HOLD,
    MastodonIntegration,
    countable_length,
    fit,
    label,
    parse_label,
)
from incman.testing.mastodon_sim import DEFAULT_TOKEN, MastodonSim
from incman.testing.simbase import SimControl, SimServer

EVENT = {"summary": "Disk full", "device": "db01", "severity": 5}
URLS = {"eventUrl": "http://incman.test/api/v1/events/ev-1"}
URL = "https://incman.example/api/v1/events/" + "e" * 120  # counts 23


# -- texts -----------------------------------------------------------------------------------


def test_a_link_counts_23_and_short_texts_stay() -> None:
    assert countable_length(f"see {URL}") == 4 + 23
    text = "x" * 470 + " " + URL  # 494 counted, far more characters
    assert fit(text, 500) == text


@pytest.mark.parametrize(
    "text",
    [
        "word " * 200,
        "x" * 480 + " " + URL + " tail",  # the link would cross the limit: left out whole
        URL + " " + "y" * 600,
        (URL + " ") * 30,
        "🔥" * 700,
    ],
)
def test_long_texts_are_cut_with_an_ellipsis_never_inside_a_link(text: str) -> None:
    cut = fit(text, 500)
    assert cut.endswith("…") and countable_length(cut) <= 500
    assert text.startswith(cut[:-1])
    for word in cut[:-1].split():
        assert not word.startswith("http") or word == URL  # links whole, or not at all


def test_labels_read_back() -> None:
    for state, assignee in [("open", ""), ("assigned", "alice smith"), ("closed", "")]:
        assert parse_label(label(state, assignee)) == (state, assignee)
    assert parse_label("reopened") is None and parse_label("Disk full") is None


# -- the rate-limit headers ------------------------------------------------------------------


def answer(status: int = 200, **headers: str) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update(headers)
    return resp


def quota(remaining: int, reset_in: float, status: int = 200) -> requests.Response:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    reset = (now + timedelta(seconds=reset_in)).isoformat(timespec="microseconds")
    return answer(
        status,
        **{
            "Date": email.utils.format_datetime(now, usegmt=True),
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset.replace("+00:00", "Z"),
        },
    )


def test_the_quota_is_read_on_the_servers_clock() -> None:
    wait = MastodonIntegration({"url": "http://m.test", "access_token": "t"}).rate_limit_wait
    assert wait(quota(5, 42.5)) is None  # requests left: go on
    assert wait(quota(0, 42.5)) == 42.0  # used up: until Reset, by the server's Date
    assert wait(quota(0, 42.5, status=429)) == 42.0
    assert wait(quota(3, 10, status=429)) == 10.0  # a 429 waits whatever Remaining says
    assert wait(quota(0, -5)) == 1.0  # Reset passed already: a second
    assert wait(quota(0, 10 * 24 * 3600)) == MAX_HOLD
    assert wait(answer(200)) is None and wait(answer(429)) is None  # no headers: no advice
    assert wait(answer(200, **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"})) is None


# -- against the simulator ---------------------------------------------------------------------


@pytest.fixture()
def sim() -> Iterator[SimControl]:
    with SimServer(MastodonSim()) as server:
        yield SimControl(server.url)


def plugin(sim: SimControl, **extra: Any) -> MastodonIntegration:
    return MastodonIntegration({"url": sim.url, "access_token": DEFAULT_TOKEN, **extra})


def source(sim: SimControl, status_id: str) -> dict[str, Any]:
    resp = requests.get(
        f"{sim.url}/api/v1/statuses/{status_id}/source",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    resp.raise_for_status()
    return dict(resp.json())


def test_create_is_idempotent_and_state_changes_keep_the_content_warning(
    sim: SimControl,
) -> None:
    p = plugin(sim)
    fields = {**p.default_fields(EVENT, {"title": "Primary"}, URLS), "spoiler_text": "Ops"}
    ref = p.create(fields, "key-1")
    assert p.create(fields, "key-1").remote_id == ref.remote_id  # the same status
    assert source(sim, ref.remote_id) == {
        "id": ref.remote_id,
        "text": f"🔴 OPEN\nCritical: Disk full on Primary\n{URLS['eventUrl']}",
        "spoiler_text": "Ops",
    }
    p.assign(ref, "alice")
    p.assign(ref, "alice")  # a repeat: no second edit, no second reply
    p.close(ref, "")
    p.reopen(ref, "back again")
    assert source(sim, ref.remote_id)["spoiler_text"] == "Ops"  # sent again with each edit
    [ticket] = sim.tickets("key-1")
    assert (ticket.state, ticket.notes) == (
        "reopened",
        ["🟠 Acknowledged by alice", "✅ Resolved", "🔁 back again"],
    )
    assert len(sim.state()["statuses"]) == 4


def test_find_by_number_takes_an_id_or_an_address(sim: SimControl) -> None:
    p = plugin(sim)
    ref = p.create({"status": "Disk full"}, "key-2")
    for typed in (ref.remote_id, ref.url, ref.url + "/"):
        found = p.find_by_number(typed)
        assert found is not None and (found.remote_id, found.state) == (ref.remote_id, "OPEN")
    sim.act(ref.remote_id, reply="me too", user="alice")
    reply_id = sim.state()["statuses"][-1]["id"]
    assert p.find_by_number(reply_id) is None  # someone else's status
    p.add_note(ref, "a note of mine")
    assert p.find_by_number(sim.state()["statuses"][-1]["id"]) is None  # no incident label
    assert p.find_by_number("999") is None and p.find_by_number("not a number") is None


def test_what_it_lacks_is_declared(sim: SimControl) -> None:
    p = plugin(sim)
    assert FIND not in p.capabilities and STATUS not in p.capabilities and p.idempotent_create
    with pytest.raises(NotSupported):
        p.find("key")
    with pytest.raises(NotSupported):
        p.get_status([])


def test_the_server_refuses_what_is_over_its_limit(sim: SimControl) -> None:
    """A limit configured above the server's is a 422, as Mastodon answers it."""
    with pytest.raises(PermanentError, match="character limit of 500 exceeded") as caught:
        plugin(sim, max_characters=2000).create({"status": "x" * 900}, "key-3")
    assert caught.value.status == 422
    assert plugin(sim).create({"status": "x" * 900}, "key-4").remote_id


def test_calls_are_held_once_the_quota_is_used_up() -> None:
    with SimServer(MastodonSim(rate_limit=2, rate_period=3600)) as server:
        sim = SimControl(server.url)
        p = plugin(sim)
        ref = p.create({"status": "one"}, "key-5")
        p.add_note(ref, "two")  # Remaining 0 in this answer
        with pytest.raises(Deferred) as held:
            p.add_note(ref, "three")
        assert 0 < (held.value.retry_after or 0) <= 3600
        assert [r["status"] for r in sim.requests()] == [200, 200]  # nothing sent, no 429


class Recorder:
    """A flood guard that only notes what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def before(self) -> None:
        self.calls.append(("before", None))

    def after(self, outcome: str, retry_after: float | None = None) -> None:
        self.calls.append((outcome, retry_after))

    def note_quota(self, remaining: int, seconds: float) -> None:
        self.calls.append((f"quota {remaining}", seconds))


def test_the_flood_guard_is_told_the_quota_and_to_pause_every_worker() -> None:
    with SimServer(MastodonSim(rate_limit=1, rate_period=3600)) as server:
        guard = Recorder()
        p = MastodonIntegration({"url": server.url, "access_token": DEFAULT_TOKEN}, guard=guard)
        p.create({"status": "one"}, "key-6")
        (before, _), (ok, _), (quota, left), (pause, wait) = guard.calls
        assert (before, ok, quota, pause) == ("before", "ok", "quota 0", "retry_after")
        assert 0 < left <= 3600 and wait is not None and 0 < wait <= 3600
