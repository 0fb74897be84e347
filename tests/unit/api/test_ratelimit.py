"""The per-key rate limit of the ingest endpoints: parsing, windows, counting in Redis."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from fastapi import HTTPException

from incman.api import ratelimit as ratelimit_api
from incman.api.ratelimit import RateLimit, check_rate, parse_rate_limit, window_of
from incman.settings import reset_settings


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", None),
        ("0", None),
        ("  ", None),
        ("0/10", None),
        ("100", RateLimit(100, 1)),
        ("600/60", RateLimit(600, 60)),
    ],
)
def test_parse_rate_limit(raw: str, expected: RateLimit | None) -> None:
    assert parse_rate_limit(raw) == expected


@pytest.mark.parametrize("raw", ["fast", "10/0", "-1", "5/x"])
def test_bad_rate_limits_are_errors(raw: str) -> None:
    with pytest.raises(ValueError, match="INCMAN_API_RATE_LIMIT"):
        parse_rate_limit(raw)


@pytest.mark.parametrize(
    "now, limit, expected",
    [
        (100.0, RateLimit(5, 1), (100, 1)),
        (100.9, RateLimit(5, 1), (100, 1)),
        (120.0, RateLimit(5, 60), (2, 60)),
        (179.5, RateLimit(5, 60), (2, 1)),
        (150.2, RateLimit(5, 60), (2, 30)),
    ],
)
def test_window_of(now: float, limit: RateLimit, expected: tuple[int, int]) -> None:
    assert window_of(now, limit) == expected


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process: read them again around each test."""
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeRedis]:
    server = fakeredis.FakeRedis()
    monkeypatch.setattr("incman.store.redisconn.get_redis", lambda: server)
    yield server


def test_the_limit_is_per_key_and_per_window(
    fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ratelimit_api.ENV_NAME, "3/10")
    reset_settings()
    for _ in range(3):
        check_rate("k:a", now=1000.0)
    with pytest.raises(HTTPException) as err:
        check_rate("k:a", now=1004.0)
    assert err.value.status_code == 429
    assert err.value.headers == {"Retry-After": "6"}
    check_rate("k:b", now=1004.0)  # another key has its own count
    check_rate("k:a", now=1010.0)  # the next window starts afresh


def test_off_by_default(fake_redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ratelimit_api.ENV_NAME, raising=False)
    reset_settings()
    for _ in range(100):
        check_rate("k:a", now=1000.0)
    assert fake_redis.keys() == []


class _DownPipeline:
    def incr(self, name: str) -> None:
        pass

    def expire(self, name: str, seconds: int) -> None:
        pass

    def execute(self) -> list[int]:
        import redis

        raise redis.ConnectionError("Connection refused")


class _DownRedis:
    def pipeline(self) -> _DownPipeline:
        return _DownPipeline()


def test_an_unreachable_redis_lets_requests_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ratelimit_api.ENV_NAME, "1")
    reset_settings()
    monkeypatch.setattr("incman.store.redisconn.get_redis", lambda: _DownRedis())
    check_rate("k:a", now=1000.0)
    check_rate("k:a", now=1000.0)
