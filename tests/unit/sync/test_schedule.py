"""The poll schedule's defaults (seed 000: "By default, zenincidentpoll checks existing
Events every 60 seconds"), on a fake Redis with frozen time."""

from __future__ import annotations

import fakeredis
import pytest

from incman.settings import load_settings
from incman.store.catalog import parse_catalog
from incman.sync.schedule import claim_due, due_polls, pollable_notifications

CATALOG = parse_catalog(
    {
        "triggers": [{"id": "t", "when": {"severity": {"_gte": 3}}}],
        "notifications": [
            {"id": "plain", "integration": "debug", "triggers": ["t"]},
            {"id": "fast", "integration": "debug", "triggers": ["t"], "cycletime": 15},
        ],
    }
)


def test_the_default_cycle_is_60_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCMAN_POLL_CYCLETIME", raising=False)
    settings = load_settings()
    assert settings.poll_cycletime == 60
    assert pollable_notifications(CATALOG, settings) == {"plain": 60, "fast": 15}


def test_a_notification_without_cycletime_is_polled_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INCMAN_POLL_CYCLETIME", raising=False)
    settings = load_settings()
    r = fakeredis.FakeRedis()
    t0 = 1_700_000_000_000
    polled = [
        second
        for second in range(0, 185, 5)  # beat's default tick: every 5 s for three minutes
        if ("plain", 60) in due_polls(r, CATALOG, settings, now_ms=t0 + second * 1000)
    ]
    assert polled == [0, 60, 120, 180]


def test_the_setting_changes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCMAN_POLL_CYCLETIME", "300")
    assert pollable_notifications(CATALOG, load_settings())["plain"] == 300
    assert claim_due(fakeredis.FakeRedis(), {"plain": 300}, now_ms=0) == ["plain"]
