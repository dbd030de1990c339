"""Raw rows out of one configured table file: CSV / TSV / Parquet / JSON / JSON-lines,
optionally inside a .zip or .gz, in any text encoding.

A file that cannot be opened at all (not gzip, truncated, wrong encoding, a CSV pandas cannot
parse) is a `DataError` naming the file and, where there is one, the line; a single JSON-lines
record that is not an object (or not decodable) is a bad row, so quarantine can set it aside.
Each row comes with its location (`line 3`, `row 7`, `judgmentRatings[2].ratings[5]`).
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relevance_kit.data.bad_rows import BadRows
from relevance_kit.data.spec import TableSpec
from relevance_kit.errors import DataError


@dataclass(frozen=True)
class RawTable:
    file: str  # the file's name, as error messages and the quarantine file show it
    columns: list[str]  # the columns (JSON: keys) found, in first-seen order
    rows: list[tuple[str, dict[str, Any]]]  # (location, record)


def read_table(path: Path, spec: TableSpec, bad: BadRows) -> RawTable:
    """Every row of `path` as read under `spec` (format, compression, member, encoding)."""
    name = path.name if spec.member is None else f"{path.name}/{spec.member}"
    raw = _uncompressed(path, spec)
    if spec.format == "parquet":
        return _parquet_table(raw, name)
    if spec.format in ("csv", "tsv"):
        return _csv_table(_decode(raw, name, spec.encoding), name, spec)
    if spec.format == "jsonl":
        rows = _jsonl_rows(raw, name, spec, bad)
    else:
        rows = _json_rows(_decode(raw, name, spec.encoding), name, spec, bad)
    return RawTable(name, list(dict.fromkeys(key for _, record in rows for key in record)), rows)


def _uncompressed(path: Path, spec: TableSpec) -> bytes:
    kind = spec.compression
    if kind == "infer":
        kind = {".gz": "gzip", ".zip": "zip"}.get(path.suffix.lower(), "none")
    if spec.member is not None and kind != "zip":
        raise DataError(
            f"{path.name}: member {spec.member!r} is given but the file is not read as a .zip (compression {kind!r})"
        )
    if kind == "gzip":
        try:
            return gzip.decompress(path.read_bytes())
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path.name}: not a readable gzip file ({exc}); is it truncated or not gzip at all?"
            ) from None
    if kind == "zip":
        return _zip_member(path, spec.member)
    return path.read_bytes()


def _zip_member(path: Path, member: str | None) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if member is None and len(names) != 1:
                raise DataError(
                    f"{path.name}: the zip holds {names}; name the one to read with `member:`"
                )
            chosen = member if member is not None else names[0]
            if chosen not in names:
                raise DataError(f"{path.name}: no member {chosen!r} in the zip; it holds {names}")
            return archive.read(chosen)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path.name}: not a readable zip file ({exc})") from None


def _decode(raw: bytes, name: str, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{name}: line {line}: byte(s) {raw[exc.start : exc.end]!r} are not valid {encoding}; "
            "set the table's `encoding:` (e.g. latin-1)"
        ) from None


def _csv_table(text: str, name: str, spec: TableSpec) -> RawTable:
    """Every cell as text (empty cells ""); rows are numbered as a spreadsheet shows them
    (the header is row 1)."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep="\t" if spec.format == "tsv" else ",",
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{name}: cannot parse as {spec.format}: {exc}") from None
    rows = [(f"row {i + 2}", record) for i, record in enumerate(frame.to_dict("records"))]
    return RawTable(name, [str(c) for c in frame.columns], rows)


def _parquet_table(raw: bytes, name: str) -> RawTable:
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{name}: not a readable parquet file ({exc})") from None
    rows = [(f"row {i + 1}", record) for i, record in enumerate(table.to_pylist())]
    return RawTable(name, table.column_names, rows)


def _jsonl_rows(
    raw: bytes, name: str, spec: TableSpec, bad: BadRows
) -> list[tuple[str, dict[str, Any]]]:
    """One JSON object a line; a line that is not one (or not decodable) is a bad row."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        where = f"line {line_no}"
        try:
            text = line.decode(spec.encoding)
        except UnicodeDecodeError as exc:
            bad.add(
                name,
                where,
                f"bad encoding: byte(s) {line[exc.start : exc.end]!r} are not valid {spec.encoding}",
                repr(line[:200]),
            )
            continue
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.add(name, where, f"invalid JSON: {exc}", text[:200])
            continue
        rows += _records(item, where, name, spec.explode, bad)
    return rows


def _json_rows(
    text: str, name: str, spec: TableSpec, bad: BadRows
) -> list[tuple[str, dict[str, Any]]]:
    """A JSON document holding a list of records, at `records` (a dotted path) or at the top."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}: invalid JSON: {exc}") from None
    items = doc
    for key in spec.records.split(".") if spec.records else []:
        items = items.get(key) if isinstance(items, dict) else None
    if not isinstance(items, list):
        where = (
            f"a list under {spec.records!r}"
            if spec.records
            else "a list of records at the top (or set `records:`)"
        )
        raise DataError(f"{name}: expected a JSON document with {where}")
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(items):
        rows += _records(item, f"{spec.records or ''}[{i}]", name, spec.explode, bad)
    return rows


def _records(
    item: Any, where: str, name: str, explode: str | None, bad: BadRows
) -> list[tuple[str, dict[str, Any]]]:
    """The rows of one JSON record: itself, or one per item of its `explode` list (each item's
    keys over the record's other keys)."""
    if not isinstance(item, dict):
        bad.add(
            name,
            where,
            f"not an object: a JSON {type(item).__name__} where a record was expected",
            item,
        )
        return []
    if explode is None:
        return [(where, item)]
    children = item.get(explode)
    if not isinstance(children, list):
        bad.add(name, where, f"bad field: {explode} is not a list", item)
        return []
    parent = {k: v for k, v in item.items() if k != explode}
    rows = []
    for j, child in enumerate(children):
        at = f"{where}.{explode}[{j}]"
        if isinstance(child, dict):
            rows.append((at, parent | child))
        else:
            bad.add(
                name,
                at,
                f"not an object: {explode} entry {child!r} is a JSON {type(child).__name__}",
                child,
            )
    return rows
