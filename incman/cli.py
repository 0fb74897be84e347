"""incman: events in, incidents out. The `incman` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from incman.commands import COMMAND_MODULES, CliError, UsageError

# Options every command takes, before or after its name: `incman --url X trigger list` and
# `incman trigger list --url X` are the same. A command lists the ones it uses in `uses`.
GLOBAL_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--url", "URL", "incman's base URL (INCMAN_URL; else the `incman run` of the data folder)"),
    ("--api-key", "KEY", "API key (INCMAN_API_KEY)"),
    (
        "--data-dir",
        "DIR",
        "data folder of `incman run` (INCMAN_DATA_DIR; else ./incman-data, "
        "looked for in the current folder and above it)",
    ),
)
GLOBAL_DESTS = ("url", "api_key", "data_dir")


class Parser(argparse.ArgumentParser):
    """A parser that takes the global options at every level (their defaults are left out,
    so a value given at one level is not reset by another)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        group = self.add_argument_group("global options (any position)")
        for flag, metavar, text in GLOBAL_OPTIONS:
            group.add_argument(flag, metavar=metavar, help=text, default=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="incman", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _check_globals(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every global option the command does not use is a usage error; the others default
    to None."""
    uses = getattr(args, "uses", ())
    for dest in GLOBAL_DESTS:
        if dest in vars(args) and dest not in uses:
            flag = "--" + dest.replace("_", "-")
            parser.error(f"{args.command} does not take {flag}")
        vars(args).setdefault(dest, None)


def main(argv: list[str] | None = None) -> int:
    from incman.commands.locate import apply_data_dir
    from incman.settings import get_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    _check_globals(parser, args)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        apply_data_dir(args.data_dir)
        try:
            get_settings()
        except ValueError as exc:  # a setting that is not a number, ...
            raise UsageError(str(exc)) from exc
        return func(args)
    except CliError as exc:
        print(f"incman: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
