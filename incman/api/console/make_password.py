"""`python -m incman.api.console.make_password`: print the hash of a console password.

It reads a password (twice, not echoed; or one line from a pipe) and prints the
`password_hash` to put in the configuration's `users:`."""

from __future__ import annotations

import getpass
import sys

from incman.api.console.passwords import hash_password


def main() -> int:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            print("the two passwords differ", file=sys.stderr)
            return 2
    else:
        first = sys.stdin.readline().rstrip("\n")
    if len(first) < 8:
        print("a password of at least 8 characters is required", file=sys.stderr)
        return 2
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
