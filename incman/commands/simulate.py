"""`incman simulate <system>`: run a remote-system simulator to try a configuration."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from incman.commands import CliError, UsageError
from incman.testing.registry import SIMULATORS, make_simulator, simulator_options


def _options(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set wants KEY=VALUE, not {pair!r}")
        out[key.strip()] = value
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    from incman.testing.simbase import SimServer

    if args.options:
        for key, default in simulator_options(args.system).items():
            print(f"{key}={default!r}")
        return 0
    try:
        app = make_simulator(args.system, _options(args.set or []))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        server = SimServer(app, host=args.host, port=args.port, verbose=args.verbose)
    except OSError as exc:  # the port is taken, ...
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    print(app.describe())
    print(
        f'  faults: curl -X POST {server.url}/_sim/faults -d \'{{"mode": "429", '
        f'"count": 5, "retry_after": 1}}\''
    )
    print(f"  records: curl {server.url}/_sim/state   (Ctrl-C stops)")
    if args.host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        # The egress policy refuses loopback: say how to let incman reach this simulator.
        print("  incman reaches it on loopback with INCMAN_EGRESS_ALLOW=127.0.0.1")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    cmd = sub.add_parser("simulate", help="run a simulator of a remote system (for trials)")
    cmd.add_argument("system", choices=sorted(SIMULATORS), help="the system to simulate")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=8081, help="port (0: any free port)")
    cmd.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a simulator option (see --options), repeatable",
    )
    cmd.add_argument("--options", action="store_true", help="list the simulator's options")
    cmd.add_argument("--verbose", action="store_true", help="log every request")
    cmd.set_defaults(func=cmd_simulate)
