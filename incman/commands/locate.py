"""How every command finds the service it works on.

The settings first (INCMAN_URL, INCMAN_DATABASE_URL, ...), then the data folder given
(`--data-dir`, INCMAN_DATA_DIR) or found (`incman-data` in the current folder or one above it),
where a running `incman run` leaves its addresses in `run.json`."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from incman.commands import CliError, UsageError
from incman.settings import get_settings, reset_settings

DATA_DIR_NAME = "incman-data"
RUN_RECORD = "run.json"
LOCK_FILE = "run.lock"


def check_base_url(url: str, origin: str = "--url") -> str:
    """`url` without a trailing slash; UsageError naming `origin` when it is not a base URL."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        hint = f"http://{text}" if "://" not in text else "http://HOST:PORT"
        raise UsageError(
            f"{origin} {url!r} is not an http(s) URL with a host: did you mean {hint}?"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        base = f"{parts.scheme}://{parts.netloc}"
        raise UsageError(
            f"{origin} {url!r} has a path: give incman's base URL, e.g. {base} "
            "(the commands add /api/v1/... themselves)"
        )
    try:
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise UsageError(f"{origin} {url!r} has a port that is not a number") from exc
    return f"{parts.scheme}://{parts.netloc}"


def apply_data_dir(given: str | None) -> None:
    """Make `--data-dir` the setting every later read sees (INCMAN_DATA_DIR)."""
    if given:
        os.environ["INCMAN_DATA_DIR"] = given
        reset_settings()


def find_data_dir(start: Path | None = None) -> Path | None:
    """The data folder given (INCMAN_DATA_DIR, which `--data-dir` sets), else the first
    `incman-data` folder in the current folder or above it; None when there is none. A
    folder given that does not exist is a usage error (not a reason to look elsewhere)."""
    given = os.environ.get("INCMAN_DATA_DIR", "").strip()
    if given:
        path = Path(given)
        if not path.is_dir():
            raise UsageError(
                f"the data folder {given!r} (--data-dir or INCMAN_DATA_DIR) does not exist: "
                "give the folder `incman run` uses"
            )
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DATA_DIR_NAME
        if candidate.is_dir():
            return candidate
    return None


def run_holds(data_dir: Path) -> bool:
    """True while an `incman run` holds the data folder's lock."""
    try:
        fh = open(data_dir / LOCK_FILE, encoding="utf-8")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def running_service(data_dir: Path | None) -> dict[str, Any] | None:
    """What the `incman run` holding `data_dir` wrote about itself, None if none runs."""
    if data_dir is None or not run_holds(data_dir):
        return None
    try:
        record = json.loads((data_dir / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_run_record(data_dir: Path, record: dict[str, Any]) -> None:
    path = data_dir / RUN_RECORD
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def api_url(given: str | None) -> str:
    """Where the API commands send: `--url`, INCMAN_URL, INCMAN_API_HOST/PORT when set,
    the `incman run` of the data folder given or found, else http://127.0.0.1:8000."""
    if given:
        return check_base_url(given, "--url")
    settings = get_settings()
    if settings.cli_url:
        return check_base_url(settings.cli_url, "INCMAN_URL")
    explicit = os.environ.get("INCMAN_API_HOST") or os.environ.get("INCMAN_API_PORT")
    if not explicit:
        record = running_service(find_data_dir())
        if record and isinstance(record.get("url"), str):
            return check_base_url(record["url"], "the run record")
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    scheme = "https" if settings.tls_certfile else "http"
    return f"{scheme}://{host}:{settings.api_port}"


def use_database() -> str:
    """The database the direct commands (`dead-letter`) work on: INCMAN_DATABASE_URL, else
    the SQLite file of the data folder given or found. Never creates one."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    folder = find_data_dir()
    if folder is None or not (folder / "incman.db").is_file():
        where = folder or Path.cwd() / DATA_DIR_NAME
        raise CliError(
            f"no incman database: INCMAN_DATABASE_URL is not set and there is no "
            f"{where / 'incman.db'} (run this where `incman run` runs, or give "
            "--data-dir DIR or INCMAN_DATABASE_URL)"
        )
    apply_data_dir(str(folder.resolve()))
    return get_settings().effective_database_url()
