"""A private, throw-away Request Tracker 5 on loopback, for tests and demos.

Installs nothing (`deploy/install-rt.sh` does that): it writes a site config and an SQLite
database in a folder of its own, starts the packaged `rt-server` on a free port, waits for
REST2 to answer, and creates the correlation custom field applied to queue General. Nothing
under /etc is read or written (`RT_SITE_CONFIG_DIR` points at an empty folder)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import requests

from incman.testing.procs import Proc, free_port

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
RT_LIB = Path("/usr/share/request-tracker5/lib")
ROOT_USER, ROOT_PASSWORD = "root", "password"  # what rt-setup-database creates

_SITE_CONFIG = """\
Set($rtname, 'incman-test');
Set($Organization, 'incman.test');
Set($Timezone, 'UTC');
Set($CorrespondAddress, 'rt@localhost');
Set($CommentAddress, 'rt-comment@localhost');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebPath, '');
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{folder}/rtdb.sqlite');
Set($DatabaseUser, '');
Set($DatabasePassword, '');
Set($MailCommand, 'sendmailpipe');
Set($SendmailPath, '{folder}/fake-sendmail');
Set($LogToSyslog, undef);
Set($LogToSTDERR, 'warning');
Set($LogToFile, undef);
Set($BcryptCost, 4);
1;
"""

# Mints an API token for a user with RT's own library (REST2 has no endpoint for it).
_MINT_TOKEN = """\
use strict; use warnings;
use RT; RT::LoadConfig(); RT::Init();
my $user = RT::User->new(RT->SystemUser); $user->Load($ARGV[0]) or die "no user $ARGV[0]\\n";
my ($id, $msg, $token) = RT::AuthToken->new($user)->Create(Owner => $user->Id,
                                                           Description => 'incman tests');
die "token: $msg\\n" unless $id;
print $token;
"""


class RTUnavailable(RuntimeError):
    """Request Tracker 5 is not installed here, or would not start."""


def rt_installed() -> bool:
    return RT_SERVER.exists() and RT_SETUP_DATABASE.exists()


class RTServer:
    """One running instance; a context manager that stops it and removes its folder."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        if not rt_installed():
            raise RTUnavailable(f"{RT_SERVER} is absent: run deploy/install-rt.sh")
        self._tmp = None if folder is not None else tempfile.TemporaryDirectory(prefix="rt-")
        self.folder = Path(folder if folder is not None else self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = (ROOT_USER, ROOT_PASSWORD)
        self.proc: Proc | None = None

    @property
    def rest(self) -> str:
        return f"{self.url}/REST/2.0"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RT_SITE_CONFIG": str(self.folder / "RT_SiteConfig.pm"),
            "RT_SITE_CONFIG_DIR": str(self.folder / "siteconfig.d"),
        }

    def _write_config(self) -> None:
        (self.folder / "siteconfig.d").mkdir(parents=True, exist_ok=True)
        sendmail = self.folder / "fake-sendmail"
        sendmail.write_text(f"#!/bin/sh\ncat >> {self.folder}/mail.txt\n")
        sendmail.chmod(0o755)
        (self.folder / "RT_SiteConfig.pm").write_text(
            _SITE_CONFIG.format(port=self.port, folder=self.folder)
        )

    def start(self, timeout: float = 60.0) -> RTServer:
        self._write_config()
        setup = subprocess.run(
            [str(RT_SETUP_DATABASE), "--action", "init", "--skip-create"],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if setup.returncode != 0:
            raise RTUnavailable(f"rt-setup-database failed:\n{setup.stdout}\n{setup.stderr}")
        self.proc = Proc(
            [str(RT_SERVER), "--host", "127.0.0.1", "--port", str(self.port), "--max-workers", "2"],
            self._env(),
            self.folder / "rt-server.log",
        )
        self._wait_ready(timeout)
        self.create_custom_field("IncidentID", "General")
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RTUnavailable(f"rt-server exited:\n{self.proc.output()}")
            try:
                if requests.get(f"{self.rest}/rt", auth=self.auth, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RTUnavailable(f"rt-server did not answer within {timeout}s")

    def create_custom_field(self, name: str, queue: str) -> int:
        """A single-value free-form ticket custom field applied to `queue`; returns its id."""
        resp = requests.post(
            f"{self.rest}/customfield",
            auth=self.auth,
            timeout=30,
            json={
                "Name": name,
                "Type": "Freeform",
                "MaxValues": 1,
                "LookupType": "RT::Queue-RT::Ticket",
                "Queue": queue,
            },
        )
        resp.raise_for_status()
        return int(resp.json()["id"])

    def create_queue(self, name: str) -> int:
        resp = requests.post(f"{self.rest}/queue", auth=self.auth, timeout=30, json={"Name": name})
        resp.raise_for_status()
        return int(resp.json()["id"])

    def mint_token(self, user: str = ROOT_USER) -> str:
        """A REST2 auth token for `user`."""
        out = subprocess.run(
            ["perl", f"-I{RT_LIB}", "-e", _MINT_TOKEN, user],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise RTUnavailable(f"could not mint a token: {out.stderr.strip()}")
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RTServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
