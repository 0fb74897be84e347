"""`incman config check [FILE]`: the configuration file checked against the one schema.

The schema is incman.store.config_schema's; every problem is said at once, and the exit status
is 2 when there is any."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from incman.commands import UsageError
from incman.settings import get_settings


def _read(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from exc


def _counts(doc: dict[str, Any]) -> str:
    parts = []
    for section in ("triggers", "notifications", "devices", "users"):
        n = len(doc.get(section) or [])
        if n:
            parts.append(f"{n} {section if n != 1 else section[:-1]}")
    return ", ".join(parts) or "no triggers or notifications"


def cmd_check(args: argparse.Namespace) -> int:
    from incman.store.catalog import CatalogError, parse_catalog
    from incman.store.config_schema import describe, file_problems

    path = args.file or get_settings().config_path
    if not path:
        raise UsageError("name the file: incman config check FILE (or set INCMAN_CONFIG)")
    doc = _read(path)
    problems = file_problems(doc)
    if not problems:
        try:  # what the service does with it: a problem the schema missed shows here too
            parse_catalog(doc)
        except CatalogError as exc:
            problems = exc.problems
    if args.json:
        print(json.dumps({"file": path, "valid": not problems, "problems": _listed(problems)}))
    elif problems:
        print(f"{path}: {describe(problems)}", file=sys.stderr)
    else:
        print(f"{path}: valid ({_counts(doc)})")
    return 2 if problems else 0


def _listed(problems: list[Any]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems]


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="check the configuration file")
    config.set_defaults(uses=())
    actions = config.add_subparsers(dest="config_command", required=True)
    check = actions.add_parser(
        "check", help="every problem of a configuration file at once (exit status 2 if any)"
    )
    check.add_argument("file", nargs="?", help="the YAML file (default: INCMAN_CONFIG)")
    check.add_argument("--json", action="store_true", help="the result as one JSON object")
    check.set_defaults(func=cmd_check)
