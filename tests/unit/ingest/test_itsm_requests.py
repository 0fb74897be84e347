"""ITSM requests on the embedded default (SQLite): create, match, and beat's wake-up of
`waiting_for` requests at their `waiting_until`, with a controllable clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fakeredis
import pytest
import yaml

from incman.domain.formats.itsm_request import iso, parse_params
from incman.ingest.itsm_requests import submit, wake_waiting_requests
from incman.settings import reset_settings
from incman.store import metrics, redisconn
from incman.store.catalog import catalog_cache
from incman.store.db import reset_engine, session_scope
from incman.store.itsm_models import ItsmRequest
from incman.store.migrations import upgrade
from incman.store.models import Event, utcnow

CONFIG = {"itsm": {"teams": [{"id": 7, "name": "Service Desk"}], "service_desk_team": 7}}


@pytest.fixture(scope="module", autouse=True)
def sqlite_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder: Path = tmp_path_factory.mktemp("itsm")
    (folder / "incman.yaml").write_text(yaml.safe_dump(CONFIG))
    saved = dict(os.environ)
    url = f"sqlite:///{folder / 'incman.db'}"
    os.environ.update(
        {
            "INCMAN_DATABASE_URL": url,
            "INCMAN_CONFIG": str(folder / "incman.yaml"),
            "INCMAN_REDIS_URL": "redis://unused",
            "INCMAN_DATA_DIR": str(folder),
        }
    )
    reset_settings(), reset_engine(), catalog_cache.reset()
    upgrade(url)
    redisconn._client = fakeredis.FakeRedis()  # the shared metrics counters
    redisconn._pid = os.getpid()
    yield
    metrics.EVENTS_ACCEPTED.flush()  # while the fake Redis is still there
    os.environ.clear()
    os.environ.update(saved)
    reset_settings(), reset_engine(), catalog_cache.reset(), redisconn.reset_redis()


def test_a_waiting_request_wakes_at_its_time() -> None:
    until = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    params = parse_params(
        {"subject": "Vendor visit", "status": "waiting_for", "waiting_until": iso(until)}
    )
    status, record = submit(params, "bot")
    assert status == 201 and record["team"] == {"name": "Service Desk", "id": 7}
    assert wake_waiting_requests(now=until - timedelta(seconds=1)) == 0
    assert wake_waiting_requests(now=until) == 1
    assert wake_waiting_requests(now=until + timedelta(hours=1)) == 0  # once
    with session_scope() as session:
        row = session.get(ItsmRequest, record["id"])
        assert row is not None
        assert (row.status, row.waiting_until, row.record["status"]) == (
            "assigned",
            None,
            "assigned",
        )
        event = session.get(Event, record["eventId"])
        assert event is not None
        assert event.device == "" and event.details["itsm"]["status"] == "assigned"
    again, matched = submit(parse_params({"subject": "Vendor visit"}), "bot")
    assert again == 200 and matched["id"] == record["id"] and matched["status"] == "assigned"
