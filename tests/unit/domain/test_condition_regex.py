"""Trigger patterns run on RE2: linear in the text, and what RE2 cannot take is a clear
configuration error naming the place."""

from __future__ import annotations

import pytest

from incman.domain.condition import matches
from incman.store.catalog import CatalogError, parse_catalog


def test_a_catastrophic_pattern_matches_at_once() -> None:
    cond = {"summary": {"_m": "^(a+)+$"}}
    assert not matches(cond, {"summary": "a" * 5000 + "!"})
    assert matches(cond, {"summary": "a" * 5000})


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?<=x)y", "a{2000}", "[z-a]"])
def test_patterns_re2_refuses_are_configuration_errors(pattern: str) -> None:
    doc = {"triggers": [{"id": "t1", "when": {"device": {"_m": pattern}}}]}
    with pytest.raises(CatalogError, match=r"triggers\[0\].*device\._m: regular expression"):
        parse_catalog(doc)
