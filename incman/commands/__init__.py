"""Subcommands of `incman`: each module has `register(subparsers)`."""

# Each entry is a module with `register(sub: argparse._SubParsersAction) -> None`.
COMMAND_MODULES = [
    "incman.commands.serve",
    "incman.commands.db",
]
