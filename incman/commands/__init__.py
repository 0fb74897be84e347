"""Subcommands of `incman`: each module has `register(subparsers)`."""


class CliError(Exception):
    """A message for the user; the command exits with status 2."""


# Each entry is a module with `register(sub: argparse._SubParsersAction) -> None`.
COMMAND_MODULES = [
    "incman.commands.serve",
    "incman.commands.simulate",
    "incman.commands.db",
    "incman.commands.config_objects",
    "incman.commands.incident",
    "incman.commands.run",
    "incman.commands.flower",
    "incman.commands.send_event",
    "incman.commands.dead_letter",
    "incman.commands.secrets",
]
