"""Errors that name the offending field and value, raised before any expensive work."""

from __future__ import annotations

import re


class ConfigError(ValueError):
    """Bad user input: a config value, a search space entry, a data file, a model path.

    ``source`` is the file (or ``--set``/``config``) the value came from, ``field`` its name.
    ``str(err)`` is the one-line message printed as ``error: <source>: <field>: <what>``.
    """

    def __init__(self, field: str, message: str, source: str = "config") -> None:
        self.field = one_line(field)
        self.message = one_line(message)
        self.source = one_line(source)
        super().__init__(f"{self.source}: {self.field}: {self.message}")


#: characters that end a line for ``str.splitlines`` or drive a terminal
_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: object) -> str:
    """``text`` on one line: line breaks become spaces and other control characters ``\\xNN``,
    so a hostile file name, YAML key or parser message cannot add lines to an error."""
    return _BREAKS.sub(lambda m: " " if m.group() in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
                       else f"\\x{ord(m.group()):02x}", str(text))


class Interrupted(RuntimeError):
    """A study's (or a confirmation's) Tune run stopped before its trials ended: Ctrl+C
    (SIGINT) or SIGUSR1, which Tune catches, snapshots the experiment on and returns from
    ``fit()`` as if it had finished. ``str(err)`` is the one line the command prints; the
    command then exits 130 without the post-study steps (``--resume`` does them)."""


class MetricError(RuntimeError):
    """A metric could not be computed. Callers record NaN plus this reason, never 0.0."""
