"""A search space file as saved: the one bounded, strict read of a space file, and the lenient
reading of it that a review needs (its description and objectives, nothing validated), so that
a study can be reviewed on a machine without its model, task or data, and without importing the
schema validator (``polychromic.tuning.space``) or anything heavy behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from polychromic.core.inputs import MAX_SPACE_BYTES, expand_path, load_yaml, read_text
from polychromic.store import layout

#: the shipped search spaces (``--space NAME``)
SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"


def read_space_yaml(path: Path) -> Any:
    """A space file's YAML document, read bounded and parsed strictly (see ``polychromic.tuning.space.load_space``);
    ``ConfigError`` naming the file. The one reading of a space file, strict or lenient."""
    return load_yaml(read_text(path, "(file)", str(path), MAX_SPACE_BYTES), str(path))



@dataclass(frozen=True)
class SavedSpace:
    """A space file as written, read leniently: nothing is validated (no TrialConfig, no model,
    task or data file, no network), so a study copied to a machine without its model or data
    can still be reviewed, and a shipped file that no longer validates still lists."""

    #: ``description:`` on one line ('' when absent or the document is not a mapping)
    description: str
    #: the ``(metric, mode)`` pairs; None unless ``objectives:`` is a non-empty list of
    #: ``{metric, mode}`` mappings whose modes are all min or max
    objectives: list[tuple[str, str]] | None


def read_saved_space(path: Any) -> SavedSpace | None:
    """The space file at ``path`` (as ``study.json`` names it, or a shipped file), or None when
    it cannot be read or parsed. The read is bounded and strict (``load_space``'s): a
    ``study.json`` may name a FIFO, a device or an alias bomb."""
    try:
        raw = read_space_yaml(expand_path(path, "space", layout.STUDY_FILE))
    except (OSError, yaml.YAMLError, TypeError, ValueError):  # ConfigError is a ValueError
        return None
    if not isinstance(raw, dict):
        return SavedSpace("", None)
    return SavedSpace(" ".join(str(raw.get("description", "")).split()),
                      _saved_objectives(raw.get("objectives")))


def _saved_objectives(value: Any) -> list[tuple[str, str]] | None:
    """``objectives:`` as written, as ``(metric, mode)`` pairs (see ``SavedSpace``)."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(o, dict) and "metric" in o and "mode" in o for o in value):
        return None
    objectives = [(str(o["metric"]), str(o["mode"])) for o in value]
    return objectives if all(mode in ("min", "max") for _, mode in objectives) else None


def shipped_spaces() -> dict[str, str]:
    """Shipped space names → their one-line descriptions."""
    out = {}
    for path in sorted(SPACES_DIR.glob("*.yaml")):
        saved = read_saved_space(path)
        out[path.stem] = "(unreadable)" if saved is None else saved.description
    return out
