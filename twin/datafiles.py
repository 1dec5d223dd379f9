"""Reading the data files twin's models use: the communes CSV of a region, a calibration CSV, a mahimahi
capacity trace. I/O at the edge: each reader opens the file, checks its type and encoding, and hands the
text to the pure model that parses it (:class:`twin.quality.CalibrationTable`,
:class:`twin.line.CapacityTrace`), so errors name the file, the line and the value.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from twin.errors import TwinInputError
from twin.line import CapacityTrace
from twin.quality import CalibrationTable
from twin.scenario.spec import Commune

#: Largest commune population accepted (the most populous city on Earth is under 4e7).
MAX_COMMUNE_POPULATION = 100_000_000

#: Columns of a communes CSV.
COMMUNE_COLUMNS = ("commune_id", "name", "departement_code", "lat", "lon", "population")


def _regular_file(path: Path, what: str) -> None:
    if not path.exists():
        raise TwinInputError(f"{what}: file not found", path=str(path))
    if not path.is_file():
        raise TwinInputError(f"{what}: not a regular file", path=str(path))


def read_communes(path: str | Path) -> tuple[Commune, ...]:
    """Read a region's communes CSV (columns :data:`COMMUNE_COLUMNS`; see scenarios/data/README.md).

    Raises:
        TwinInputError: missing or unreadable file, not UTF-8, missing columns, a short row, a value that
            is not a number or out of range, no row, a duplicated ``commune_id``.
    """
    p = Path(path)
    _regular_file(p, "communes file")
    try:
        return _parse_communes(p)
    except UnicodeDecodeError as exc:
        raise TwinInputError(f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8", path=str(p)) from None
    except csv.Error as exc:
        raise TwinInputError(f"not a readable CSV file ({exc})", path=str(p)) from None


def _parse_communes(path: Path) -> tuple[Commune, ...]:
    communes = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = set(COMMUNE_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise TwinInputError(f"missing column(s) {sorted(missing)} (has {reader.fieldnames})", path=str(path))
        for row in reader:
            row_no = reader.line_num
            if None in row.values() or None in row:
                raise TwinInputError(f"line {row_no}: {len(row)} fields where the header has "
                                     f"{len(reader.fieldnames or [])}", path=str(path))
            try:
                lat, lon, population = float(row["lat"]), float(row["lon"]), int(row["population"])
            except (TypeError, ValueError):
                raise TwinInputError(f"line {row_no}: lat/lon/population not numeric: "
                                     f"{row['lat']!r}, {row['lon']!r}, {row['population']!r}", path=str(path)) from None
            if not 0 <= population <= MAX_COMMUNE_POPULATION:
                raise TwinInputError(f"line {row_no}: population must be between 0 and {MAX_COMMUNE_POPULATION:,}, "
                                     f"got {population}", path=str(path))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
                raise TwinInputError(f"line {row_no}: coordinates out of range: {lat}, {lon}", path=str(path))
            communes.append(Commune(row["commune_id"], row["name"], row["departement_code"], lat, lon, population))
    if not communes:
        raise TwinInputError("no communes in the file", path=str(path))
    ids = [c.commune_id for c in communes]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise TwinInputError(f"duplicate commune_id {dup!r}", path=str(path))
    return tuple(communes)


def read_calibration_csv(path: str | Path) -> CalibrationTable:
    """Read a calibration CSV written by ``twin calibrate`` (format: :class:`twin.quality.CalibrationTable`).

    Raises:
        TwinInputError: missing or unreadable file, not UTF-8 text, missing columns, a bad value (naming
            the row's line number, the column and the value).
    """
    p = Path(path)
    _regular_file(p, "calibration table")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            records = [(reader.line_num, raw) for raw in reader]
    except UnicodeDecodeError as exc:
        raise TwinInputError(f"not UTF-8 text (byte {exc.start}); is this a calibration CSV?", path=str(p)) from None
    except csv.Error as exc:
        raise TwinInputError(f"not a readable CSV file ({exc})", path=str(p)) from None
    except OSError as exc:
        raise TwinInputError(f"cannot read calibration table: {exc}", path=str(p)) from None
    return CalibrationTable.from_records(header, records, path=str(p))


#: Largest capacity trace file accepted, bytes (mahimahi's longest recorded traces are a few MB).
MAX_TRACE_FILE_BYTES = 64_000_000


def read_capacity_trace(path: str | Path) -> CapacityTrace:
    """Read a mahimahi capacity trace file as bytes, as mahimahi does, and parse it with mahimahi's rules
    (:meth:`twin.line.CapacityTrace.parse`): a binary or non-ASCII file fails on its first bad line.

    Raises:
        TwinInputError: missing, unreadable or oversized file, a malformed line (naming its number).
    """
    p = Path(path)
    _regular_file(p, "capacity trace")
    try:
        if p.stat().st_size > MAX_TRACE_FILE_BYTES:
            raise TwinInputError(f"capacity trace of {p.stat().st_size:,} bytes is over {MAX_TRACE_FILE_BYTES:,}",
                                 path=str(p))
        data = p.read_bytes()
    except OSError as exc:
        raise TwinInputError(f"cannot read capacity trace: {exc.strerror or exc}", path=str(p)) from None
    return CapacityTrace.parse(data, name=str(p))


__all__ = ["COMMUNE_COLUMNS", "MAX_COMMUNE_POPULATION", "read_calibration_csv", "read_capacity_trace",
           "read_communes", "MAX_TRACE_FILE_BYTES"]
