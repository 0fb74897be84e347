"""Signed one-click links: they verify, expire, and cannot be forged or altered."""

from __future__ import annotations

import pytest

from incman.settings import reset_settings
from incman.store.links import LinkError, event_urls, sign_action, verify_action


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCMAN_SECRET_KEY", "unit-test-secret")
    monkeypatch.setenv("INCMAN_PUBLIC_URL", "https://incman.example.org")
    reset_settings()
    yield
    reset_settings()


def test_round_trip() -> None:
    assert verify_action(sign_action("close", "ev-1")) == ("close", "ev-1")


def test_expired() -> None:
    token = sign_action("acknowledge", "ev-1", ttl=60, now=1000.0)
    assert verify_action(token, now=1059.0) == ("acknowledge", "ev-1")
    with pytest.raises(LinkError, match="expired"):
        verify_action(token, now=1061.0)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "x" + t,  # body changed
        lambda t: t.split(".")[0],  # no signature
        lambda t: "garbage",
    ],
)
def test_forged(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LinkError):
        verify_action(mangle(sign_action("reopen", "ev-1")))


def test_other_secret_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_action("close", "ev-1")
    monkeypatch.setenv("INCMAN_SECRET_KEY", "another")
    reset_settings()
    with pytest.raises(LinkError, match="not valid"):
        verify_action(token)


def test_event_urls_point_at_the_console_under_the_public_url() -> None:
    urls = event_urls("ev-9", "db 01")
    assert urls["eventUrl"] == "https://incman.example.org/console/events/ev-9"
    assert urls["smartViewUrl"] == urls["eventUrl"]
    assert urls["eventsUrl"] == "https://incman.example.org/console/events?device=db%2001"
    assert urls["deviceUrl"] == "https://incman.example.org/console/devices/db%2001"
    for key in ("ackUrl", "closeUrl", "reopenUrl"):
        assert urls[key].startswith("https://incman.example.org/links/")
        assert "[code]" not in urls[key]
