"""Command line: ``python -m fastnn demo`` and ``python -m fastnn bench``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

COMMANDS = {
    "demo": "train the primer's XOR network and show the result",
    "bench": "time fastnn against NumPy, PyTorch and JAX on the same work",
}


def usage(file: TextIO | None = None) -> None:
    """Print the commands and what they do."""
    print("usage: python -m fastnn {demo,bench} [options]\n", file=file)
    for name, text in COMMANDS.items():
        print(f"  {name:<6} {text}", file=file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        usage(file=None if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"python -m fastnn: unknown command '{argv[0]}'\n", file=sys.stderr)
        usage(file=sys.stderr)
        return 2
    if argv[0] == "demo":
        from .demo import main as command
    else:
        from .bench import main as command
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
