"""Test doubles stay in unit tests: a pipeline test always runs real services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLES = ("task_always_eager", "memory://", "fakeredis")


@pytest.mark.parametrize("folder", ["incman", "workers", "tests/integration"])
def test_no_test_doubles_outside_unit_tests(folder: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for word in DOUBLES
        if word in path.read_text(encoding="utf-8")
    ]
    assert not found, found


def test_the_import_contracts_hold() -> None:
    """The layers, `incman` never importing `workers`, Celery only in the outbox's sender,
    plugins without database or Redis, no cycles: `.importlinter`, checked by import-linter."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
