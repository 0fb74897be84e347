"""`incman config check FILE` says every problem at once and exits 2; `incman api` and
`incman run` refuse to start on the same file with the same list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from incman.cli import main

TYPOS = """\
trigers:
  - id: t
triggers:
  - id: crit
    when: {sevrity: {_gte: 4}}
notifications:
  - id: dbg
    integration: debug
    triggers: [crit]
    config: {answer_dealy: 3}
  - id: snow
    integration: servicenow
    config: {username: incman, password: "${env:SNOW_PASSWORD}"}
"""
EXPECTED = [
    "trigers: unknown key (did you mean 'triggers'?)",
    "triggers[0].when.sevrity: unknown field (did you mean 'severity'?)",
    "notifications[0].config.answer_dealy: unknown key (did you mean 'answer_delay'?)",
    "notifications[1].config.url: is required",
]


@pytest.fixture
def typos(tmp_path: Path) -> Path:
    path = tmp_path / "incman.yaml"
    path.write_text(TYPOS)
    return path


def test_check_lists_every_problem_and_exits_2(
    typos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(typos)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{typos}: 4 problems:", *(f"  {line}" for line in EXPECTED)]


def test_check_as_json(typos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--json", str(typos)]) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["valid"] is False
    assert [f"{p['path']}: {p['message']}" for p in answer["problems"]] == EXPECTED


def test_a_valid_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        "triggers: [{id: t, when: {severity: {_gte: 3}}}]\n"
        "notifications: [{id: n, integration: debug, triggers: [t]}]\n"
    )
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: valid (1 trigger, 1 notification)"


@pytest.mark.parametrize(
    "text, words",
    [("", "the file declares nothing"), ("triggers: [\n", "is not valid YAML")],
)
def test_an_empty_or_broken_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert main(["config", "check", str(path)]) == 2
    assert words in capsys.readouterr().err


def test_no_file_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("INCMAN_CONFIG", raising=False)
    assert main(["config", "check"]) == 2
    assert "name the file" in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("command", [["api", "--port", "1"], ["run", "--port", "1"]])
def test_the_service_refuses_to_start_with_the_same_list(
    typos: Path, tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "INCMAN_CONFIG": str(typos), "INCMAN_DATA_DIR": str(tmp_path / "data")}
    for name in ("INCMAN_DATABASE_URL", "INCMAN_REDIS_URL", "INCMAN_BROKER_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "incman.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"incman: INCMAN_CONFIG {typos}: 4 problems:",
        *(f"  {line}" for line in EXPECTED),
    ]
    assert not (tmp_path / "data" / "incman.db").exists()  # nothing was created first
