"""`incman send-event`: options → request body, and the exit status on failure, against a
small real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from incman.cli import main
from incman.settings import reset_settings
from incman.testing.procs import free_port


@dataclass
class Recorder:
    """What the server received, and what it answers next."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 201
    answer: bytes = b""

    def reply(self, status: int, body: Any) -> None:
        self.status = status
        self.answer = body if isinstance(body, bytes) else json.dumps(body).encode()


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            rec.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(self.rfile.read(size)),
                }
            )
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(rec.answer)))
            self.end_headers()
            self.wfile.write(rec.answer)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """The CLI reads INCMAN_URL / INCMAN_API_KEY through the settings, once per process."""
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    rec.reply(201, {"eventId": "e-1", "dedupid": "d", "count": 1, "status": "New", "created": True})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    for name in ("INCMAN_URL", "INCMAN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield f"http://127.0.0.1:{httpd.server_address[1]}", rec
    httpd.shutdown()
    httpd.server_close()


CASES = [
    (["-d", "web01", "Disk", "full"], {"device": "web01", "severity": 3, "summary": "Disk full"}),
    (
        [
            "-d",
            "db01",
            "-p",
            "disk",
            "-c",
            "/Perf/Disk",
            "-y",
            "usage",
            "-k",
            "df",
            "-s",
            "5",
            "Disk is full",
        ],
        {
            "device": "db01",
            "component": "disk",
            "eventClass": "/Perf/Disk",
            "eventKey": "usage",
            "eventClassKey": "df",
            "severity": 5,
            "summary": "Disk is full",
        },
    ),
    (
        ["-d", "h", "-s", "Critical", "down"],
        {"device": "h", "severity": "Critical", "summary": "down"},
    ),
    (
        ["-d", "h", "-o", "agent=nagios", "-o", "rack=R1=2", "-o", "message=", "x"],
        {
            "device": "h",
            "severity": 3,
            "summary": "x",
            "agent": "nagios",
            "rack": "R1=2",
            "message": "",
        },
    ),
    (
        ["-d", "h", "-s", "2", "-o", "severity=4", "-o", "device=other", "x"],
        {"device": "other", "severity": 4, "summary": "x"},
    ),
]


@pytest.mark.parametrize(("argv", "body"), CASES)
def test_options_become_the_event_body(
    server: tuple[str, Recorder],
    argv: list[str],
    body: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, rec = server
    assert main(["send-event", "--url", url, *argv]) == 0
    assert rec.requests[-1]["path"] == "/api/v1/events"
    assert rec.requests[-1]["body"] == body
    assert capsys.readouterr().out.strip() == "event e-1 created (count 1)"


def test_key_url_from_environment_and_json_answer(
    server: tuple[str, Recorder],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, rec = server
    monkeypatch.setenv("INCMAN_URL", url + "/")
    monkeypatch.setenv("INCMAN_API_KEY", "sekrit")
    rec.reply(
        200, {"eventId": "e-9", "dedupid": "d", "count": 4, "status": "New", "created": False}
    )
    assert main(["send-event", "-d", "h", "--json", "again"]) == 0
    assert rec.requests[-1]["headers"]["Authorization"] == "Bearer sekrit"
    assert json.loads(capsys.readouterr().out)["count"] == 4


def test_folded_event_is_reported_as_updated(
    server: tuple[str, Recorder], capsys: pytest.CaptureFixture[str]
) -> None:
    url, rec = server
    rec.reply(
        200, {"eventId": "e-2", "dedupid": "d", "count": 7, "status": "New", "created": False}
    )
    assert main(["send-event", "--url", url, "--api-key", "k", "-d", "h", "x"]) == 0
    assert rec.requests[-1]["headers"]["Authorization"] == "Bearer k"
    assert capsys.readouterr().out.strip() == "event e-2 updated (count 7)"


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (
            422,
            {"error": "invalid event", "detail": "device: is required", "field": "device"},
            "HTTP 422: invalid event: device: is required (field device)",
        ),
        (401, {"detail": "a valid API key is required"}, "HTTP 401: Unauthorized: a valid API key"),
        (500, b"Internal Server Error", "HTTP 500: Internal Server Error"),
        (
            503,
            {"detail": [{"msg": "db down"}]},
            'HTTP 503: Service Unavailable: [{"msg": "db down"}]',
        ),
        (201, {"unexpected": True}, "unexpected answer"),
    ],
)
def test_refused_event_exits_non_zero_with_the_reason(
    server: tuple[str, Recorder],
    status: int,
    answer: Any,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, rec = server
    rec.reply(status, answer)
    assert main(["send-event", "--url", url, "-d", "h", "x"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert expected in out.err


def test_unreachable_api_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["send-event", "--url", url, "--timeout", "2", "-d", "h", "x"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach {url}/api/v1/events" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["-d", "h"],  # no summary
        ["-d", "h", "-o", "novalue", "x"],
        ["-d", "h", "-o", "=v", "x"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["send-event", "--url", "http://127.0.0.1:9", *argv])
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err
