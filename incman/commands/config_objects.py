"""`incman trigger|notification list|show|apply|delete`: configuration objects over the API.

Talks to a running API (found as incman.commands.locate says) with a manager key
(`--api-key`, env INCMAN_API_KEY). `apply -f FILE` takes YAML or JSON: one object, a list,
or a mapping with `triggers:` / `notifications:` lists as in the configuration file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import requests
import yaml

from incman.commands import CliError, UsageError
from incman.commands.api_client import call, reason

KINDS = {"trigger": "triggers", "notification": "notifications"}
_VIEW_ONLY = ("source", "readOnly")


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> requests.Response:
    return call(method, path, url=args.url, key=args.api_key or None, body=body)


def load_objects(path: str, kind: str) -> list[dict[str, Any]]:
    """The objects of a YAML/JSON file: one, a list, or the configuration file's shape."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is neither YAML nor JSON: {exc}") from exc
    if isinstance(doc, dict) and KINDS[kind] in doc:
        doc = doc[KINDS[kind]]
    objects = doc if isinstance(doc, list) else [doc]
    for index, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
            raise UsageError(f"{path}: object {index} is not a mapping with an id")
    return [{k: v for k, v in obj.items() if k not in _VIEW_ONLY} for obj in objects]


def cmd_list(args: argparse.Namespace) -> int:
    resp = _call(args, "GET", f"/api/v1/{KINDS[args.kind]}")
    if not resp.ok:
        raise CliError(reason(resp))
    for item in resp.json()["items"]:
        extra = f"  {item['integration']}" if "integration" in item else ""
        state = "enabled" if item.get("enabled", True) else "disabled"
        print(f"{item['id']}{extra}  {state}  {'file' if item.get('readOnly') else 'api'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    resp = _call(args, "GET", f"/api/v1/{KINDS[args.kind]}/{args.id}")
    if not resp.ok:
        raise CliError(reason(resp))
    print(yaml.safe_dump(resp.json(), sort_keys=False).rstrip())
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    failed = 0
    for obj in load_objects(args.file, args.kind):
        resp = _call(args, "PUT", f"/api/v1/{KINDS[args.kind]}/{obj['id']}", obj)
        if resp.status_code in (200, 201):
            print(f"{args.kind} {obj['id']}: {'created' if resp.status_code == 201 else 'updated'}")
        else:
            failed += 1
            print(f"{args.kind} {obj['id']}: {reason(resp)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_delete(args: argparse.Namespace) -> int:
    resp = _call(args, "DELETE", f"/api/v1/{KINDS[args.kind]}/{args.id}")
    if resp.status_code != 204:
        raise CliError(reason(resp))
    print(f"{args.kind} {args.id}: deleted")
    return 0


def register(sub: Any) -> None:
    for kind in KINDS:
        parser = sub.add_parser(kind, help=f"{kind}s over the API (list, show, apply, delete)")
        parser.set_defaults(kind=kind, uses=("url", "api_key", "data_dir"))
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help=f"every {kind}").set_defaults(func=cmd_list)
        show = actions.add_parser("show", help=f"one {kind} (secrets masked)")
        show.add_argument("id")
        show.set_defaults(func=cmd_show)
        apply = actions.add_parser("apply", help=f"create or replace {kind}s from a file")
        apply.add_argument("-f", "--file", required=True, help="YAML or JSON")
        apply.set_defaults(func=cmd_apply)
        delete = actions.add_parser("delete", help=f"delete a {kind} created over the API")
        delete.add_argument("id")
        delete.set_defaults(func=cmd_delete)
