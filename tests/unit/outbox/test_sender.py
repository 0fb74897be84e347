"""The outbox sender: actions sent after the commit that wrote them, many of one integration
per message, none when the transaction rolls back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from incman.outbox import sender
from incman.outbox.rows import Pending


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, list[int]]]]:
    monkeypatch.setenv("INCMAN_ACTIONS_PER_MESSAGE", "3")
    from incman.settings import reset_settings

    reset_settings()
    messages: list[tuple[str, list[int]]] = []

    def record(queue: str, items: Sequence[sender.Sendable]) -> None:
        messages.append((queue, [i.action_id for i in items]))

    sender.set_transport(record)
    yield messages
    sender.set_transport(None)
    monkeypatch.delenv("INCMAN_ACTIONS_PER_MESSAGE")
    reset_settings()


def test_messages_carry_many_actions_of_one_integration(sent: list) -> None:
    items = [Pending(n, "debug" if n % 2 else "jira") for n in range(1, 10)]
    assert sender.enqueue(items) == 9
    assert sent == [
        ("itsm.debug", [1, 3, 5]),
        ("itsm.debug", [7, 9]),
        ("itsm.jira", [2, 4, 6]),
        ("itsm.jira", [8]),
    ]


def test_a_failed_send_loses_only_its_message(sent: list) -> None:
    def flaky(queue: str, items: Sequence[sender.Sendable]) -> None:
        if queue == "itsm.jira":
            raise ConnectionError("broker down")
        sent.append((queue, [i.action_id for i in items]))

    sender.set_transport(flaky)
    assert sender.enqueue([Pending(1, "jira"), Pending(2, "debug")]) == 1
    assert sent == [("itsm.debug", [2])]  # the jira action stays pending for the reconciler


def test_sent_after_commit_and_never_after_rollback(sent: list) -> None:
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        session.execute(text("SELECT 1"))  # the rows' transaction
        sender.send_after_commit(session, [Pending(1, "debug")])
        assert sent == []
        session.commit()
        assert sent == [("itsm.debug", [1])]
        session.execute(text("SELECT 1"))
        sender.send_after_commit(session, [Pending(2, "debug")])
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert sent == [("itsm.debug", [1])]
