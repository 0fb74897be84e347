"""One grammar for every command: global options in any position, the service found the same
way (options, settings, then the data folder given or found), exit 1 for a failed operation
and 2 for a usage error; run as real processes against a small HTTP server on loopback."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from incman.testing.procs import free_port


class Api:
    """A stand-in for the API: records each request's path and answers an empty list."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                api.paths.append(self.path)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._answer(200, {"items": []})

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(size)
                body = {"eventId": "e1", "created": True, "count": 1, "status": "New"}
                self._answer(201, body)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()


def incman(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INCMAN_")}
    return subprocess.run(
        [sys.executable, "-m", "incman.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "URL", "trigger", "list"],
        ["trigger", "--url", "URL", "list"],
        ["trigger", "list", "--url", "URL"],
    ],
)
def test_global_options_in_any_position(api: Api, tmp_path: Path, argv: list[str]) -> None:
    done = incman(*[api.url if a == "URL" else a for a in argv], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert api.paths == ["/api/v1/triggers"]


def test_incident_and_send_event_take_them_too(api: Api, tmp_path: Path) -> None:
    sent = incman("--url", api.url, "send-event", "-d", "h", "x", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    made = incman("incident", "--url", api.url, "create", "-n", "n1", "e1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert api.paths == ["/api/v1/events", "/api/v1/incidents"]


@pytest.mark.parametrize(
    "url, says",
    [
        ("127.0.0.1:8000", "did you mean http://127.0.0.1:8000?"),
        ("http://127.0.0.1:8000/api/v1", "has a path: give incman's base URL, e.g. "),
        ("ftp://127.0.0.1", "is not an http(s) URL"),
        ("http://127.0.0.1:port", "has a port that is not a number"),
    ],
)
def test_a_url_that_is_not_a_base_url_is_a_usage_error(tmp_path: Path, url: str, says: str) -> None:
    for command in (["trigger", "list"], ["send-event", "-d", "h", "x"]):
        done = incman("--url", url, *command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr
    from_env = incman("notification", "list", cwd=tmp_path, INCMAN_URL=url)
    assert from_env.returncode == 2 and "INCMAN_URL" in from_env.stderr


def test_failed_operations_exit_1_and_usage_errors_2(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    for command in (
        ["trigger", "list"],
        ["notification", "show", "x"],
        ["incident", "create", "-n", "n", "e"],
        ["send-event", "-d", "h", "x"],
    ):
        done = incman("--url", nobody, *command, cwd=tmp_path)
        assert done.returncode == 1, (command, done.stderr)
        assert "cannot reach" in done.stderr and "Traceback" not in done.stderr
    for usage in (
        ["trigger"],  # no action
        ["dead-letter", "list", "--url", nobody],  # an option it does not take
        ["dead-letter", "replay"],  # neither --id nor --all
        ["trigger", "apply", "-f", str(tmp_path / "missing.yaml")],
        ["flower", "--address", "0.0.0.0"],  # no password for Flower off loopback
    ):
        done = incman(*usage, cwd=tmp_path)
        assert done.returncode == 2, (usage, done.stderr)
        assert "Traceback" not in done.stderr


def test_dead_letter_outside_a_data_folder_creates_nothing(tmp_path: Path) -> None:
    done = incman("dead-letter", "list", cwd=tmp_path)
    assert done.returncode == 1
    assert "no incman database" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no ./incman-data/incman.db


def test_dead_letter_finds_the_data_folder_above(tmp_path: Path) -> None:
    from incman.store.migrations import upgrade

    data = tmp_path / "incman-data"
    data.mkdir()
    upgrade(f"sqlite:///{data / 'incman.db'}")
    below = tmp_path / "some" / "where"
    below.mkdir(parents=True)
    done = incman("dead-letter", "list", cwd=below)
    assert done.returncode == 0, done.stderr
    assert "0 of 0 dead action(s)" in done.stderr
    given = incman("--data-dir", str(data), "dead-letter", "list", cwd=Path("/"))
    assert given.returncode == 0, given.stderr


@pytest.mark.parametrize("argv", [["dead-letter", "list"], ["trigger", "list"], ["flower"]])
def test_a_data_folder_given_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "not-here"
    done = incman("--data-dir", str(missing), *argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"the data folder {str(missing)!r}" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists()


def test_the_api_commands_find_a_running_incman_run(api: Api, tmp_path: Path) -> None:
    """`incman run` writes its address in the data folder and holds its lock: the commands
    started beside it (or below) send there without --url."""
    data = tmp_path / "incman-data"
    data.mkdir()
    (data / "run.json").write_text(json.dumps({"pid": os.getpid(), "url": api.url}))
    with open(data / "run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sent = incman("send-event", "-d", "h", "x", cwd=tmp_path)
        listed = incman("trigger", "list", cwd=tmp_path / "incman-data")
    assert sent.returncode == 0 and listed.returncode == 0, sent.stderr + listed.stderr
    assert api.paths == ["/api/v1/events", "/api/v1/triggers"]
    # Without a run holding the lock the record is stale: the default address is used.
    stale = incman("trigger", "list", cwd=tmp_path, INCMAN_API_PORT=str(free_port()))
    assert stale.returncode == 1 and api.url not in stale.stderr
