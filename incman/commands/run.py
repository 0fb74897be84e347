"""`incman run`: the API, a worker on every queue and beat as one process tree; Ctrl-C stops it.

The console stays quiet: the banner, then one line per event accepted, incident opened and
failure (the `incman.activity` log and warnings); `-v` shows the processes' INFO logs too."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from incman.commands import CliError, UsageError
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
from incman.commands.flower import check_flower_auth
from incman.commands.locate import RUN_RECORD, write_run_record
from incman.commands.serve import tls_files
from incman.settings import Settings, get_settings


class _Stop(Exception):
    """SIGINT or SIGTERM asked `incman run` to stop."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _local_host(host: str) -> str:
    """Where to reach a server listening on `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass
class Plan:
    """What `incman run` starts, decided before anything starts."""

    settings: Settings
    host: str
    port: int
    data_dir: Path
    scheme: str
    flower_port: int | None
    verbose: bool
    concurrency: int

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://{_local_host(self.host)}:{self.port}"

    @property
    def flower_url(self) -> str | None:
        if self.flower_port is None:
            return None
        return f"http://{_local_host(self.host)}:{self.flower_port}"


def _plan(args: argparse.Namespace) -> Plan:
    settings = get_settings()
    _check_file(settings)  # before anything is created, migrated or started
    host = args.host or settings.api_host
    tls = tls_files(args.certfile, args.keyfile)
    if tls:  # the API child reads them from its environment
        os.environ["INCMAN_TLS_CERTFILE"], os.environ["INCMAN_TLS_KEYFILE"] = tls
    if args.flower:
        check_flower_auth(host)
    return Plan(
        settings=settings,
        host=host,
        port=args.port or settings.api_port,
        data_dir=settings.data_dir.resolve(),
        scheme="https" if tls else "http",
        flower_port=args.flower_port if args.flower else None,
        verbose=args.verbose,
        concurrency=args.concurrency,
    )


def _child_env(plan: Plan) -> dict[str, str]:
    env = {
        **os.environ,
        "INCMAN_DATA_DIR": str(plan.data_dir),
        "INCMAN_API_HOST": plan.host,
        "INCMAN_API_PORT": str(plan.port),
        "PYTHONUNBUFFERED": "1",
    }
    if plan.verbose:
        env["INCMAN_LOG_LEVEL"] = "INFO"
    else:
        env.setdefault("INCMAN_LOG_LEVEL", "WARNING")
    env.setdefault("INCMAN_PUBLIC_URL", plan.api_url)
    return env


def _check_file(settings: Settings) -> None:
    """Every problem of the configuration file at once (as `incman config check` says)."""
    from incman.store.catalog import CatalogError, load_file_catalog

    try:
        load_file_catalog(settings.config_path)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc


def _check_config(settings: Settings, host: str) -> str:
    """Fail before starting anything when the configuration or the keys are unusable."""
    from incman.commands.serve import check_api_keys

    _check_file(settings)
    check_api_keys(host)
    if settings.config_path:
        return settings.config_path
    return "the demo (a Debug incident for every event of severity Warning or worse)"


def bind_api_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here and handed to the API child: whatever answers
    on the port afterwards is this run's own API, never another server already there."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is in use by another process (another incman?): "
                "stop it or choose another --port"
            ) from exc
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def incman_command() -> str:
    """How to call this installation's `incman` from the current folder."""
    mine = Path(sys.executable).parent / "incman"
    on_path = shutil.which("incman")
    if not mine.exists():
        return f"{sys.executable} -m incman.cli"
    if on_path and Path(on_path).resolve() == mine.resolve():
        return "incman"
    try:
        return str(mine.relative_to(Path.cwd()))
    except ValueError:
        return str(mine)


def _banner(plan: Plan, config: str, redis_socket: Path | None) -> str:
    settings = plan.settings
    database = make_url(settings.effective_database_url()).render_as_string(hide_password=True)
    redis_where = (
        f"embedded, {redis_socket}" if redis_socket else maybe_sanitize_url(settings.redis_url)
    )
    lines = [
        "incman is running",
        f"  API       {plan.api_url}",
        f"  API docs  {plan.api_url}/docs",
        f"  console   {plan.api_url}/console",
        *([f"  Flower    {plan.flower_url}"] if plan.flower_url else []),
        f"  config    {config}",
        f"  database  {database}",
        f"  Redis     {redis_where}",
        f"  broker    {maybe_sanitize_url(settings.effective_broker_url())}",
        f"  data      {plan.data_dir}",
    ]
    url = "" if plan.api_url == "http://127.0.0.1:8000" else f" --url {plan.api_url}"
    lines.append(
        f'Send an event:  {incman_command()} send-event{url} -d web01 -s Error "Disk full"'
    )
    lines.append("Ctrl-C stops everything." + ("" if plan.verbose else " (-v: more output)"))
    return "\n".join(lines)


def _start(plan: Plan, tree: ProcessTree, embedded: EmbeddedRedis | None) -> str:
    """Migrate, check, start every process and wait for the API; the config's name."""
    from incman.outbox.queues import all_queue_names
    from incman.store.migrations import upgrade

    upgrade(plan.settings.effective_database_url())
    config = _check_config(plan.settings, plan.host)
    sock = bind_api_socket(plan.host, plan.port)
    if embedded is not None:
        embedded.start()
    env = _child_env(plan)
    try:
        api = tree.spawn(
            "API", api_command(plan.host, plan.port, sock.fileno()), env, pass_fds=(sock.fileno(),)
        )
    finally:
        sock.close()  # the API child holds it now
    tree.spawn("worker", worker_command(all_queue_names(), plan.concurrency, plan.verbose), env)
    tree.spawn("beat", beat_command(plan.data_dir / "celerybeat-schedule", plan.verbose), env)
    if plan.flower_port is not None:
        tree.spawn("Flower", flower_command(plan.flower_port, plan.host, plan.verbose), env)
    wait_http(f"{plan.api_url}/healthz", api)
    return config


def _record(plan: Plan) -> None:
    """Where this run serves, for the other commands started beside it."""
    write_run_record(
        plan.data_dir,
        {
            "pid": os.getpid(),
            "url": plan.api_url,
            "broker": maybe_sanitize_url(plan.settings.effective_broker_url()),
            "flower": plan.flower_url,
        },
    )


def _supervise(tree: ProcessTree) -> int:
    while True:
        gone = tree.exited()
        if gone is not None:
            print(f"incman: the {gone.name} exited ({gone.popen.returncode}); stopping", flush=True)
            return 1
        time.sleep(0.5)


def cmd_run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    lock = DataDirLock(plan.data_dir)
    embedded = None
    if plan.settings.embedded:
        embedded = EmbeddedRedis(plan.data_dir, plan.data_dir / plan.settings.redis_socket.name)
    tree = ProcessTree()
    try:
        lock.acquire()
        config = _start(plan, tree, embedded)
        _record(plan)
        print(_banner(plan, config, embedded.socket if embedded else None), flush=True)
        return _supervise(tree)
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
        if lock.held:
            (plan.data_dir / RUN_RECORD).unlink(missing_ok=True)
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
    run.add_argument("--certfile", help="serve the API over HTTPS (INCMAN_TLS_CERTFILE)")
    run.add_argument("--keyfile", help="the certificate's key (INCMAN_TLS_KEYFILE)")
    run.add_argument(
        "-v", "--verbose", action="store_true", help="every process's INFO log, not just activity"
    )
    run.set_defaults(func=cmd_run, uses=("data_dir",))
