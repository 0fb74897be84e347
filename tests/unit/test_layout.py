"""Test doubles stay in unit tests: a pipeline test always runs real services."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLES = ("task_always_eager", "memory://", "fakeredis")
MIGRATIONS = ROOT / "incman" / "migrations" / "versions"
TESTING = ROOT / "incman" / "testing"
MAX_SUMMARY = 96  # the first line with its opening quotes, within the 100 columns
MAX_DOC_LINES = 12  # outside incman/testing/


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


def _modules() -> list[Path]:
    paths = [*sorted((ROOT / "incman").rglob("*.py")), *sorted((ROOT / "workers").rglob("*.py"))]
    return [p for p in paths if not p.is_relative_to(MIGRATIONS)]


def _docstring_problem(path: Path) -> str | None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    if not doc:
        return "no module docstring"
    lines = doc.strip().splitlines()
    if len(lines) > 1 and lines[1].strip():
        return "the first line does not stand alone"
    if len('"""' + lines[0]) > MAX_SUMMARY:
        return f"the first line is over {MAX_SUMMARY} characters with its quotes"
    if len(lines) > MAX_DOC_LINES and not path.is_relative_to(TESTING):
        return f"{len(lines)} lines, over {MAX_DOC_LINES}: move the reference into docs/"
    return None


def test_module_docstrings_are_one_line_summaries() -> None:
    """PEP 257: one summary line, a blank line, then at most a short explanation (simulators
    and helpers under `incman/testing/` may be longer); long references live in docs/."""
    found = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in _modules()
        if (problem := _docstring_problem(path)) is not None
    ]
    assert not found, found
