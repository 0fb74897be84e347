"""`incman run` on the embedded default (SQLite + its own Redis), with no service URL set:
an event sent with `incman send-event` becomes a Debug incident, and Ctrl-C leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
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
