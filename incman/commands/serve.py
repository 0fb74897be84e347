"""`incman api`: serve the HTTP API (HTTPS with a certificate and key)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

from incman.commands import UsageError
from incman.settings import get_settings


def is_loopback(host: str) -> bool:
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
        raise UsageError(str(exc)) from exc
    if not keys and not is_loopback(host):
        raise UsageError(
            f"no API key is configured: refusing to serve an open API on {host} "
            "(set INCMAN_API_KEYS or users in INCMAN_CONFIG, or listen on 127.0.0.1)"
        )
    return bool(keys)


def tls_files(certfile: str | None, keyfile: str | None) -> tuple[str, str] | None:
    """The certificate and key to serve HTTPS with (options, else INCMAN_TLS_CERTFILE and
    INCMAN_TLS_KEYFILE); None for plain HTTP. Both or neither, and both readable."""
    settings = get_settings()
    cert = certfile or settings.tls_certfile
    key = keyfile or settings.tls_keyfile
    if not cert and not key:
        return None
    if not cert or not key:
        raise UsageError(
            "HTTPS needs both --certfile and --keyfile (INCMAN_TLS_CERTFILE, INCMAN_TLS_KEYFILE)"
        )
    for path in (cert, key):
        if not os.access(path, os.R_OK) or not Path(path).is_file():
            raise UsageError(f"cannot read {path}")
    return cert, key


def _listening_socket(fd: int) -> socket.socket:
    """The socket `incman run` bound and passed down (family and type read from the fd)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise UsageError(f"--fd {fd} is not a socket: {exc.strerror}") from exc
    sock.set_inheritable(False)
    return sock


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from incman.logs import logging_config

    settings = get_settings()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    tls = tls_files(args.certfile, args.keyfile)
    if not check_api_keys(host):
        print(f"incman: no API key configured: the API is open, on {host} only", file=sys.stderr)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": args.workers,
        "log_config": logging_config(settings.log_format, settings.log_level, settings.access_log),
        "log_level": None,
        "access_log": settings.access_log,
        "ssl_certfile": tls[0] if tls else None,
        "ssl_keyfile": tls[1] if tls else None,
    }
    if args.fd is None:
        uvicorn.run("incman.api.app:serve_app", **options)
        return 0
    if args.workers != 1:
        raise UsageError("--fd serves with one process: leave --workers at 1")
    server = uvicorn.Server(uvicorn.Config("incman.api.app:serve_app", **options))
    server.run(sockets=[_listening_socket(args.fd)])
    return 0


def register(sub: Any) -> None:
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", help="address to listen on (INCMAN_API_HOST)")
    api.add_argument("--port", type=int, help="port (INCMAN_API_PORT)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    api.add_argument(
        "--certfile", help="serve HTTPS with this PEM certificate chain (INCMAN_TLS_CERTFILE)"
    )
    api.add_argument("--keyfile", help="the certificate's PEM private key (INCMAN_TLS_KEYFILE)")
    api.add_argument(
        "--fd", type=int, help="serve on this already listening socket (used by `incman run`)"
    )
    api.set_defaults(func=cmd_api, uses=("data_dir",))
