"""Test doubles stay in unit tests: a pipeline test always runs real services."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLES = ("task_always_eager", "memory://", "fakeredis")


@pytest.mark.parametrize("folder", ["incman", "workers", "tests/integration"])
def test_no_test_doubles_outside_unit_tests(folder: str) -> None:
    found = [f"{path.relative_to(ROOT)}: {word}"
             for path in sorted((ROOT / folder).rglob("*.py"))
             for word in DOUBLES if word in path.read_text(encoding="utf-8")]
    assert not found, found


def test_the_domain_layer_does_not_know_celery() -> None:
    found = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "incman").rglob("*.py"))
             if "import celery" in p.read_text(encoding="utf-8")
             or "from celery" in p.read_text(encoding="utf-8")]
    # The glue that enqueues reaches the app through workers.app, never Celery itself.
    assert found == [], found
