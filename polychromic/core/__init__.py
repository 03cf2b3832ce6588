"""The ground floor: names, configuration and bounded input reading that every layer uses.

``config`` (one trial's knobs), ``columns`` (every metric's name, definition and direction),
``errors`` (``ConfigError``: one ``error: <file>: <field>: <what>`` line), ``inputs`` (bounded,
untrusted reads), ``cli``, ``embedded`` (the shipped model/encoder/data), ``jsonutil``, ``faults``.
Imports nothing from the rest of ``polychromic``.
"""
