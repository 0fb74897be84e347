"""`incman send-event`: send one event over the HTTP API, with zensendevent's option letters."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from incman.commands import CliError, UsageError
from incman.commands.api_client import call_json, default_key

DEFAULT_SEVERITY = "3"  # Warning, zensendevent's default


class SendError(Exception):
    """The event was not accepted; the message says why."""


def _field_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected field=value, got {text!r}")
    return name.strip(), value


def _severity(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    """The API's event body from the options; `-o field=value` comes last and wins."""
    event: dict[str, Any] = {"summary": " ".join(args.summary)}
    for key, value in (
        ("device", args.device),
        ("component", args.component),
        ("eventClass", args.event_class),
        ("eventKey", args.event_key),
        ("eventClassKey", args.event_class_key),
    ):
        if value is not None:
            event[key] = value
    event["severity"] = _severity(args.severity)
    for name, value in args.other:
        event[name] = _severity(value) if name == "severity" else value
    return event


def post_event(
    url: str | None, api_key: str, event: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """POST the event; the API's answer, or SendError with the reason."""
    try:
        answer = call_json(
            "POST", "/api/v1/events", url=url, key=api_key, body=event, timeout=timeout
        )
    except CliError as exc:
        raise SendError(str(exc)) from exc
    if "eventId" not in answer:
        raise SendError(f"unexpected answer {answer!r}"[:200])
    return answer


def describe(answer: dict[str, Any]) -> str:
    verb = "created" if answer.get("created") else "updated"
    line = f"event {answer['eventId']} {verb} (count {answer.get('count')})"
    if answer.get("status") and answer["status"] != "New":
        line += f", status {answer['status']}"
    return line


def cmd_send_event(args: argparse.Namespace) -> int:
    event = build_event(args)
    try:
        answer = post_event(args.url, args.api_key or default_key(), event, args.timeout)
    except SendError as exc:
        if isinstance(exc.__cause__, UsageError):
            raise exc.__cause__ from None
        print(f"incman send-event: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2) if args.json else describe(answer))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "send-event",
        help="send one event (zensendevent's options)",
        description="Send one event to incman over its HTTP API. The option "
        "letters are zensendevent's, so existing scripts work.",
    )
    p.add_argument("summary", nargs="+", help="the summary (words are joined by spaces)")
    p.add_argument("-d", "--device", help="device (required by the API)")
    p.add_argument("-p", "--component", help="component")
    p.add_argument("-c", "--eventClass", dest="event_class", help="event class, e.g. /Perf/Disk")
    p.add_argument("-y", "--eventKey", dest="event_key", help="event key")
    p.add_argument("-k", "--eventClassKey", dest="event_class_key", help="event class key")
    p.add_argument(
        "-s",
        "--severity",
        default=DEFAULT_SEVERITY,
        help="0-5 or Clear, Debug, Info, Warning, Error, Critical (default Warning)",
    )
    p.add_argument(
        "-o",
        "--other",
        action="append",
        type=_field_value,
        default=[],
        metavar="FIELD=VALUE",
        help="set an event field (repeatable); unknown names go into details",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    p.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    p.set_defaults(func=cmd_send_event, uses=("url", "api_key", "data_dir"))
