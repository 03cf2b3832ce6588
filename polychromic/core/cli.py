"""Command-line plumbing shared by the ``study/`` scripts: argparse whose usage errors are the
project's one line ``error: command line: arguments: <what>`` with exit status 2 (argparse's
own is a usage block plus a line), and a ``main(argv)`` that returns that status instead of
raising ``SystemExit``, so tests can call each script's ``main`` in-process."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from polychromic.core.errors import one_line

COMMAND_LINE = "command line"


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:

        print(f"error: {COMMAND_LINE}: arguments: {one_line(message)} (see --help)",
              file=sys.stderr)
        sys.exit(2)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit status when argparse exits (2 for a bad
    argument, 0 for ``--help``)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 2
