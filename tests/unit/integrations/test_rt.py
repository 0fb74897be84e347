"""Request Tracker's pure parts: ticket bodies, the messages of a 200 answer, the config.
The plugin against a real RT: tests/integration/test_rt.py and the contract table."""

from __future__ import annotations

from typing import Any

import pytest

from incman.integrations.errors import ConfigurationError, PermanentError
from incman.integrations.rt import RTIntegration, check_messages, ticket_body


def test_ticket_body_keeps_rt_fields_and_custom_fields() -> None:
    body = ticket_body(
        {
            "Subject": "s",
            "Content": "c",
            "summary": "not RT",
            "CF.Site": "Paris",
            "CF.{Service}": "db",
        }
    )
    assert body == {
        "Subject": "s",
        "Content": "c",
        "CustomFields": {"Site": "Paris", "Service": "db"},
    }


@pytest.mark.parametrize(
    ("messages", "refused"),
    [
        ([], None),
        (["Ticket 1: Owner changed from Nobody to root"], None),
        (["That user already owns that ticket"], None),
        (["Comments added", "Status changed from 'new' to 'resolved'"], None),
        (["Ticket 1: Status 'bogus' isn't a valid status for this ticket."], "isn't a valid"),
        (["Ticket 1: That user may not own tickets in that queue"], "may not own"),
        ({"message": "odd"}, "unexpected answer"),
    ],
)
def test_put_messages_are_read(messages: Any, refused: str | None) -> None:
    if refused is None:
        check_messages("1", messages, "update")
    else:
        with pytest.raises(PermanentError, match=refused):
            check_messages("1", messages, "update")


def test_without_credentials_the_config_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"config\.token: set token, or username and"):
        RTIntegration({"url": "http://127.0.0.1:9"})


def test_a_ticket_number_that_is_not_a_number_is_no_ticket() -> None:
    plugin = RTIntegration({"url": "http://127.0.0.1:9", "token": "t"})
    assert plugin.find_by_number("INC0010001") is None  # nothing sent: not an RT number
