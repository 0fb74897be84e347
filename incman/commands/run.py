"""`incman run`: the API, a worker on every queue and beat as one process tree; Ctrl-C stops it."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from incman.commands import CliError
from incman.commands.embedded import (
    DataDirLock,
    EmbeddedError,
    EmbeddedRedis,
    ProcessTree,
    api_command,
    beat_command,
    flower_command,
    wait_http,
    worker_command,
)
from incman.settings import Settings, get_settings


class _Stop(Exception):
    """SIGINT or SIGTERM asked `incman run` to stop."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _local_host(host: str) -> str:
    """Where to reach a server listening on `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _child_env(data_dir: Path, host: str, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "INCMAN_DATA_DIR": str(data_dir),
        "INCMAN_API_HOST": host,
        "INCMAN_API_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    env.setdefault("INCMAN_PUBLIC_URL", f"http://{_local_host(host)}:{port}")
    return env


def _check_config(settings: Settings, host: str) -> str:
    """Fail before starting anything when the configuration or the keys are unusable."""
    from incman.commands.serve import check_api_keys
    from incman.store.catalog import CatalogError, load_file_catalog

    try:
        load_file_catalog(settings.config_path)
    except CatalogError as exc:
        raise CliError(str(exc)) from exc
    check_api_keys(host)
    if settings.config_path:
        return settings.config_path
    return "the demo (a Debug incident for every event of severity Warning or worse)"


def _banner(
    settings: Settings, api: str, flower: str | None, config: str, redis_socket: Path | None
) -> str:
    lines = ["incman is running"]
    lines.append(f"  API       {api}")
    lines.append(f"  API docs  {api}/docs")
    if flower:
        lines.append(f"  Flower    {flower}")
    lines.append(f"  config    {config}")
    database = make_url(settings.effective_database_url()).render_as_string(hide_password=True)
    lines.append(f"  database  {database}")
    redis_where = (
        f"embedded, {redis_socket}" if redis_socket else maybe_sanitize_url(settings.redis_url)
    )
    lines.append(f"  Redis     {redis_where}")
    lines.append(f'Send an event:  incman send-event --url {api} -d web01 -s Error "Disk full"')
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from incman.outbox.queues import all_queue_names
    from incman.store.migrations import upgrade

    settings = get_settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _child_env(data_dir, host, port)
    api_url = f"http://{_local_host(host)}:{port}"
    flower_url = f"http://{_local_host(host)}:{args.flower_port}" if args.flower else None

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    lock = DataDirLock(data_dir)
    embedded = (
        EmbeddedRedis(data_dir, data_dir / settings.redis_socket.name)
        if settings.embedded
        else None
    )
    tree = ProcessTree()
    try:
        lock.acquire()
        upgrade(settings.effective_database_url())
        config = _check_config(settings, host)
        if embedded is not None:
            embedded.start()
        api = tree.spawn("API", api_command(host, port), env)
        tree.spawn("worker", worker_command(all_queue_names(), args.concurrency), env)
        tree.spawn("beat", beat_command(data_dir / "celerybeat-schedule"), env)
        if args.flower:
            tree.spawn("Flower", flower_command(args.flower_port, host), env)
        wait_http(f"{api_url}/healthz", api)
        print(
            _banner(settings, api_url, flower_url, config, embedded.socket if embedded else None),
            flush=True,
        )
        while True:
            gone = tree.exited()
            if gone is not None:
                print(
                    f"incman: the {gone.name} exited ({gone.popen.returncode}); stopping",
                    flush=True,
                )
                return 1
            time.sleep(0.5)
    except _Stop:
        print("incman: stopping", flush=True)
        return 0
    except EmbeddedError as exc:
        raise CliError(str(exc)) from exc
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        tree.stop()
        if embedded is not None:
            embedded.stop()
        lock.release()


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the API, a worker and beat together (embedded SQLite and Redis "
        "when no service URL is set)",
    )
    run.add_argument("--host", help="address of the API (INCMAN_API_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port of the API (INCMAN_API_PORT, 8000)")
    run.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="worker processes (1: one process, the only safe choice on SQLite)",
    )
    run.add_argument("--flower", action="store_true", help="start Flower too")
    run.add_argument("--flower-port", type=int, default=5555, help="Flower's port (5555)")
    run.set_defaults(func=cmd_run)
