"""Plugins here talk to in-process simulators on loopback: allowed explicitly, as any
deployment would allow where its remote systems live (the egress policy refuses loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from incman.settings import reset_settings


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INCMAN_EGRESS_ALLOW", "127.0.0.0/8,::1")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()
