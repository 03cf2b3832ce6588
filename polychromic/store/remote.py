"""Where a study's files live when ``--storage-path`` is a URI (``s3://``, ``gs://``,
``file://``) rather than a folder every node mounts.

Split of a URI study (docs/cluster.md, "Multi-node"):

* ``<uri>/<study>/tune`` and ``<uri>/<study>/trials/<id>/train``: written by Ray Tune and Ray
  Train directly (experiment snapshots, checkpoints), so every node reads them.
* ``<local_dir>/<study>``: the records (study.json, optuna.db, config/result/history/status,
  generations, leaderboard), written with ordinary file calls on the head, where the Tune
  driver and the trial drivers run; mirrored to ``<uri>/<study>`` as trials end and when the
  study ends, and fetched back by ``--resume`` on a head that does not have them.

Everything here takes plain strings (a ``Path`` would turn ``s3://b`` into ``s3:/b``), and
the readers take a local path as well as a URI, so callers need not tell them apart.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from polychromic.core.cli import COMMAND_LINE
from polychromic.core.errors import ConfigError
from polychromic.store.layout import is_record, study_dir

#: ``scheme://…`` (a Windows drive letter ``C:\\`` has no ``//``)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(path: str | Path) -> bool:
    return bool(_URI.match(str(path)))


def join(base: str, *parts: str) -> str:
    """``base/part/…`` for a URI or a local path."""
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])


def _fs(uri: str) -> tuple[object, str]:
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(uri)


def with_scheme(storage_uri: str | None, fs_path: str) -> str:
    """A path that Ray returned without its scheme (``result.checkpoint.path``) as a URI when
    the study's ``storage_uri`` is one; unchanged otherwise."""
    if storage_uri is None or not is_uri(storage_uri) or is_uri(fs_path):
        return fs_path
    return storage_uri.split("://", 1)[0] + "://" + fs_path  # file:// + /abs is file:///abs


def exists(uri: str) -> bool:
    if not is_uri(uri):
        return os.path.exists(uri)
    import pyarrow.fs as pafs

    fs, path = _fs(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound  # type: ignore[attr-defined]


def list_dir(uri: str) -> list[str]:
    """Names of the entries directly under ``uri`` (empty when it does not exist)."""
    if not is_uri(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    import pyarrow.fs as pafs

    fs, path = _fs(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))  # type: ignore[attr-defined]
    return sorted(info.base_name for info in infos)


def read_text(uri: str) -> str | None:
    """A text file at a URI or a local path, or None when it does not exist."""
    if not is_uri(uri):
        try:
            return Path(uri).read_text()
        except FileNotFoundError:
            return None
    fs, path = _fs(uri)
    try:
        with fs.open_input_stream(path) as f:  # type: ignore[attr-defined]
            return f.read().decode()
    except FileNotFoundError:
        return None


def download(uri: str, dest: Path | None = None) -> Path:
    """A local copy of the folder at ``uri`` (a fresh temp folder unless ``dest``); a local
    path is returned as it is."""
    if not is_uri(uri):
        return Path(uri)
    import pyarrow.fs as pafs

    dest = Path(dest or tempfile.mkdtemp(prefix="polychromic-"))
    dest.mkdir(parents=True, exist_ok=True)
    fs, path = _fs(uri)
    pafs.copy_files(path, str(dest), source_filesystem=fs,
                    destination_filesystem=pafs.LocalFileSystem())
    return dest


def upload_records(local_root: Path, uri: str,
                   seen: dict[str, tuple[int, int]] | None = None) -> None:
    """Mirror the study's record files (not Ray's ``tune/`` and ``train/`` folders, which
    are already at the URI) to ``uri``. With ``seen`` (updated in place), files whose size and
    mtime have not changed since the last call are not sent again."""
    import pyarrow.fs as pafs

    fs, base = _fs(uri)
    local = pafs.LocalFileSystem()
    for file in sorted(Path(local_root).rglob("*")):
        rel = file.relative_to(local_root)
        if not file.is_file() or not is_record(rel.parts):
            continue
        stat = file.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if seen is not None:
            if seen.get(str(rel)) == stamp:
                continue
            seen[str(rel)] = stamp
        target = join(base, *rel.parts)
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)  # type: ignore[attr-defined]
        pafs.copy_files(str(file), target, source_filesystem=local, destination_filesystem=fs)


def fetch_records(uri: str, local_root: Path) -> None:
    """The reverse of ``upload_records`` for a head that lost (or never had) the records."""
    import pyarrow.fs as pafs

    fs, base = _fs(uri)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))  # type: ignore[attr-defined]
    for info in infos:
        rel = info.path[len(base.rstrip("/")) + 1:]
        parts = rel.split("/")
        if info.type != pafs.FileType.File or not is_record(parts):
            continue
        target = Path(local_root, *parts)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(info.path, str(target), source_filesystem=fs,
                        destination_filesystem=pafs.LocalFileSystem())


def study_locations(storage_path: str | Path, local_dir: str | Path,
                    study_name: str) -> tuple[Path, str | None]:
    """``(local study folder, study URI or None)``. A URI ``--storage-path`` keeps the records
    in ``<local_dir>/<study>`` on the head and Ray's files at ``<uri>/<study>``; the local
    folder is ``polychromic.store.layout.study_dir``."""
    if is_uri(storage_path):
        return study_dir(local_dir, study_name), join(str(storage_path), study_name)
    return study_dir(storage_path, study_name), None


def reachable(uri: str) -> None:
    """Refuse a URI that cannot be listed (unknown scheme, no credentials, no bucket) before
    Ray starts."""

    try:
        list_dir(uri)
    except (OSError, ValueError, ImportError) as err:
        raise ConfigError("--storage-path", f"cannot use {uri}: {err}", COMMAND_LINE) from None
