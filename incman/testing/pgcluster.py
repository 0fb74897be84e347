"""A private PostgreSQL cluster for failure tests: its own data folder and port.

A test can crash it (`pg_ctl -m immediate`), stop it and start it again without touching
anyone else's."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from incman.testing.procs import free_port


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


class PgCluster:
    """initdb'd on creation; `start`, `crash`, `stop`. PostgreSQL refuses to run as root, so
    under root its programs run as the `postgres` user."""

    def __init__(self, root: Path, settings: Mapping[str, str] | None = None) -> None:
        binary = postgres_bin()
        if binary is None:
            raise RuntimeError("no PostgreSQL server programs under /usr/lib/postgresql")
        self.bin = binary
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(root),
            "fsync": "on",
            **(settings or {}),
        }
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            shutil.chown(root, self._user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / program), *args],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}\n{log}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start and wait until it accepts connections (crash recovery included)."""
        options = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options += f" -p {self.port}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "120", "start")  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a power cut would for PostgreSQL: no checkpoint, no WAL flush."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        done = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            user=self._user,
            capture_output=True,
        )
        return done.returncode == 0


@contextmanager
def private_cluster(settings: Mapping[str, str] | None = None) -> Iterator[PgCluster]:
    """A started private cluster, stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="incman-pg-"))
    try:
        cluster = PgCluster(root, settings)
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster.crash()
    finally:
        shutil.rmtree(root, ignore_errors=True)
