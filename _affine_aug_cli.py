"""The ``affine-aug`` command's entry point, outside the package on purpose: it makes Ctrl-C
quiet (one line, exit 130) before the library's imports start, which take a few tenths
of a second. ``affine_aug.cli.main`` keeps the same handler to the command's end."""

import os
import signal
import sys


def _interrupted(signum, frame) -> None:
    os.write(2, b"\naffine-aug: interrupted; no output was marked complete (rerun to resume)\n")
    os._exit(130)


def main() -> int:
    signal.signal(signal.SIGINT, _interrupted)
    from affine_aug.cli import main as command

    return command()


if __name__ == "__main__":
    sys.exit(main())
