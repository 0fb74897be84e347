"""Schemathesis over the OpenAPI document against a real `incman api`: no answer may be a
server error, whatever the input. Two bounded runs (at most 20 cases per operation): the
event formats and configuration endpoints, then the rest of the document; together about
3,900 generated requests with an admin key (each run says how many) in about 35 s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import API_KEY

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "all", "when": {"severity": {"_gte": 3}}}],
    "notifications": [
        {
            "id": "debug",
            "integration": "debug",
            "triggers": ["all"],
            "config": {"proxy": "http://u:never-shown@proxy:3128"},
        }
    ],
}
FORMAT_TAGS = (
    "^(event management|itsm events|alertmanager|pagerduty|entity incidents|configuration)$"
)


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    return make_stack(CONFIG, workers=0)


def schemathesis(stack: Any, report_dir: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).parent / "st"
    return subprocess.run(
        [
            str(st),
            "run",
            f"{stack.url}/openapi.json",
            *selection,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "5",
            "--workers",
            "1",
            "--no-shrink",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "20",
            "--report-dir",
            str(report_dir),
            "--header",
            f"Authorization: Bearer {API_KEY}",
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )


def generated(run: subprocess.CompletedProcess[str]) -> int:
    """How many requests schemathesis generated and sent (its summary line)."""
    found = re.search(r"(\d+) generated", run.stdout)
    assert found, run.stdout[-3000:]
    return int(found.group(1))


def test_no_server_errors_on_event_formats_and_configuration(stack: Any, tmp_path: Path) -> None:
    run = schemathesis(stack, tmp_path, "--include-tag-regex", FORMAT_TAGS)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert generated(run) >= 1000  # at least a thousand generated requests, none a 5xx
    assert "Tested: 19" in run.stdout  # every operation of these routers was exercised
    assert "never-shown" not in stack.api.output()


def test_no_server_errors_on_the_rest_of_the_document(stack: Any, tmp_path: Path) -> None:
    run = schemathesis(stack, tmp_path, "--exclude-tag-regex", FORMAT_TAGS)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert generated(run) >= 500
