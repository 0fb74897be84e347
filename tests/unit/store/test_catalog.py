"""The configuration file's devices and `itsm:` sections are checked when it is loaded."""

from __future__ import annotations

from typing import Any

import pytest

from incman.store.catalog import CatalogError, parse_catalog


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"devices": [{"id": "d", "suppression": {"threshold_num": "x"}}]},
            "devices[0].suppression.threshold_num: must be an integer",
        ),
        (
            {"devices": [{"id": "d", "zNotificationSuppressionThresholdSecs": 0}]},
            "devices[0].suppression.threshold_secs: must be -1 (off) or at least 1",
        ),
        ({"itsm": {"teams": [{"id": "x", "name": "t"}]}}, "itsm.teams[0].id"),
        ({"itsm": {"service_desk_team": "nobody"}}, "itsm.service_desk_team: unknown team"),
    ],
)
def test_bad_sections_stop_the_load_with_the_place(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(doc)
    assert message in str(err.value)


def test_the_sections_as_loaded() -> None:
    catalog = parse_catalog(
        {
            "devices": [{"id": "db01", "suppression": {"threshold_num": 2}}],
            "itsm": {"teams": [{"id": 7, "name": "Service Desk"}], "service_desk_team": 7},
        }
    )
    assert catalog.devices["db01"]["suppression"] == {"threshold_num": 2}
    assert catalog.itsm.service_desk_team is not None
    assert catalog.itsm.service_desk_team.name == "Service Desk"


def test_the_configuration_seen_by_field_mapping_holds_no_plugin_config() -> None:
    catalog = parse_catalog(
        {
            "triggers": [{"id": "t", "when": {"severity": {"_gte": 3}}}],
            "notifications": [
                {
                    "id": "n",
                    "integration": "debug",
                    "triggers": ["t"],
                    "config": {"url_base": "http://x", "proxy": "http://u:s3cret@proxy:3128"},
                }
            ],
            "suppression": {"threshold_num": 4},
        }
    )
    view = catalog.configuration_view()
    assert view["triggers"]["t"]["when"] == {"severity": {"_gte": 3}}
    assert view["notifications"]["n"]["integration"] == "debug"
    assert view["notifications"]["n"]["options"]["send_clear"] is False
    assert "config" not in view["notifications"]["n"]
    assert "s3cret" not in repr(view)
    assert view["suppression"] == {"threshold_num": 4}
