"""Reading untrusted input (search spaces, ``--set`` values, data files, study records) with
bounded time and memory, and every problem as one ``ConfigError`` line.

The rules every reader here follows, so that no input can hang, exhaust memory or end in a
traceback:

* a path is expanded (``~``, ``~user``) and checked (no NUL byte, no file name over 255
  bytes, no path over 4095) before the file system is asked anything (``expand_path``);
* a file is ``stat``-ed and must be a regular file: a folder, a device (``/dev/zero``,
  ``/dev/urandom``), a FIFO or a socket is refused before it is opened, and it is opened with
  ``O_NONBLOCK`` and checked again on the open descriptor, so a FIFO swapped in between
  cannot block (``regular_file``, ``read_bytes``);
* a whole-file read is capped (``max_bytes``), and gzip/zip/bzip2/xz/zstd data is recognised
  by its magic bytes and refused by name instead of being parsed as text (``compressed``);
* YAML goes through :class:`StrictLoader`: aliases are refused (no alias bombs), nesting is
  capped at :data:`MAX_YAML_DEPTH`, and a key given twice in one mapping is refused with its
  path and both line numbers (``load_yaml``); every parser failure, ``ValueError`` from a
  4,300-digit integer included, is one ``(yaml)`` line.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from polychromic.core.errors import ConfigError

#: the largest search space file read (a space is a few kB; this bounds time and memory)
MAX_SPACE_BYTES = 1 << 20
#: the largest JSON record of a study (config.json, result.json, status.json, study.json)
MAX_RECORD_BYTES = 64 << 20
#: YAML nesting deeper than this is refused (a space needs 4 levels)
MAX_YAML_DEPTH = 32
NAME_MAX = 255
PATH_MAX = 4095
#: magic bytes → the compression or archive format they start
MAGIC = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"),
         (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


def expand_path(text: Any, field: str, source: str) -> Path:
    """``text`` as a path with ``~``/``~user`` expanded; ``ConfigError`` for a NUL byte, an
    unknown user, a file name longer than 255 bytes or a path longer than 4095 (which the OS
    would refuse with ENAMETOOLONG in the middle of some later call)."""
    text = str(text)
    if "\0" in text:
        raise ConfigError(field, "the path contains a NUL byte", source)
    if not text.strip():
        raise ConfigError(field, "empty path", source)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user of an unknown user, or no home folder
        raise ConfigError(field, f"cannot expand {text.split('/')[0]!r}: no such user or home "
                          "folder", source) from None
    raw = os.fsencode(str(path))
    if len(raw) > PATH_MAX:
        raise ConfigError(field, f"path is {len(raw)} bytes long (the limit is {PATH_MAX})",
                          source)
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ConfigError(field, f"a file name in the path is {len(os.fsencode(part))} bytes "
                              f"long (the limit is {NAME_MAX}): {part[:40]}…", source)
    return path


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path: Path, field: str, source: str) -> os.stat_result:
    """``stat`` of ``path`` (following links), which must be an existing regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(field, "file not found", source) from None
    except NotADirectoryError:
        raise ConfigError(field, "file not found (a parent is not a folder)", source) from None
    except (OSError, ValueError) as err:
        raise ConfigError(field, f"cannot read: {getattr(err, 'strerror', None) or err}",
                          source) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(field, f"is {file_kind(st.st_mode)}, not a file", source)
    return st


