"""The `incman` command."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable

from incman.config import get_settings


class CliError(Exception):
    """A message for the user; the command exits with status 2."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_keys(host: str) -> bool:
    """True when keys are configured; refuses open mode off loopback."""
    from incman.api.auth import KeyError_, key_table
    from incman.catalog import CatalogError

    try:
        keys = key_table()
    except (KeyError_, CatalogError) as exc:
        raise CliError(str(exc)) from exc
    if not keys and not _is_loopback(host):
        raise CliError(f"no API key is configured: refusing to serve an open API on {host} "
                       "(set INCMAN_API_KEYS or users in INCMAN_CONFIG, or listen on 127.0.0.1)")
    return bool(keys)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from incman.logs import setup_logging

    settings = get_settings()
    setup_logging(settings.log_format)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if not check_api_keys(host):
        print(f"incman: no API key configured: the API is open, on {host} only", file=sys.stderr)
    uvicorn.run("incman.api.app:create_app", factory=True, host=host, port=port,
                workers=args.workers, log_level="warning", access_log=False)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from incman.migrations import upgrade

    url = get_settings().effective_database_url()
    upgrade(url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incman", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", help="address to listen on (INCMAN_API_HOST)")
    api.add_argument("--port", type=int, help="port (INCMAN_API_PORT)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.set_defaults(func=cmd_api)

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        print(f"incman: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
