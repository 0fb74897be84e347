"""A private, throw-away Redmine 5 on loopback, for tests and demos.

Installs nothing (`deploy/install-redmine.sh` does that): it writes an instance of its own in
a folder (database.yml, secret key, a Gemfile that adds SQLite and puma to Debian's), builds a
fresh SQLite database with Redmine's default data, enables the REST API, creates a private
project, a member with the Developer role, the correlation custom field and API keys, and
serves it with puma on a free loopback port. Debian picks the instance from REDMINE_INSTANCE,
joined onto /usr/share/redmine/instances/: a relative path with enough `..` points it at the
folder, so nothing outside the folder is written."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from incman.testing.procs import Proc, free_port

REDMINE_ROOT = Path("/usr/share/redmine")
PUMA = "puma"
ADMIN_LOGIN, ADMIN_PASSWORD = "admin", "admin"  # what Redmine's migrations create
USER_LOGIN, USER_PASSWORD = "jdoe", "jdoe-password-123"
PROJECT = "incidents"
CORRELATION_FIELD = "IncidentID"

_GEMFILE = """\
eval_gemfile '/usr/share/redmine/Gemfile'
gem 'sqlite3', '~> 1.4.0' unless dependencies.any? { |d| d.name == 'sqlite3' }
gem 'puma' unless dependencies.any? { |d| d.name == 'puma' }
"""

# Rake tasks run in the same process as the migration: the column lists Rails cached before
# the migrations ran must be dropped, or the default data fails ("unknown attribute").
_TASKS = """\
task 'incman:reset_columns' => :environment do
  ActiveRecord::Base.descendants.each(&:reset_column_information)
end
task 'incman:configure' => :environment do
  load File.expand_path('configure.rb', __dir__)
end
"""

# REST on, no notification mails (rendered for every change even with delivery off), the
# admin's forced password change off, a project with every tracker, a Developer member, the
# correlation field (a filter, for every project and tracker), and two things tests use: a
# field that is no filter, and a tracker that lacks the correlation field.
_CONFIGURE = """\
require 'json'
Setting.rest_api_enabled = '1'
Setting.default_language = 'en'
Setting.notified_events = []
admin = User.find_by_login('admin')
admin.update_columns(must_change_passwd: false)
user = User.new(firstname: 'Jane', lastname: 'Doe', mail: 'jdoe@example.net')
user.login = '%(user)s'
user.password = user.password_confirmation = '%(password)s'
user.status = User::STATUS_ACTIVE
user.save!
trackers = Tracker.pluck(:id)
cf = IssueCustomField.create!(name: '%(field)s', field_format: 'string', is_for_all: true,
                              is_filter: true, searchable: true, visible: true,
                              tracker_ids: trackers)
plain = IssueCustomField.create!(name: 'Unfiltered', field_format: 'string', is_for_all: true,
                                 is_filter: false, visible: true, tracker_ids: trackers)
bare = Tracker.create!(name: 'Bare', default_status: IssueStatus.first)
WorkflowRule.copy(Tracker.first, nil, bare, nil)
project = Project.create!(name: 'Incidents', identifier: '%(project)s', is_public: false,
                          enabled_module_names: %%w(issue_tracking),
                          tracker_ids: Tracker.pluck(:id))
Member.create!(project: project, principal: user, role_ids: [Role.find_by(name: 'Developer').id])
puts 'INCMAN ' + JSON.generate(admin_api_key: admin.api_key, user_api_key: user.api_key,
                               user_id: user.id, project_id: project.id,
                               custom_field_id: cf.id, unfiltered_field_id: plain.id,
                               bare_tracker_id: bare.id)
