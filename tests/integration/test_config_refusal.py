"""A Celery worker and beat refuse to start on a configuration file with typos, naming every
problem (the same list `incman config check` gives), instead of running without the
notifications they could not read; on the corrected file the worker starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from incman.testing.procs import start_worker

TYPOS = """\
triggers:
  - id: crit
    when: {sevrity: {_gte: 4}}
notifications:
  - id: dbg
    integration: debug
    triggers: [crit]
    config: {answer_dealy: 3}
"""
EXPECTED = [
    "  triggers[0].when.sevrity: unknown field (did you mean 'severity'?)",
    "  notifications[0].config.answer_dealy: unknown key (did you mean 'answer_delay'?)",
]


@pytest.mark.parametrize(
    "command",
    [
        ["worker", "-Q", "itsm.debug", "-c", "1", "--without-gossip", "--without-mingle"],
        ["beat", "-s", "beat-schedule"],
    ],
)
def test_a_worker_and_beat_refuse_an_invalid_file(
    base_env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "incman.yaml"
    path.write_text(TYPOS)
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", *command],
        env={**base_env, "INCMAN_CONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    start = lines.index(f"incman: INCMAN_CONFIG {path}: 2 problems:")
    assert lines[start + 1 : start + 3] == EXPECTED


def test_the_corrected_file_starts_a_worker(base_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "incman.yaml"
    path.write_text(TYPOS.replace("sevrity", "severity").replace("dealy", "delay"))
    worker = start_worker({**base_env, "INCMAN_CONFIG": str(path)}, tmp_path, "itsm.debug", 1)
    try:
        assert worker.alive()
    finally:
        worker.stop()
