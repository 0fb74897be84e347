"""`incman flower`: Flower on incman's broker, showing the per-integration queues."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from incman.commands import CliError, UsageError
from incman.commands.embedded import flower_command
from incman.commands.locate import apply_data_dir, find_data_dir
from incman.commands.serve import is_loopback
from incman.settings import get_settings


def check_flower_auth(address: str) -> None:
    """Flower shows every task's arguments and can stop workers: off loopback it needs
    a password (FLOWER_BASIC_AUTH=user:password, which Flower reads itself)."""
    if is_loopback(address):
        return
    auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    pairs = [p for p in auth.split(",") if p.strip()]
    if not pairs:
        raise UsageError(
            f"Flower would listen on {address} without a password: set "
            "FLOWER_BASIC_AUTH=user:password (or keep Flower on 127.0.0.1)"
        )
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user.strip() or not password:
            raise UsageError("FLOWER_BASIC_AUTH must be user:password[,user:password...]")


def cmd_flower(args: argparse.Namespace) -> int:
    check_flower_auth(args.address)
    settings = get_settings()
    if settings.embedded and not settings.broker_url:
        folder = find_data_dir()  # the data folder given, or the one of `incman run` here
        if folder is not None:
            apply_data_dir(str(folder.resolve()))
            settings = get_settings()
    if settings.embedded and not settings.broker_url and not settings.redis_socket.exists():
        raise CliError(
            f"no embedded Redis at {settings.redis_socket.resolve()}: start "
            "`incman run` (or `incman run --flower`) first, or set INCMAN_BROKER_URL"
        )
    args_ = flower_command(args.port, args.address)
    sys.stdout.flush()
    # Become Flower: signals and the exit status are Flower's own.
    os.execv(args_[0], args_)
    return 0  # not reached


def register(sub: Any) -> None:
    flower = sub.add_parser("flower", help="run Flower (Celery's monitor) on incman's broker")
    flower.add_argument("--port", type=int, default=5555, help="port (5555)")
    flower.add_argument(
        "--address",
        default="127.0.0.1",
        help="address (127.0.0.1; any other needs FLOWER_BASIC_AUTH=user:password)",
    )
    flower.set_defaults(func=cmd_flower, uses=("data_dir",))