"""


class RedmineUnavailable(RuntimeError):
    """Redmine is not installed here, or would not start."""


def redmine_installed() -> bool:
    return (REDMINE_ROOT / "config.ru").exists() and shutil.which(PUMA) is not None


@dataclass(frozen=True)
class RedmineSetup:
    """What the configuration made: keys and ids the tests use."""

    admin_api_key: str
    user_api_key: str
    user_id: int
    project_id: int
    custom_field_id: int
    unfiltered_field_id: int
    bare_tracker_id: int


class RedmineServer:
    """One running instance; a context manager that stops it and removes its folder."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        if not redmine_installed():
            raise RedmineUnavailable(
                f"{REDMINE_ROOT}/config.ru or puma is absent: run deploy/install-redmine.sh"
            )
        self._tmp = None if folder is not None else tempfile.TemporaryDirectory(prefix="redmine-")
        self.folder = Path(folder if folder is not None else self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.setup: RedmineSetup | None = None

    @property
    def admin_key(self) -> str:
        assert self.setup is not None, "the server is not started"
        return self.setup.admin_api_key

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RAILS_ENV": "production",
            "TZ": "UTC",  # Redmine stores local times: one zone for setup and server
            "BUNDLE_GEMFILE": str(self.folder / "Gemfile"),
            "REDMINE_INSTANCE": "../../../../../.." + str(self.folder),
            "SCHEMA": "/dev/null",  # no db/schema.rb dump into /usr/share/redmine
            "REDMINE_LANG": "en",
        }

    def _write_instance(self) -> None:
        folder = self.folder
        for sub in ("config", "log", "files", "tmp/cache", "public/plugin_assets", "db"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "config" / "database.yml").write_text(
            "production:\n  adapter: sqlite3\n"
            f"  database: {folder}/db/redmine.sqlite3\n  pool: 10\n  timeout: 5000\n"
        )
        (folder / "config" / "secret_key.txt").write_text(secrets.token_hex(32) + "\n")
        (folder / "Gemfile").write_text(_GEMFILE)
        (folder / "tasks.rb").write_text(_TASKS)
        (folder / "configure.rb").write_text(
            _CONFIGURE
            % {
                "user": USER_LOGIN,
                "password": USER_PASSWORD,
                "field": CORRELATION_FIELD,
                "project": PROJECT,
            }
        )

    def _run(self, args: list[str], timeout: float) -> str:
        done = subprocess.run(
            args,
            cwd=REDMINE_ROOT,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RedmineUnavailable(
                f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def start(self, timeout: float = 90.0) -> RedmineServer:
        """Build the instance (≈ 10 s) and serve it (≈ 5 s more)."""
        self._write_instance()
        self._run(["bundle", "lock", "--local"], 120)
        out = self._run(
            [
                "bundle",
                "exec",
                "rake",
                "-r",
                str(self.folder / "tasks.rb"),
                "db:migrate",
                "incman:reset_columns",
                "redmine:load_default_data",
                "incman:configure",
            ],
            300,
        )
        line = next((x for x in out.splitlines() if x.startswith("INCMAN ")), "")
        if not line:
            raise RedmineUnavailable(f"the configuration printed nothing:\n{out}")
        self.setup = RedmineSetup(**json.loads(line[len("INCMAN ") :]))
        self.serve(timeout)
        return self

    def serve(self, timeout: float = 90.0) -> None:
        """Start puma on the instance (one thread: SQLite under concurrent writes answers
        `database is locked` as HTTP 500) and wait for the first answer."""
        self.proc = Proc(
            [
                "bundle",
                "exec",
                PUMA,
                "--dir",
                str(REDMINE_ROOT),
                "-b",
                f"tcp://127.0.0.1:{self.port}",
                "-e",
                "production",
                "-t",
                "1:1",
                str(REDMINE_ROOT / "config.ru"),
            ],
            self._env(),
            self.folder / "log" / "puma.out",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RedmineUnavailable(f"puma exited:\n{self.proc.output()}")
            try:
                if requests.get(f"{self.url}/issue_statuses.json", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RedmineUnavailable(f"Redmine did not answer within {timeout}s")

    # -- REST as the administrator (for tests) -------------------------------------------------
    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        """One REST call; the parsed answer (None for an empty one); raises for an error."""
        resp = requests.request(
            method,
            f"{self.url}/{path.lstrip('/')}",
            headers={"X-Redmine-API-Key": key or self.admin_key},
            timeout=30,
            **kwargs,
        )
        resp.raise_for_status()
        return resp.json() if resp.content.strip() else None

    def issue(self, issue_id: str | int, include: str = "journals") -> dict[str, Any]:
        return self.call("GET", f"issues/{issue_id}.json", params={"include": include})["issue"]  # type: ignore[no-any-return]

    def issues_with_key(self, key: str) -> list[dict[str, Any]]:
        """Every issue (open or closed) whose correlation field holds `key`."""
        assert self.setup is not None
        field = self.setup.custom_field_id
        found = self.call(
            "GET",
            "issues.json",
            params={"status_id": "*", f"cf_{field}": key, "sort": "id", "limit": 100},
        )["issues"]
        return [
            i
            for i in found
            if any(c["id"] == field and c.get("value") == key for c in i.get("custom_fields", []))
        ]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedmineServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
