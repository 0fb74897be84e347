"""`incman db upgrade`: apply the migrations."""

from __future__ import annotations

import argparse
from typing import Any

from incman.settings import get_settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from incman.store.migrations import upgrade

    url = get_settings().effective_database_url()
    upgrade(url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database maintenance")
    db.set_defaults(uses=("data_dir",))
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
