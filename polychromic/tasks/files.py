"""Reading the user's data files (JSONL, Parquet, CSV) as a stream of rows.

Files may be larger than memory: Parquet is read in record batches of the requested columns
(``ParquetFile.iter_batches``), CSV with pyarrow's streaming reader (block by block, only the
requested columns, every value as text), JSONL line by line. Nothing here keeps more than one
batch; callers decide what to materialize.

Problems with the file as a whole (missing file, unknown extension, unreadable, empty, a missing
field) raise ``ConfigError`` naming the file. Problems with one row (invalid JSON, a missing
value) are reported on the ``Row`` so the caller can refuse or skip it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polychromic.core.errors import ConfigError
from polychromic.core.inputs import compressed, regular_file

#: File extension → format.
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
           ".csv": "csv"}
BATCH_ROWS = 4096
_CSV_BLOCK = 1 << 20
_CSV_MAX_BLOCK = 1 << 30
#: the longest JSONL line read (longer ones are a bad row; memory stays bounded)
MAX_LINE_BYTES = 64 << 20

MISSING = object()
"""Value of a requested field that a (JSONL) row does not have."""


@dataclass
class Row:
    """One record: ``number`` counts data records from 1 (no CSV header, no blank JSONL lines),
    ``line`` is the JSONL line number, ``problem`` says why the record is unusable as a whole."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    problem: str | None = None

    @property
    def where(self) -> str:
        """``row 7`` or, for JSONL when it differs, ``row 7 (line 9)``."""
        if self.line is not None and self.line != self.number:
            return f"row {self.number} (line {self.line})"
        return f"row {self.number}"