def read_bytes(path: Path, field: str, source: str, max_bytes: int) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` bytes (see the module rules)."""
    st = regular_file(path, field, source)
    if st.st_size > max_bytes:
        raise ConfigError(field, f"file is {st.st_size:,} bytes (the limit is {max_bytes:,})",
                          source)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise ConfigError(field, f"cannot read: {err.strerror or err}", source) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO or device meanwhile
            raise ConfigError(field, f"is {file_kind(os.fstat(fd).st_mode)}, not a file", source)
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise ConfigError(field, f"cannot read: {err.strerror or err}", source) from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ConfigError(field, f"file is larger than {max_bytes:,} bytes", source)
    return b"".join(chunks)


def compressed(head: bytes) -> str | None:
    """The compression/archive format ``head`` starts with (gzip, zip, …), else None."""
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def decode_text(data: bytes, field: str, source: str) -> str:
    """UTF-8 text of ``data``; compressed or non-UTF-8 data is refused naming where."""
    kind = compressed(data)
    if kind:
        raise ConfigError(field, f"is {kind}-compressed data, not text (decompress it first)",
                          source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(field, f"not UTF-8 text (byte 0x{data[err.start]:02x} at line {line})",
                          source) from None


def read_text(path: Path, field: str, source: str, max_bytes: int) -> str:
    """A small text file (a search space, a JSON record), bounded and checked."""
    return decode_text(read_bytes(path, field, source, max_bytes), field, source)


# --- YAML ----------------------------------------------------------------------------------------


class _Refused(Exception):
    """A YAML document the strict loader refuses: ``field`` (a key path) and why."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field, self.why = field, why


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases (``*name``: a few lines can expand to gigabytes)
    and with nesting capped at :data:`MAX_YAML_DEPTH` (deeper documents would exhaust the
    recursion limit). Duplicate keys are found by :func:`load_yaml` on the composed tree."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused("(yaml)", f"line {event.start_mark.line + 1}: aliases (*{event.anchor}) "
                           "are not allowed; write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused("(yaml)", f"line {mark.line + 1}: nested more than "
                               f"{MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _key_text(node: Any) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"


def _check_keys(node: Any, path: str) -> None:
    """Refuse a key given twice in one mapping, naming its path and both lines."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                raise _Refused(f"{path or '(top level)'}", f"line {key.start_mark.line + 1}: "
                               "merge keys (<<) are not allowed; write the keys out")
            name = _key_text(key)
            where = f"{path}.{name}" if path else name
            if name in seen:
                raise _Refused(where, f"duplicate key at line {key.start_mark.line + 1} (first "
                               f"given at line {seen[name]}); give each key once")
            seen[name] = key.start_mark.line + 1
            _check_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, f"{path}[{i}]")


def load_yaml(text: str, source: str, field: str = "(yaml)") -> Any:
    """Parse one YAML document strictly (see :class:`StrictLoader`); ``ConfigError`` naming
    ``field`` (or the duplicated key's path) for anything it refuses or cannot parse, and
    ``(file)`` for text YAML's reader refuses (a NUL byte, other control characters). Every
    exception the YAML library raises, from building the loader (its reader checks the whole
    text there) to constructing the values, is one such line, never a traceback."""
    loader = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_keys(node, "" if field == "(yaml)" else field)
        return loader.construct_document(node)
    except _Refused as err:
        raise ConfigError(err.field if err.field != "(yaml)" else field, err.why,
                          source) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow in a stream
        line = text.count("\n", 0, err.position) + 1 if isinstance(err.position, int) else 0
        where = f" at line {line}" if line else ""
        char = (f"character {chr(err.character)!r}" if isinstance(err.character, int)
                else "a character")
        raise ConfigError("(file)", f"not a YAML text file: {char}{where} is not allowed in "
                          "YAML", source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None)
        raise ConfigError(field, f"not valid YAML{where}" + (f": {problem}" if problem else ""),
                          source) from None
    except Exception as err:  # noqa: BLE001 — the class: whatever else the library raises
        raise ConfigError(field, f"cannot read the YAML: {type(err).__name__}: "
                          f"{str(err)[:200]}", source) from None
    finally:
        if loader is not None:
            loader.dispose()


_SAFE_NAME = re.compile(r"^[^/\\\0]+$")


def check_name(name: Any, field: str, source: str) -> str:
    """A study name: one folder name (no ``/``, not ``.``/``..``, not empty, ≤ 255 bytes)."""
    text = str(name)
    if not text.strip():
        raise ConfigError(field, "empty study name", source)
    if text in (".", "..") or not _SAFE_NAME.match(text) or text != text.strip():
        raise ConfigError(field, f"{text[:80]!r} is not a plain folder name (no '/', '\\', "
                          "'.', '..' or surrounding spaces)", source)
    if len(os.fsencode(text)) > NAME_MAX:
        raise ConfigError(field, f"name is {len(os.fsencode(text))} bytes long (the limit is "
                          f"{NAME_MAX})", source)
    return text
