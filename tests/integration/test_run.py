"""`incman run` on the embedded default (SQLite + its own Redis), with no service URL set:
an event sent with `incman send-event` becomes a Debug incident, and Ctrl-C leaves nothing;
HTTPS, Flower behind a password, the Redis snapshot, a port that is taken."""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import wait_for

from incman.testing.procs import free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"
)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2])


def _processes() -> dict[int, tuple[str, int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = info
    return out


def _tree(root: int) -> set[int]:
    """`root` and all its descendants now."""
    table = _processes()
    found = {root}
    grew = True
    while grew:
        more = {pid for pid, (_, ppid, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _running(pid: int) -> bool:
    info = _stat(pid)
    return info is not None and info[0] != "Z"  # a zombie runs nothing


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _wait_api(run: subprocess.Popen[bytes], url: str, log: Path) -> None:
    def up() -> bool:
        assert run.poll() is None, f"incman run exited:\n{log.read_text(errors='replace')}"
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_for(up, timeout=90, what="the API of incman run")


def test_run_embedded_event_to_debug_incident_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCMAN_")}
    data = tmp_path / "incman-data"
    data.mkdir()
    # What a run killed with SIGKILL can leave: a socket file and the pid of a gone server.
    (data / "redis.sock").write_text("")
    (data / "redis.pid").write_text(str(_dead_pid()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "incman.cli", "run", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_api(run, url, log)
        assert stat.S_ISSOCK((data / "redis.sock").stat().st_mode)
        redis_pid = int((data / "redis.pid").read_text())
        assert (data / "incman.db").exists()

        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "incman.cli",
                "send-event",
                "--url",
                url,
                "--json",
                "-d",
                "run-db01",
                "-p",
                "disk",
                "-c",
                "/Perf/Disk",
                "-s",
                "Critical",
                "-o",
                "rack=R12",
                "Disk",
                "full",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        event_id = json.loads(sent.stdout)["eventId"]

        def incident() -> dict[str, Any] | None:
            ev = requests.get(f"{url}/api/v1/events/{event_id}", timeout=5).json()
            return ev if ev.get("incident") else None

        ev = wait_for(incident, timeout=60, what="a Debug incident on the event")
        assert ev["notificationId"] == "debug"
        assert ev["incident"].startswith("DBG")
        assert ev["details"] == {"rack": "R12"}
        assert requests.get(f"{url}/debug/incidents/{ev['incident']}", timeout=5).ok

        tree = _tree(run.pid)
        assert redis_pid in tree
        assert len(tree) >= 5, tree  # run, Redis, API, worker, beat
        table = _processes()
        groups = {table[pid][2] for pid in tree if pid in table}

        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0, log.read_text(errors="replace")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()

    left = [pid for pid in tree if _running(pid)]
    assert not left, f"still running after Ctrl-C: {left}"
    in_groups = [
        pid for pid, (state, _, pgid) in _processes().items() if pgid in groups and state != "Z"
    ]
    assert not in_groups, f"processes left in the run's process groups: {in_groups}"
    assert not (data / "redis.sock").exists()
    assert not (data / "redis.pid").exists()


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("INCMAN_")}, **extra}


def _incman_run(
    args: list[str], cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "incman.cli", "run", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class _Healthy(BaseHTTPRequestHandler):
    """Another server on the port, answering /healthz as an incman would."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        pass


def test_a_port_served_by_another_process_is_not_reported_running(tmp_path: Path) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = other.server_address[1]
    log = tmp_path / "run.log"
    try:
        run = _incman_run(["--port", str(port)], tmp_path, _clean_env(), log)
        code = run.wait(120)
    finally:
        other.shutdown()
    output = log.read_text(errors="replace")
    assert code == 1, output
    assert f"port {port} on 127.0.0.1 is in use" in output
    assert "incman is running" not in output
    assert not (tmp_path / "incman-data" / "run.json").exists()


def test_flower_off_loopback_needs_a_password(tmp_path: Path) -> None:
    env = _clean_env(INCMAN_API_KEYS="tester:admin:k1")
    env.pop("FLOWER_BASIC_AUTH", None)
    log = tmp_path / "run.log"
    run = _incman_run(["--host", "0.0.0.0", "--flower"], tmp_path, env, log)
    assert run.wait(60) == 2
    assert "FLOWER_BASIC_AUTH=user:password" in log.read_text()
    assert not (tmp_path / "incman-data").exists()  # refused before anything started


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a server certificate for 127.0.0.1 signed by it."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return certfile, keyfile, cafile


def test_run_over_https_with_flower_behind_a_password_and_a_redis_snapshot(
    tmp_path: Path,
) -> None:
    """`incman run --host 0.0.0.0 --flower --certfile --keyfile`: the official PagerDuty client
    (which refuses http://) sends an event over HTTPS and it becomes an incident; Flower asks
    for its password; the embedded Redis saves `60 1` and writes redis.rdb at the stop; the
    console shows the banner and one line per event and incident, no Celery banner."""
    import pagerduty
    import redis

    certfile, keyfile, cafile = _tls_files(tmp_path)
    port, flower_port = free_port(), free_port()
    env = _clean_env(
        INCMAN_API_KEYS="tester:admin:run-admin,pd:ingest:pd-routing-key",
        FLOWER_BASIC_AUTH="ops:flower-pass",
    )
    args = [
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--flower",
        "--flower-port",
        str(flower_port),
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
    ]
    log = tmp_path / "run.log"
    run = _incman_run(args, tmp_path, env, log)
    data = tmp_path / "incman-data"
    url = f"https://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: run.poll() is None and "incman is running" in log.read_text(errors="replace"),
            timeout=120,
            what=f"the banner:\n{log.read_text(errors='replace')}",
        )
        assert f"API       {url}" in log.read_text()

        with pytest.raises(pagerduty.UrlError):
            pagerduty.EventsApiV2Client("pd-routing-key", base_url=f"http://127.0.0.1:{port}")
        trusted = ssl.create_default_context(cafile=str(cafile))  # the certificate is checked
        client = pagerduty.EventsApiV2Client("pd-routing-key", base_url=url, verify=trusted)
        client.trigger("Disk full on pd-db01", "run-pd-db01", severity="critical")

        def incident() -> dict[str, Any] | None:
            items = requests.get(
                f"{url}/api/v1/events",
                params={"device": "run-pd-db01"},
                headers={"Authorization": "Bearer run-admin"},
                verify=str(cafile),
                timeout=10,
            ).json()
            return (
                items["items"][0] if items["items"] and items["items"][0].get("incident") else None
            )

        assert wait_for(incident, timeout=60, what="the PagerDuty event's incident")

        flower = f"http://127.0.0.1:{flower_port}/"

        def flower_answers() -> int | None:
            try:
                return requests.get(flower, timeout=5).status_code
            except requests.RequestException:
                return None

        assert wait_for(flower_answers, timeout=60, what="Flower") == 401
        assert requests.get(flower, auth=("ops", "flower-pass"), timeout=10).status_code == 200

        sock = redis.Redis(unix_socket_path=str(data / "redis.sock"))
        assert sock.config_get("save") == {"save": "60 1"}
        record = json.loads((data / "run.json").read_text())
        assert record["url"] == url and record["broker"].startswith("redis+socket://")

        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0, log.read_text(errors="replace")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert (data / "redis.rdb").stat().st_size > 0
    assert not (data / "run.json").exists()
    console = log.read_text(errors="replace")
    assert "incman.activity: event " in console and " accepted: " in console
    assert "incman.activity: incident DBG" in console
    assert "-------------- celery@" not in console  # no Celery banner on the quiet console
    assert "Inspect method" not in console
    assert "  broker    redis+socket://" in console
