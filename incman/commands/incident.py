"""`incman incident create|associate`: the event console's incident actions, over the API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from incman.commands.api_client import call_json


def _call(args: argparse.Namespace, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return call_json(
        "POST", path, url=args.url, key=args.api_key or None, body=body, timeout=args.timeout
    )


def _print_incident(inc: dict[str, Any]) -> None:
    number = inc.get("number") or "(being created)"
    print(
        f"{number} {inc.get('state')} {inc.get('url') or ''} events: "
        f"{', '.join(inc.get('eventIds', []))}".rstrip()
    )


def cmd_create(args: argparse.Namespace) -> int:
    answer = _call(
        args, "/api/v1/incidents", {"eventIds": args.event_ids, "notificationId": args.notification}
    )
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        for inc in answer.get("items", []):
            _print_incident(inc)
    return 0


def cmd_associate(args: argparse.Namespace) -> int:
    answer = _call(
        args,
        "/api/v1/incidents/associate",
        {
            "eventIds": args.event_ids,
            "notificationId": args.notification,
            "incident": args.incident,
        },
    )
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        print()
    else:
        _print_incident(answer)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--notification", required=True, help="notification id")
    parser.add_argument("event_ids", nargs="+", metavar="EVENT_ID")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print the API's answer")


def register(sub: Any) -> None:
    incident = sub.add_parser("incident", help="create or associate incidents by hand")
    incident.set_defaults(uses=("url", "api_key", "data_dir"))
    isub = incident.add_subparsers(dest="incident_command", required=True)
    create = isub.add_parser(
        "create",
        help="create incidents for events (one per event, or "
        "one for all when the notification says so)",
    )
    _common(create)
    create.set_defaults(func=cmd_create)
    assoc = isub.add_parser("associate", help="associate events with an incident number")
    assoc.add_argument("-i", "--incident", required=True, help="the incident number")
    _common(assoc)
    assoc.set_defaults(func=cmd_associate)
