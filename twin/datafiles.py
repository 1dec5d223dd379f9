"""Reading the data files twin's models use: the communes CSV of a region, a calibration CSV, a mahimahi
capacity trace. I/O at the edge: each reader opens the file, checks its type and encoding, and hands the
text to the pure model that parses it (:class:`twin.quality.CalibrationTable`,
:class:`twin.line.CapacityTrace`), so errors name the file, the line and the value.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from twin.errors import TwinInputError
from twin.line import CapacityTrace
from twin.quality import CalibrationTable
from twin.scenario.spec import Commune

#: Largest commune population accepted (the most populous city on Earth is under 4e7).
MAX_COMMUNE_POPULATION = 100_000_000

#: Most communes a region may hold (all of France: about 35,000; the shipped Auvergne file: 454).
MAX_COMMUNES = 50_000

#: Largest communes or calibration CSV read, bytes (all of France's communes take about 3 MB).
MAX_DATA_FILE_BYTES = 20_000_000

#: Columns of a communes CSV.
COMMUNE_COLUMNS = ("commune_id", "name", "departement_code", "lat", "lon", "population")


def _regular_file(path: Path, what: str) -> None:
    if not path.exists():
        raise TwinInputError(f"{what}: file not found", path=str(path))
    if not path.is_file():
        raise TwinInputError(f"{what}: not a regular file (a folder, device or pipe)", path=str(path))


def _checked_bytes(p: Path, what: str, max_bytes: int, expected: str) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (refused from its size, before reading) with no
    NUL byte (binary data; the message says it is not ``expected``). Raises TwinInputError naming the file."""
    _regular_file(p, what)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise TwinInputError(f"{what}: {size:,} bytes, over the {max_bytes:,} accepted; refused before reading",
                                 path=str(p))
        raw = p.read_bytes()
    except OSError as exc:
        raise TwinInputError(f"{what}: cannot read: {exc.strerror or exc}", path=str(p)) from None
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise TwinInputError(f"{what}: binary data (a NUL byte on line {line}), not {expected}", path=str(p))
    return raw


def read_text_file(path: str | Path, what: str, max_bytes: int = MAX_DATA_FILE_BYTES) -> str:
    """The text of a data file, checked before it is parsed: a regular file, at most ``max_bytes``
    (refused from its size, before reading), no NUL byte (binary data), UTF-8 (a byte-order mark is
    dropped).

    Raises:
        TwinInputError: naming the file, what it should be and what is wrong (the line of a bad byte).
    """
    p = Path(path)
    raw = _checked_bytes(p, what, max_bytes, "a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TwinInputError(f"{what}: not UTF-8 text (line {line}, byte {exc.start}); save it as UTF-8 CSV",
                             path=str(p)) from None


def read_communes(path: str | Path) -> tuple[Commune, ...]:
    """Read a region's communes CSV (columns :data:`COMMUNE_COLUMNS`; see scenarios/data/README.md).

    Raises:
        TwinInputError: missing, unreadable, oversized or binary file, not UTF-8, missing columns, a short
            row, an empty id or name, a value that is not a finite number or out of range (naming the
            line and the column), more than :data:`MAX_COMMUNES` rows, no row, a duplicated ``commune_id``.
    """
    p = Path(path)
    text = read_text_file(p, "communes file")
    try:
        return _parse_communes(text, str(p))
    except csv.Error as exc:
        raise TwinInputError(f"not a readable CSV file ({exc})", path=str(p)) from None


def _number(row: dict[str, str], column: str, row_no: int, path: str, low: float, high: float) -> float:
    text = (row[column] or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise TwinInputError(f"line {row_no}, column {column}: not a number: {text!r}", path=path) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise TwinInputError(f"line {row_no}, column {column}: {text!r} is not a finite number between {low:,} and "
                             f"{high:,}", path=path)
    return value


def _parse_communes(text: str, path: str) -> tuple[Commune, ...]:
    communes = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = set(COMMUNE_COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise TwinInputError(f"missing column(s) {sorted(missing)} (has {reader.fieldnames})", path=path)
    for row in reader:
        row_no = reader.line_num
        if None in row.values() or None in row:
            raise TwinInputError(f"line {row_no}: {len(row)} fields where the header has "
                                 f"{len(reader.fieldnames or [])}", path=path)
        if len(communes) >= MAX_COMMUNES:
            raise TwinInputError(f"line {row_no}: more than {MAX_COMMUNES:,} communes (all of France has about "
                                 "35,000)", path=path)
        for column in ("commune_id", "name"):
            if not row[column].strip():
                raise TwinInputError(f"line {row_no}, column {column}: empty", path=path)
        lat = _number(row, "lat", row_no, path, -90, 90)
        lon = _number(row, "lon", row_no, path, -180, 180)
        population = _number(row, "population", row_no, path, 0, MAX_COMMUNE_POPULATION)
        if population != int(population):
            raise TwinInputError(f"line {row_no}, column population: {row['population']!r} is not a whole number",
                                 path=path)
        communes.append(Commune(row["commune_id"], row["name"], row["departement_code"], lat, lon, int(population)))
    if not communes:
        raise TwinInputError("no communes in the file", path=path)
    ids = [c.commune_id for c in communes]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise TwinInputError(f"duplicate commune_id {dup!r}", path=path)
    return tuple(communes)


def read_calibration_csv(path: str | Path) -> CalibrationTable:
    """Read a calibration CSV written by ``twin calibrate`` (format: :class:`twin.quality.CalibrationTable`).

    Raises:
        TwinInputError: missing, unreadable, oversized or binary file, not UTF-8 text, missing columns, a
            bad value (naming the row's line number, the column and the value).
    """
    p = Path(path)
    text = read_text_file(p, "calibration table")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = list(reader.fieldnames or [])
        records = [(reader.line_num, raw) for raw in reader]
    except csv.Error as exc:
        raise TwinInputError(f"not a readable CSV file ({exc})", path=str(p)) from None
    return CalibrationTable.from_records(header, records, path=str(p))


#: Largest capacity trace file accepted, bytes (mahimahi's longest recorded traces are a few MB).
MAX_TRACE_FILE_BYTES = 64_000_000


def read_capacity_trace(path: str | Path) -> CapacityTrace:
    """Read a mahimahi capacity trace file as bytes, as mahimahi does, and parse it with mahimahi's rules
    (:meth:`twin.line.CapacityTrace.parse`): a binary or non-ASCII file fails on its first bad line.

    Raises:
        TwinInputError: missing, unreadable, oversized or binary file, a malformed line (naming its number).
    """
    p = Path(path)
    data = _checked_bytes(p, "capacity trace", MAX_TRACE_FILE_BYTES,
                          "a mahimahi trace (one millisecond timestamp per line)")
    return CapacityTrace.parse(data, name=str(p))


__all__ = ["COMMUNE_COLUMNS", "MAX_COMMUNES", "MAX_COMMUNE_POPULATION", "MAX_DATA_FILE_BYTES", "MAX_TRACE_FILE_BYTES",
           "read_calibration_csv", "read_capacity_trace", "read_communes", "read_text_file"]
