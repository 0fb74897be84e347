"""Subcommands of `incman`: each module has `register(subparsers)`."""


class CliError(Exception):
    """An operation failed (unreachable service, refused request): exit status 1."""

    status = 1


class UsageError(CliError):
    """The command line or the settings it reads are wrong: exit status 2."""

    status = 2


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
    "incman.commands.config_check",
]
