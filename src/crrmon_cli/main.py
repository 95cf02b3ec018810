"""Entry point of the `crrmon` command."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("crrmon: no commands yet", file=sys.stderr)
    return 2
