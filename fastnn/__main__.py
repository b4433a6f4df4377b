"""Command line: ``python -m fastnn demo`` and ``python -m fastnn bench``."""

import sys

COMMANDS = {
    "demo": "train the primer's XOR network and show the result",
    "bench": "time fastnn against NumPy, PyTorch and JAX on the same work",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m fastnn {demo,bench} [options]\n")
        for name, text in COMMANDS.items():
            print(f"  {name:<6} {text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "demo":
        from .demo import main as command
    else:
        from .bench import main as command
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
