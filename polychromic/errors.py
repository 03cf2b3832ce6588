"""Errors that name the offending field and value, raised before any expensive work."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: a config value, a search space entry, a data file, a model path.

    ``source`` is the file (or ``--set``/``config``) the value came from, ``field`` its name.
    ``str(err)`` is the one-line message printed as ``error: <source>: <field>: <what>``.
    """

    def __init__(self, field: str, message: str, source: str = "config") -> None:
        self.field = field
        self.message = message
        self.source = source
        super().__init__(f"{source}: {field}: {message}")


class MetricError(RuntimeError):
    """A metric could not be computed. Callers record NaN plus this reason, never 0.0."""
