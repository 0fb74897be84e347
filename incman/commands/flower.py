"""`incman flower`: Flower on incman's broker, showing the per-integration queues."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from incman.commands import CliError
from incman.commands.embedded import flower_command
from incman.settings import get_settings


def cmd_flower(args: argparse.Namespace) -> int:
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
    flower.add_argument("--address", default="127.0.0.1", help="address (127.0.0.1)")
    flower.set_defaults(func=cmd_flower)
