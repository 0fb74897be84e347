"""The Debug plugin with its records kept in memory (incman gives it a store in its database),
and the failures its config rehearses."""

from __future__ import annotations

import time
from typing import Any

import pytest

from incman.integrations.debug import DebugIntegration, DebugRecord
from incman.integrations.errors import ConfigurationError, PermanentError, TransientError


class MemoryRecords:
    """The DebugRecords protocol in memory."""

    def __init__(self) -> None:
        self.rows: dict[int, DebugRecord] = {}
        self.keys: dict[int, str] = {}

    def create(self, correlation_key: str, fields: dict[str, Any]) -> DebugRecord:
        record_id = len(self.rows) + 1
        self.rows[record_id] = DebugRecord(record_id, f"DBG{record_id:07d}", fields=dict(fields))
        self.keys[record_id] = correlation_key
        return self.rows[record_id]

    def find(self, correlation_key: str) -> DebugRecord | None:
        return next((self.rows[i] for i, k in self.keys.items() if k == correlation_key), None)

    def find_number(self, number: str) -> DebugRecord | None:
        return next((r for r in self.rows.values() if r.number == number), None)

    def change(self, record_id: int, note: str | None = None, **changes: Any) -> bool:
        record = self.rows.get(record_id)
        if record is None:
            return False
        record.fields.update(changes.pop("fields", None) or {})
        for name, value in changes.items():
            setattr(record, name, value)
        if note:
            record.notes.append({"text": note})
        return True

    def many(self, record_ids: list[int]) -> list[DebugRecord]:
        return [self.rows[i] for i in record_ids if i in self.rows]


def debug(store: MemoryRecords, **config: Any) -> DebugIntegration:
    return DebugIntegration(config, "debug-test", records=store)


def test_the_lifecycle_is_kept_in_the_store() -> None:
    store = MemoryRecords()
    plugin = debug(store, url_base="http://incman.test/")
    ref = plugin.create({"summary": "Disk full"}, "k1")
    assert (ref.number, ref.url) == ("DBG0000001", "http://incman.test/debug/incidents/DBG0000001")
    assert plugin.find("k1") == ref and plugin.find_by_number("DBG0000001") == ref
    assert plugin.find("k2") is None and plugin.find_by_number("DBG0000009") is None
    plugin.assign(ref, "oncall1")
    plugin.close(ref, "done")
    assert plugin.get_status([ref])[ref.remote_id].state == "CLOSED"
    plugin.reopen(ref, "again")
    assert (store.rows[1].state, store.rows[1].assignee) == ("open", "oncall1")
    assert [n["text"] for n in store.rows[1].notes] == ["Assigned to oncall1", "done", "again"]


@pytest.mark.parametrize(
    ("fail", "error", "status", "retry_after"),
    [
        ("transient", TransientError, 500, None),
        ("unreachable", TransientError, None, None),
        ("rate_limited", TransientError, 429, 1.0),
        ("permanent", PermanentError, None, None),
    ],
)
def test_injected_failures_store_nothing(
    fail: str, error: type[Exception], status: int | None, retry_after: float | None
) -> None:
    store = MemoryRecords()
    with pytest.raises(error) as caught:
        debug(store, fail=fail).create({}, "k1")
    assert (caught.value.status, caught.value.retry_after) == (
        status,
        retry_after,
    )
    assert store.rows == {}


def test_a_lost_answer_stores_the_change_then_fails() -> None:
    store = MemoryRecords()
    with pytest.raises(TransientError, match="answer was lost"):
        debug(store, fail="lost_answer").create({}, "k1")
    assert debug(store).find("k1") is not None


def test_an_outage_ends_by_itself_at_fail_until() -> None:
    store = MemoryRecords()
    assert debug(store, fail="transient", fail_until=time.time() - 1).create({}, "k1")
    with pytest.raises(TransientError):
        debug(store, fail="transient", fail_until=time.time() + 60).find("k1")


def test_without_a_store_or_with_a_bad_fault_it_refuses() -> None:
    with pytest.raises(ConfigurationError, match="no record store"):
        DebugIntegration({}).find("k1")
    with pytest.raises(ConfigurationError, match=r"config\.fail: must be one of"):
        DebugIntegration({"fail": "sometimes"})


def test_the_call_budget_covers_the_answer_delay() -> None:
    assert debug(MemoryRecords(), answer_delay=4).call_budget() == 9.0
