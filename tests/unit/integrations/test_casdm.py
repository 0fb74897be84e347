"""CA SDM's pure parts: search answers (one object or a list), object bodies, the expiry
test of the auth hook, states, the config. The plugin against the simulator:
tests/integration/test_casdm.py and the contract table."""

from __future__ import annotations

from typing import Any

import pytest

from incman.integrations.casdm import (
    CasdmIntegration,
    as_text,
    collection_items,
    object_body,
    quote,
)
from incman.integrations.errors import ConfigurationError, PermanentError, TransientError

CONFIG = {"url": "http://sdm:8050/", "username": "u", "password": "p", "customer": "Doe, J"}


def plugin(**extra: Any) -> CasdmIntegration:
    return CasdmIntegration({**CONFIG, **extra})


@pytest.mark.parametrize(
    ("collection", "ids"),
    [
        ({"@COUNT": 0, "@TOTAL_COUNT": 0}, []),
        ({"@COUNT": 1, "in": {"@id": 400001}}, [400001]),  # one match: an object
        ({"@COUNT": 2, "in": [{"@id": 1}, {"@id": 2}]}, [1, 2]),
        ({"@COUNT": 2, "in": [{"@id": 1}, "odd"]}, [1]),
    ],
)
def test_a_search_answer_gives_a_list_whatever_its_size(
    collection: dict[str, Any], ids: list[int]
) -> None:
    assert [i["@id"] for i in collection_items({"collection_in": collection}, "in")] == ids


def test_a_search_answer_without_its_collection_is_an_error() -> None:
    with pytest.raises(PermanentError, match="collection_in"):
        collection_items({"in": {"@id": 1}}, "in")


def test_numbers_and_nulls_read_as_text() -> None:
    assert (as_text(1001), as_text(None), as_text("OP"), as_text(True)) == (
        "1001",
        "",
        "OP",
        "true",
    )


def test_object_bodies_write_references_the_way_sdm_takes_them() -> None:
    body = object_body(
        {
            "summary": "Disk full",
            "priority": 1,
            "status": "RE",
            "customer": "Doe, J",
            "assignee": {"@REL_ATTR": "U'AB'"},
            "zdevice": None,
        }
    )
    assert body == {
        "summary": "Disk full",
        "priority": {"@REL_ATTR": "1"},
        "status": {"@REL_ATTR": "RE"},
        "customer": {"@COMMON_NAME": "Doe, J"},
        "assignee": {"@REL_ATTR": "U'AB'"},
        "zdevice": "",
    }


def test_where_clause_text_is_quoted() -> None:
    assert quote("O'Brien") == "'O''Brien'"


@pytest.mark.parametrize(
    ("error", "expired"),
    [
        (PermanentError("HTTP 400: Invalid REST Access Key", status=400), True),
        (PermanentError("HTTP 400: AHD04402: bad where clause", status=400), False),
        (PermanentError("HTTP 401: Authorization required", status=401), True),
        (TransientError("HTTP 500", status=500), False),
    ],
)
def test_an_expired_key_is_a_400_that_says_so(error: Any, expired: bool) -> None:
    assert plugin().auth_expired(error) is expired


def test_default_fields_follow_the_severity() -> None:
    fields = plugin(group="Service Desk").default_fields(
        {"severity": 5, "summary": "x" * 300}, None, {}
    )
    assert (fields["impact"], fields["urgency"], fields["priority"]) == ("1", "5", "1")
    assert len(fields["summary"]) == 240
    assert (fields["customer"], fields["group"]) == ("Doe, J", "Service Desk")
    low = plugin().default_fields({"severity": 1}, None, {})
    assert (low["impact"], low["urgency"], low["priority"]) == ("5", "1", "5")
    assert "group" not in low


def test_states_and_links() -> None:
    p = plugin(web_url="http://sdm:8080")
    item = {"@id": 400001, "ref_num": 1001, "status": {"@REL_ATTR": "OP"}}
    ref = p._ref(item)
    assert (ref.remote_id, ref.number, ref.state) == ("400001", "1001", "OPEN")
    assert ref.url == "http://sdm:8080/CAisd/pdmweb.exe?OP=SHOW_DETAIL+PERSID=cr:400001"
    item["assignee"] = {"@COMMON_NAME": "Oncall, One"}
    assert p._ref(item).state == "ASSIGNED"
    assert p._ref({**item, "status": {"@REL_ATTR": "RE"}}).state == "RESOLVED"
    assert p._ref({**item, "status": {"@REL_ATTR": "CL"}}).state == "CLOSED"
    assert (
        plugin(final_statuses=["RE", "CL"])._ref({**item, "status": {"@REL_ATTR": "RE"}}).state
        == "CLOSED"
    )


def test_the_config_names_every_problem() -> None:
    with pytest.raises(ConfigurationError) as caught:
        CasdmIntegration({"url": "sdm", "username": "u"})
    message = str(caught.value)
    assert "config.url: must be an http(s) URL" in message
    assert "config.password: is required" in message
    assert "config.customer: is required" in message
    with pytest.raises(ConfigurationError, match="reopen_status: may not be one of"):
        plugin(reopen_status="CL")
    assert repr(plugin().cfg).count("***") == 2  # password and proxy
