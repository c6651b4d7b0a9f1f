"""CSV → typed table, streamed in two passes (profile, then rows) so memory stays flat
however large the file. Importable without the server; runs in a worker thread.

Nothing is dropped silently: rows with the wrong number of fields are reported with their
line numbers, and the caller decides whether that fails the import.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

MAX_COLUMNS = 1000
MAX_FIELD = 1 << 20  # one cell; the default (128 KiB) refuses legitimate long text
MAX_REPORTED = 100
SNIFF_BYTES = 64 * 1024
TRUE = {"true", "yes"}
FALSE = {"false", "no"}


class CsvError(Exception):
    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


@dataclass
class CsvProfile:
    encoding: str
    delimiter: str
    header: list[str]
    types: list[str]
    rows: int = 0
    bad_lines: list[dict] = field(default_factory=list)
    bad_count: int = 0
    warnings: list[str] = field(default_factory=list)


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _open(path: Path, encoding: str):
    return open(path, encoding=encoding, errors="strict", newline="")


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _reader(fh, delimiter: str):
    csv.field_size_limit(MAX_FIELD)
    return csv.reader(fh, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


def _kind(value: str) -> set[str]:
    """The types a non-empty cell could be."""
    kinds = {"text"}
    low = value.strip().lower()
    if low in TRUE or low in FALSE:
        kinds.add("bool")
    try:
        number = float(value)
        if math.isfinite(number):
            kinds.add("number")
    except ValueError:
        pass
    if "-" in value and len(value) >= 8:
        try:
            datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            kinds.add("datetime")
        except ValueError:
            pass
    return kinds


def sniff(path: Path) -> tuple[str, str]:
    """(encoding, delimiter) from the first 64 KiB; ``CsvError`` if empty or not UTF-8."""
    with open(path, "rb") as raw:
        head = raw.read(SNIFF_BYTES)
    if not head.strip():
        raise CsvError("the file is empty")
    encoding = detect_encoding(head)
    try:
        sample = head.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the sample's end
            raise _not_utf8(head, exc.start) from None
        sample = head[:exc.start].decode(encoding)
    return encoding, _sniff_delimiter(sample)


def profile(path: Path, *, max_columns: int = MAX_COLUMNS) -> CsvProfile:
    """Pass 1: encoding, delimiter, header, column types, row count, ragged lines."""
    encoding, delimiter = sniff(path)
    with _open(path, encoding) as fh:
        reader = _reader(fh, delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise CsvError("the file is empty")
            header = [h.strip() for h in header]
            if len(header) > max_columns:
                raise CsvError(f"{len(header)} columns; the limit is {max_columns}",
                               {"columns": len(header), "limit": max_columns})
            prof = CsvProfile(encoding, delimiter, header, [], warnings=[])
            _check_header(prof)
            candidates = [{"number", "bool", "datetime", "text"} for _ in header]
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
                    continue  # blank line
                if len(row) != len(header):
                    prof.bad_count += 1
                    if len(prof.bad_lines) < MAX_REPORTED:
                        prof.bad_lines.append({
                            "line": reader.line_num,
                            "problem": f"{len(row)} fields, expected {len(header)}"})
                    continue
                prof.rows += 1
                for i, cell in enumerate(row):
                    if cell != "" and len(candidates[i]) > 1:
                        candidates[i] &= _kind(cell)
        except UnicodeDecodeError:
            raise CsvError(f"the file is not UTF-8 text (line {reader.line_num + 1}): save it "
                           f"as UTF-8 and upload again", {"encoding": encoding}) from None
        except csv.Error as exc:
            raise CsvError(f"line {reader.line_num}: {exc}", {"line": reader.line_num}) from None
    prof.types = [_pick(c) for c in candidates]
    if prof.rows == 0 and prof.bad_count == 0:
        raise CsvError("the CSV has a header but no data rows")
    return prof


def _pick(kinds: set[str]) -> str:
    for kind in ("bool", "number", "datetime"):
        if kind in kinds:
            return kind
    return "text"


def _check_header(prof: CsvProfile) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(prof.header):
        if not name:
            prof.header[i] = name = f"column_{i + 1}"
            prof.warnings.append(f"column {i + 1} had no name; called it {name}")
        seen[name] = seen.get(name, 0) + 1
    duplicates = sorted(n for n, count in seen.items() if count > 1)
    if duplicates:
        raise CsvError(f"duplicate column names: {', '.join(duplicates)}",
                       {"duplicates": duplicates})


def convert(value: str, kind: str):
    if value == "":
        return None
    if kind == "number":
        number = float(value)
        if number.is_integer() and abs(number) < 2 ** 53 and not any(c in value for c in ".eE"):
            return int(number)
        return number
    if kind == "bool":
        return value.strip().lower() in TRUE
    if kind == "datetime":
        text = value.strip()
        if len(text) == 10:  # a plain date stays a plain date
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    return value


def rows(path: Path, prof: CsvProfile, batch: int = 2000) -> Iterator[list[dict]]:
    """Pass 2: the good rows as typed dicts, in batches."""
    with _open(path, prof.encoding) as fh:
        reader = _reader(fh, prof.delimiter)
        next(reader)
        out: list[dict] = []
        width = len(prof.header)
        for row in reader:
            if len(row) != width:
                continue  # reported by profile()
            out.append({name: convert(cell, kind)
                        for name, cell, kind in zip(prof.header, row, prof.types)})
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out


def _not_utf8(head: bytes, position: int) -> CsvError:
    line = head[:position].count(b"\n") + 1
    return CsvError(f"the file is not UTF-8 text (byte 0x{head[position]:02x} on line {line}): "
                    f"save it as UTF-8 and upload again", {"line": line})


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value as a spreadsheet may safely open it: text that a spreadsheet would run as a
    formula (starting with = + - @ tab or CR) gets a leading apostrophe (OWASP CSV
    injection); numbers stay numbers."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(header: list[str] | None, records) -> Iterator[str]:
    """Export: CSV text piece by piece (the header line if given, then one line per record),
    every cell through ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow([csv_cell(h) for h in header])
    for record in records:
        writer.writerow([csv_cell(v) for v in record])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