def data_format(path: Path, key: str = "data") -> str:
    """The format of ``path`` from its extension; ``ConfigError`` if missing or unknown."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(key, f"unknown data format {path.suffix or '(no extension)'!r} "
                          f"(use one of {known})", str(path))
    regular_file(path, key, str(path))  # not a folder, device, FIFO or socket
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as err:
        raise ConfigError(key, f"cannot read: {err.strerror or err}", str(path)) from None
    kind = compressed(head)
    if kind:
        raise ConfigError(key, f"is {kind}-compressed, not a plain {fmt} file (decompress it "
                          "first)", str(path))
    return fmt


def field_names(path: Path, key: str = "data") -> list[str]:
    """Field names in the file (JSONL: the keys of its first record). ``ConfigError`` when the
    file holds no rows or cannot be read."""
    fmt = data_format(path, key)
    if fmt == "parquet":
        pf = _parquet(path, key)
        if pf.metadata.num_rows == 0:
            raise ConfigError(key, "empty file (no rows)", str(path))
        return list(pf.schema_arrow.names)
    if fmt == "csv":
        import pyarrow as pa

        reader = _csv_reader(path, key, None, _CSV_BLOCK)
        names = list(reader.schema.names)
        try:
            if not any(batch.num_rows for batch in _first(reader)):
                raise ConfigError(key, "empty file (no rows)", str(path))
        except pa.ArrowException as e:
            raise ConfigError(key, f"not a readable CSV file ({e})", str(path)) from None
        return names
    first = None
    for row in _jsonl_rows(path, None):
        if row.problem is None:
            return list(row.values)
        first = first or f"{row.where}: {row.problem}"
    raise ConfigError(key, "empty file (no rows)" if not _has_content(path)
                      else f"no line holds a JSON object (first: {first})", str(path))


def text_columns(path: Path, names: list[str]) -> dict[str, str]:
    """For Parquet: requested columns whose type is not text, with the type (else ``{}``)."""
    if data_format(path) != "parquet":
        return {}
    import pyarrow as pa

    schema = _parquet(path, "data").schema_arrow
    out = {}
    for name in names:
        t = schema.field(name).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)
                or getattr(pa.types, "is_string_view", lambda _t: False)(t)):
            out[name] = str(t)
    return out


def iter_rows(path: Path, names: list[str]) -> Iterator[Row]:
    """Every record of ``path`` with the values of ``names`` (CSV values are always text;
    a JSONL record without a field gets ``MISSING``), streamed in file order."""
    fmt = data_format(path)
    if fmt == "jsonl":
        yield from _jsonl_rows(path, names)
    elif fmt == "parquet":
        yield from _parquet_rows(path, names)
    else:
        yield from _csv_rows(path, names)


# --- format readers ------------------------------------------------------------------------


def _has_content(path: Path) -> bool:
    with path.open("rb") as f:
        return any(line is None or line.strip() for line in _lines(f))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook: a key given twice in one object is an error, not "last wins"."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def _lines(f: Any) -> Iterator[bytes | None]:
    """The lines of a binary file, each at most ``MAX_LINE_BYTES``; a longer line is consumed
    in pieces and yielded as None (a bad row), so one huge line cannot exhaust memory."""
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = f.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield raw


def _jsonl_rows(path: Path, names: list[str] | None) -> Iterator[Row]:
    number = 0
    with path.open("rb") as f:
        for line_no, raw in enumerate(_lines(f), start=1):
            if raw is None:
                number += 1
                yield Row(number, line=line_no,
                          problem=f"line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if not raw.strip():
                continue
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield Row(number, line=line_no, problem=f"not UTF-8 text (byte "
                          f"0x{raw[e.start]:02x} at column {e.start + 1})")
                continue
            try:
                obj = json.loads(text, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as e:
                yield Row(number, line=line_no, problem=f"invalid JSON ({e.msg})")
                continue
            except ValueError as e:
                yield Row(number, line=line_no, problem=f"invalid JSON ({e})")
                continue
            except RecursionError:
                yield Row(number, line=line_no, problem="invalid JSON (nested too deeply)")
                continue
            if not isinstance(obj, dict):
                yield Row(number, line=line_no,
                          problem=f"not a JSON object (a {type(obj).__name__})")
                continue
            values = obj if names is None else {n: obj.get(n, MISSING) for n in names}
            yield Row(number, values, line=line_no)


def _parquet_rows(path: Path, names: list[str]) -> Iterator[Row]:
    """Parquet records; a file that breaks mid-way (a corrupt page) is one ``ConfigError``."""
    import pyarrow as pa

    number = 0
    try:
        for batch in _parquet(path, "data").iter_batches(batch_size=BATCH_ROWS, columns=names):
            columns = [batch.column(n).to_pylist() for n in names]
            for values in zip(*columns):
                number += 1
                yield Row(number, dict(zip(names, values)))
    except (pa.ArrowException, OSError, KeyError) as e:
        raise ConfigError("data", f"unreadable Parquet after row {number} ({e})",
                          str(path)) from None


def _parquet(path: Path, key: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise ConfigError(key, f"not a readable Parquet file ({e})", str(path)) from None


def _csv_reader(path: Path, key: str, names: list[str] | None, block: int) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(strings_can_be_null=False)
    if names is not None:
        convert = pcsv.ConvertOptions(include_columns=names, strings_can_be_null=False,
                                      column_types={n: pa.string() for n in names})
    try:
        return pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=block),
                             parse_options=pcsv.ParseOptions(newlines_in_values=True),
                             convert_options=convert)
    except pa.ArrowInvalid as e:
        if "Empty CSV" in str(e):
            raise ConfigError(key, "empty file (no rows)", str(path)) from None
        if "straddl" in str(e) and block < _CSV_MAX_BLOCK:
            return _csv_reader(path, key, names, block * 16)
        raise ConfigError(key, f"not a readable CSV file ({e})", str(path)) from None


def _first(reader: Any) -> Iterator[Any]:
    """The first non-empty batch of a CSV reader, if any (reads one block, not the file)."""
    for batch in reader:
        if batch.num_rows:
            yield batch
            return


def _csv_rows(path: Path, names: list[str]) -> Iterator[Row]:
    """CSV records; a record larger than the block size restarts the stream with blocks 16×
    larger, skipping the records already yielded (rare: only for multi-megabyte values)."""
    import pyarrow as pa

    block, done = _CSV_BLOCK, 0
    while True:
        number = 0
        try:
            for batch in _csv_reader(path, "data", names, block):
                columns = [batch.column(n).to_pylist() for n in names]
                for values in zip(*columns):
                    number += 1
                    if number > done:
                        done = number
                        yield Row(number, dict(zip(names, values)))
            return
        except pa.ArrowInvalid as e:
            if "straddl" not in str(e) or block >= _CSV_MAX_BLOCK:
                raise ConfigError("data", f"unreadable CSV after row {number} ({e})",
                                  str(path)) from None
            block *= 16
