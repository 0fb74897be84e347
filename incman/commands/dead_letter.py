"""`incman dead-letter list|replay`: actions that failed for good, listed and sent again.

It reads the database and the broker like the workers: the settings, else the data folder of
`incman run` given or found (see incman.commands.locate)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, TextIO

from incman.commands import UsageError
from incman.commands.locate import use_database

BAR_WIDTH = 30


def progress_bar(done: int, total: int, out: TextIO | None = None) -> None:
    """`replaying [#########.....] 600/1000` on one line of stderr, rewritten in place."""
    out = out or sys.stderr
    filled = BAR_WIDTH * done // total if total else BAR_WIDTH
    out.write(f"\rreplaying [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
    out.flush()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cmd_list(args: argparse.Namespace) -> int:
    use_database()
    from incman.outbox.dead_letter import list_dead

    # Whoever reads the database directly sees everything a manager does.
    page = list_dead(limit=args.limit, notification_id=args.notification, detail=True)
    if args.json:
        json.dump(page, sys.stdout, indent=2)
        print()
        return 0
    for item in page["items"]:
        error = (item["errorDetail"] or item["lastError"] or "").replace("\n", " ")[:100]
        print(
            f"{item['id']:>8} {item['kind']:<8} {item['notificationId']:<20} "
            f"{item['eventId'] or '-':<36} {item['attempts']:>3} {item['updatedAt']} {error}"
        )
    shown = len(page["items"])
    print(f"{shown} of {page['total']} dead action(s)", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.all and args.ids:
        raise UsageError("dead-letter replay: give --id N or --all, not both")
    if not args.all and not args.ids:
        raise UsageError("dead-letter replay: give --id N (repeatable) or --all")
    use_database()
    from incman.outbox.dead_letter import replay, replay_all

    if args.all:
        result = replay_all(_actor(), progress=None if args.quiet else progress_bar)
        if not args.quiet and result.replayed:
            sys.stderr.write("\n")
    else:
        result = replay(args.ids, _actor())
    answer: dict[str, Any] = result.to_api()
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        print(f"replayed {answer['replayed']} action(s)")
        if result.not_dead:
            print(f"not dead, left alone: {', '.join(map(str, result.not_dead))}")
        if result.missing:
            print(f"no such action: {', '.join(map(str, result.missing))}")
    return 1 if result.missing or result.not_dead else 0


def register(sub: Any) -> None:
    dead = sub.add_parser("dead-letter", help="list and replay actions that failed for good")
    dead.set_defaults(uses=("data_dir",))
    dsub = dead.add_subparsers(dest="dead_letter_command", required=True)
    lst = dsub.add_parser("list", help="list dead actions, newest first")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("-n", "--notification", help="only this notification's actions")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    rep = dsub.add_parser("replay", help="send dead actions again (status pending, attempts 0)")
    rep.add_argument(
        "--id",
        dest="ids",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="an action id (repeatable)",
    )
    rep.add_argument("--all", action="store_true", help="every dead action, in batches")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_replay)
