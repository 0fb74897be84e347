"""Start and stop incman's processes (API, Celery workers) for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            args, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its pool)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        else:
            self.kill(signal.SIGKILL)
        self._log.close()


def start_api(
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    extra_args: list[str] | None = None,
) -> tuple[Proc, str]:
    """`incman api` on a free port, returned once it answers /healthz."""
    port = port or free_port()
    proc = Proc(
        [sys.executable, "-m", "incman.cli", "api", "--port", str(port), *(extra_args or [])],
        env,
        log_dir / f"api-{port}.log",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"the API exited:\n{proc.output()}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.stop()
    raise TimeoutError(f"the API did not start:\n{proc.output()}")


def start_beat(env: Mapping[str, str], log_dir: Path) -> Proc:
    """A real `celery -A workers.app beat` (polls, the reconciler every 15 s, aging), returned
    once it has started its schedule."""
    log = log_dir / f"beat-{time.monotonic_ns()}.log"
    schedule = log_dir / f"beat-schedule-{time.monotonic_ns()}"
    proc = Proc(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "beat",
            "-s",
            str(schedule),
            "-l",
            "INFO",
        ],
        env,
        log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"beat exited:\n{proc.output()}")
        if "beat: Starting" in proc.output():
            return proc
        time.sleep(0.2)
    proc.stop()
    raise TimeoutError(f"beat did not start:\n{proc.output()}")


def start_worker(
    env: Mapping[str, str],
    log_dir: Path,
    queues: str,
    concurrency: int = 2,
    name: str = "w",
    pool: str = "prefork",
) -> Proc:
    """A real `celery -A workers.app worker` process, returned once it is ready."""
    log = log_dir / f"worker-{name}-{time.monotonic_ns()}.log"
    proc = Proc(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-P",
            pool,
            "-n",
            f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        env,
        log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"the worker exited:\n{proc.output()}")
        if " ready." in proc.output():
            return proc
        time.sleep(0.2)
    proc.stop()
    raise TimeoutError(f"the worker did not start:\n{proc.output()}")
