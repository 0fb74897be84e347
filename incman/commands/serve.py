"""`incman api`: serve the HTTP API."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from incman.commands import CliError
from incman.settings import get_settings


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
    from incman.store.catalog import CatalogError

    try:
        keys = key_table()
    except (KeyError_, CatalogError) as exc:
        raise CliError(str(exc)) from exc
    if not keys and not _is_loopback(host):
        raise CliError(
            f"no API key is configured: refusing to serve an open API on {host} "
            "(set INCMAN_API_KEYS or users in INCMAN_CONFIG, or listen on 127.0.0.1)"
        )
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
    uvicorn.run(
        "incman.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0


def register(sub: Any) -> None:
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", help="address to listen on (INCMAN_API_HOST)")
    api.add_argument("--port", type=int, help="port (INCMAN_API_PORT)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.set_defaults(func=cmd_api)
