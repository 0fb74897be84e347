"""`incman send-event`: send one event over the HTTP API, with zensendevent's option letters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests

from incman.config import get_settings

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
    for key, value in (("device", args.device), ("component", args.component),
                       ("eventClass", args.event_class), ("eventKey", args.event_key),
                       ("eventClassKey", args.event_class_key)):
        if value is not None:
            event[key] = value
    event["severity"] = _severity(args.severity)
    for name, value in args.other:
        event[name] = _severity(value) if name == "severity" else value
    return event


def default_url() -> str:
    if os.environ.get("INCMAN_URL"):
        return os.environ["INCMAN_URL"]
    settings = get_settings()
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def _reason(resp: requests.Response) -> str:
    """The API's error answer in one line: status, error, detail and field."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason
        return f"HTTP {resp.status_code}: {text}"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = json.dumps(detail) if detail is not None else ""
    parts = [f"HTTP {resp.status_code}", str(body.get("error") or resp.reason or "")]
    out = ": ".join(p for p in parts if p)
    if detail:
        out += f": {detail}"
    if body.get("field"):
        out += f" (field {body['field']})"
    return out


def post_event(url: str, api_key: str, event: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST the event; the API's answer, or SendError with the reason."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    endpoint = url.rstrip("/") + "/api/v1/events"
    try:
        resp = requests.post(endpoint, json=event, headers=headers, timeout=timeout)
    except requests.ConnectionError as exc:
        raise SendError(f"cannot reach {endpoint}: {exc.__class__.__name__}: "
                        "is incman running there? (set --url or INCMAN_URL)") from exc
    except requests.Timeout as exc:
        raise SendError(f"{endpoint} did not answer in {timeout}s") from exc
    except requests.RequestException as exc:
        raise SendError(f"cannot send to {endpoint}: {exc}") from exc
    if resp.status_code >= 400:
        raise SendError(_reason(resp))
    try:
        answer = resp.json()
    except ValueError as exc:
        raise SendError(f"HTTP {resp.status_code}: the answer is not JSON") from exc
    if not isinstance(answer, dict) or "eventId" not in answer:
        raise SendError(f"HTTP {resp.status_code}: unexpected answer {resp.text[:200]!r}")
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
        answer = post_event(args.url or default_url(), args.api_key, event, args.timeout)
    except SendError as exc:
        print(f"incman send-event: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2) if args.json else describe(answer))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("send-event", help="send one event (zensendevent's options)",
                       description="Send one event to incman over its HTTP API. The option "
                                   "letters are zensendevent's, so existing scripts work.")
    p.add_argument("summary", nargs="+", help="the summary (words are joined by spaces)")
    p.add_argument("-d", "--device", help="device (required by the API)")
    p.add_argument("-p", "--component", help="component")
    p.add_argument("-c", "--eventClass", dest="event_class", help="event class, e.g. /Perf/Disk")
    p.add_argument("-y", "--eventKey", dest="event_key", help="event key")
    p.add_argument("-k", "--eventClassKey", dest="event_class_key", help="event class key")
    p.add_argument("-s", "--severity", default=DEFAULT_SEVERITY,
                   help="0-5 or Clear, Debug, Info, Warning, Error, Critical (default Warning)")
    p.add_argument("-o", "--other", action="append", type=_field_value, default=[],
                   metavar="FIELD=VALUE",
                   help="set an event field (repeatable); unknown names go into details")
    p.add_argument("--url", help="incman's address (INCMAN_URL, else "
                                 "http://INCMAN_API_HOST:INCMAN_API_PORT)")
    p.add_argument("--api-key", default=os.environ.get("INCMAN_API_KEY", ""),
                   help="API key with the ingest role (INCMAN_API_KEY)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    p.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    p.set_defaults(func=cmd_send_event)
