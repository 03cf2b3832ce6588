"""Which paths a command may write: an output file that would damage the study, or a folder an
export must never replace, is refused in one ``ConfigError`` line before anything is written.

These rules know the study folder's layout (``trials/``, ``tune/``), so they live in the store
layer rather than beside the generic readers of ``polychromic.core.inputs``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.errors import ConfigError
from polychromic.core.inputs import expand_path, file_kind
from polychromic.store import layout


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or inside it (both already resolved)."""
    return path == folder or folder in path.parents


def output_file(text: Any, option: str, study: Path, source: str = COMMAND_LINE) -> Path:
    """The file an option writes (``-o``, ``--html``), refused in one line when writing it
    would fail late or damage the study: a folder, an existing FIFO/device/socket (other
    than ``/dev/null``: a write could block), an existing file of the study folder
    (``leaderboard.parquet``, a trial's ``result.json``: links resolved), or any path under
    the study's ``trials/`` or ``tune/``."""
    path = expand_path(text, option, source)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise ConfigError(option, f"cannot write {text}: {err.strerror or err}", source) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ConfigError(option, f"{text} is a folder; give a file name", source)
    if (st is not None and not stat.S_ISREG(st.st_mode)
            and os.path.realpath(path) != os.devnull):
        raise ConfigError(option, f"{text} is {file_kind(st.st_mode)}, not a file", source)
    resolved, root = path.resolve(), Path(study).resolve()
    if _within(resolved, root):
        inner = resolved.relative_to(root).parts
        if st is not None or (inner and inner[0] in (layout.TRIALS, layout.TUNE)):
            raise ConfigError(option, f"refusing to write {text}: it is "
                              f"{'a file' if st is not None else 'a path'} of the study "
                              f"{root} (write it elsewhere)", source)
    return path


def protected_folders(study: Path, storage: Any = None) -> list[Path]:
    """Folders an export must never replace nor be written into: the study (and anything in
    it), the storage root holding it, the working directory, the home folder and ``/``."""
    out = [Path(study), Path(study).parent, Path.cwd(), Path.home(), Path("/")]
    if storage is not None and str(storage).strip():
        with contextlib.suppress(RuntimeError, ValueError):  # ~user unknown, a NUL byte
            out.append(Path(str(storage)).expanduser())
    return [p.resolve() for p in out]
