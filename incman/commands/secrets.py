"""`incman secrets rotate|generate`: the keys of the notification secrets stored encrypted.

It reads the database named by the environment, like the workers."""

from __future__ import annotations

import argparse
from typing import Any

from incman.commands import CliError


def cmd_generate(_: argparse.Namespace) -> int:
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode())
    return 0


def cmd_rotate(_: argparse.Namespace) -> int:
    from incman.store.secrets import SecretsError, rotate

    try:
        done = rotate()
    except SecretsError as exc:
        raise CliError(f"secrets rotate: {exc}") from exc
    print(
        f"re-encrypted {done.rotated} secret(s) with the newest key, encrypted "
        f"{done.encrypted} stored in plain text; {done.notifications} notification(s) changed"
    )
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("secrets", help="encryption keys of stored notification secrets")
    ssub = parser.add_subparsers(dest="secrets_command", required=True)
    rot = ssub.add_parser(
        "rotate",
        help="re-encrypt every stored secret with the first key of INCMAN_SECRETS_KEY "
        "(the others still open the old ones) and encrypt any left in plain text",
    )
    rot.set_defaults(func=cmd_rotate)
    gen = ssub.add_parser("generate", help="print a new key to put first in INCMAN_SECRETS_KEY")
    gen.set_defaults(func=cmd_generate)
