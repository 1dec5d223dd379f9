"""Run folders: writing them atomically, replication by replication, and reading them back.

A run folder written by ``twin run`` holds:

- ``manifest.json``: scenario file and its SHA-256, seed, replications requested and done, status
  (``running``, ``complete``, ``interrupted``), package versions, git commit, start and end times (UTC);
- ``replications.csv``: one row per replication x phase x KPI (``replication,phase,kpi,value``; an empty
  value is an undefined KPI), rewritten atomically after each replication, so an interrupted run keeps
  every replication it finished;
- ``replications_by_year.csv``: the same per calendar year (``replication,year,kpi,value``);
- ``replications/NNNN.json``: everything one replication measured (per phase, year, site, departement),
  written when it finishes: what the other files are computed from;
- ``summary.json``: {"phases": [...], "kpis": [...], "summary": {phase: {kpi: {mean, ci95_half_width, n}}},
  "by_year": {year: {kpi: ...}}, "by_departement": {phase: {departement: {kpi: ...}}}} with no
  timestamps, so the same scenario and seed give the same bytes;
- ``sites.csv``: one row per site x phase (site, kind, commune, departement, generation, then each KPI of
  twin.vocabulary.SITE_KPIS as ``<kpi>_mean`` and ``<kpi>_ci95``);
- ``hindcast.csv``: the scenario's observations beside the predictions (when it has observations);
- ``quality.csv``: per phase and user kiosk, the interview scores its line and generation get and their
  ``source`` (the calibration table's measured point, or the opinion model);
- ``records/replication-NNNN.parquet``: one row per citizen need (``twin run --records``);
- ``phases.json``: each phase's name and dates (for aligning phases across runs);
- ``plots/``: PNG rollout plots.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.kpis import HindcastRow, ReplicationKpis
from twin.run.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from twin.run.outputs import prepare_output_folder
from twin.vocabulary import DEPARTEMENT_KPIS, NO_KIOSK, SITE_KPIS, YEAR_KPIS

MANIFEST = "manifest.json"
REPLICATIONS = "replications.csv"
REPLICATIONS_BY_YEAR = "replications_by_year.csv"
REPLICATION_DIR = "replications"
SUMMARY = "summary.json"
PHASES = "phases.json"
SITES = "sites.csv"
HINDCAST = "hindcast.csv"
QUALITY = "quality.csv"
RECORDS_DIR = "records"


def git_commit(path: Path) -> str | None:
    """The git commit of the checkout containing ``path``, or None (not a checkout, git missing)."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions(names: Sequence[str] = ("twin", "simpy", "numpy", "scipy", "pydantic", "networkx",
                                             "matplotlib", "aiortc")) -> dict[str, str | None]:
    """Installed versions of the packages that shape a run's numbers (None if not installed)."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def replications_csv(rows: Mapping[int, Mapping[Any, Mapping[str, float]]], kpis: Sequence[str],
                     label: str = "phase") -> str:
    """The replications.csv text for KPI dicts keyed by replication number (written in that order), then
    by phase (or year: ``label``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["replication", label, "kpi", "value"])
    for rep in sorted(rows):
        for phase, values in rows[rep].items():
            for kpi in kpis:
                value = values[kpi]
                writer.writerow([rep, phase, kpi, "" if math.isnan(value) else repr(float(value))])
    return buffer.getvalue()


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def replication_json(kpis: ReplicationKpis, site_ids: Sequence[str]) -> dict[str, Any]:
    """One replication's KPIs as JSON-ready data (sites by id, NaN as null)."""
    def site_id(i: int) -> str:
        return site_ids[i] if i >= 0 else NO_KIOSK

    def clean(values: Mapping[str, float]) -> dict[str, float | None]:
        return {k: _json_number(v) for k, v in values.items()}

    return {
        "phases": {p: clean(v) for p, v in kpis.phases.items()},
        "years": {str(y): clean(v) for y, v in kpis.years.items()},
        "sites": {p: {site_id(i): clean(v) for i, v in by_site.items()} for p, by_site in kpis.sites.items()},
        "departements": {p: {d: clean(v) for d, v in deps.items()} for p, deps in kpis.departements.items()},
    }


def sites_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The sites.csv text (rows from :func:`twin.kpis.summarize_sites`)."""
    buffer = io.StringIO()
    columns = ["phase", "site_id", "kind", "commune", "departement_code", "generation"]
    for kpi in SITE_KPIS:
        columns += [f"{kpi}_mean", f"{kpi}_ci95"]
    columns.append("n")
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def hindcast_csv(rows: Sequence[HindcastRow]) -> str:
    """The hindcast.csv text: one row per observation beside the prediction."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["what", "kpi", "relation", "observed", "predicted", "ci95_half_width", "n", "ratio", "in_ci",
                     "source"])
    for r in rows:
        writer.writerow([r.what, r.kpi, r.relation, repr(r.observed), "" if r.predicted is None else repr(r.predicted),
                         "" if r.ci95_half_width is None else repr(r.ci95_half_width), r.n,
                         "" if r.ratio is None else f"{r.ratio:.4f}", "" if r.in_ci is None else str(r.in_ci).lower(),
                         r.source])
    return buffer.getvalue()


class RunFolder:
    """Writer of one run folder (creates it; every file write is atomic)."""

    def __init__(self, path: Path, *, force: bool = False, inputs: Sequence[Path] = ()) -> None:
        """Create the folder (see :func:`twin.run.outputs.prepare_output_folder`: an existing non-empty
        folder is refused unless ``force`` and twin wrote it)."""
        self.path = prepare_output_folder(path, "run", force=force, inputs=inputs)
        try:
            (self.path / "plots").mkdir(exist_ok=True)
        except OSError as exc:
            raise TwinInputError(f"cannot create the output folder {self.path}: {exc.strerror or exc}") from None

    @classmethod
    def reopen(cls, path: Path) -> RunFolder:
        """An existing run folder, to continue writing it (``twin run --resume``)."""
        folder = cls.__new__(cls)
        folder.path = Path(path)
        (folder.path / "plots").mkdir(exist_ok=True)
        return folder

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Write ``manifest.json``."""
        atomic_write_json(self.path / MANIFEST, dict(manifest))

    def write_phases(self, phases: Sequence[Mapping[str, Any]]) -> None:
        """Write ``phases.json`` (name, start_date, end_date per phase)."""
        atomic_write_json(self.path / PHASES, list(phases))

    def write_replications(self, rows: Mapping[int, Mapping[str, Mapping[str, float]]], kpis: Sequence[str]) -> None:
        """Rewrite ``replications.csv`` with every replication finished so far."""
        atomic_write_text(self.path / REPLICATIONS, replications_csv(rows, kpis))

    def write_years(self, rows: Mapping[int, Mapping[int, Mapping[str, float]]]) -> None:
        """Rewrite ``replications_by_year.csv`` with every replication finished so far."""
        atomic_write_text(self.path / REPLICATIONS_BY_YEAR, replications_csv(rows, YEAR_KPIS, label="year"))

    def write_replication(self, index: int, kpis: ReplicationKpis, site_ids: Sequence[str]) -> None:
        """Write ``replications/NNNN.json``: everything replication ``index`` measured."""
        atomic_write_json(self.path / REPLICATION_DIR / f"{index:04d}.json", replication_json(kpis, site_ids))

    def write_summary(self, phases: Sequence[str], kpis: Sequence[str], summary: Mapping[str, Any],
                      by_year: Mapping[str, Any] | None = None, by_departement: Mapping[str, Any] | None = None,
                      full_years: Mapping[str, Any] | None = None) -> None:
        """Write ``summary.json``."""
        doc: dict[str, Any] = {"phases": list(phases), "kpis": list(kpis), "summary": summary}
        if full_years:
            doc["full_years_total"] = full_years
        if by_year is not None:
            doc["by_year"] = by_year
        if by_departement is not None:
            doc["by_departement"] = by_departement
        atomic_write_json(self.path / SUMMARY, doc)

    def write_sites(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``sites.csv``."""
        atomic_write_text(self.path / SITES, sites_csv(rows))

    def write_quality(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``quality.csv`` (rows from :func:`twin.model.inputs.quality_sources`)."""
        buf = io.StringIO()
        columns = ("phase", "site_id", "generation", "offer", "loop_length_m", "loss_pct", "mos", "speech_mos",
                   "video_mos", "usable", "source")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([f"{row[c]:.4g}" if isinstance(row[c], float) else row[c] for c in columns])
        atomic_write_text(self.path / QUALITY, buf.getvalue())

    def write_hindcast(self, rows: Sequence[HindcastRow]) -> None:
        """Write ``hindcast.csv``."""
        atomic_write_text(self.path / HINDCAST, hindcast_csv(rows))

    def write_records(self, index: int, table: Any) -> Path:
        """Write replication ``index``'s records (a ``pyarrow.Table``) as ``records/replication-NNNN.parquet``."""
        import pyarrow.parquet as pq

        target = self.path / RECORDS_DIR / f"replication-{index:04d}.parquet"
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return atomic_write_bytes(target, buffer.getvalue())


@dataclass(frozen=True)
class RunData:
    """A run folder read back.

    Attributes:
        path: the folder.
        manifest: manifest.json.
        phases: [{"name", "start_date", "end_date"}] in order.
        kpis: KPI names in report order.
        summary: {phase: {kpi: {"mean", "ci95_half_width", "n"}}}.
        replications: {phase: {kpi: [value per replication, NaN if undefined]}}.
        by_year: {year: {kpi: {"mean", "ci95_half_width", "n"}}} (empty for runs made before it existed).
        by_departement: {phase: {departement: {kpi: ...}}} (empty likewise).
    """

    path: Path
    manifest: dict[str, Any]
    phases: list[dict[str, Any]]
    kpis: list[str]
    summary: dict[str, dict[str, dict[str, Any]]]
    replications: dict[str, dict[str, list[float]]]
    by_year: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    by_departement: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """A run folder's manifest.json.

    Raises:
        TwinInputError: not a folder, no manifest, not a JSON object.
    """
    path = Path(folder)
    if not path.is_dir():
        raise TwinInputError("run folder not found", path=str(path))
    manifest = _read_json(path / MANIFEST)
    if not isinstance(manifest, dict):
        raise TwinInputError(f"{MANIFEST} is not a JSON object", path=str(path))
    return manifest


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(manifest: Mapping[str, Any]) -> str:
    """``complete``, ``interrupted``, ``running`` (its process is alive, or on another host) or
    ``abandoned`` (the manifest says running but its process on this host is gone: killed)."""
    status = str(manifest.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = manifest.get("pid"), manifest.get("host")
    if host == socket.gethostname() and isinstance(pid, int) and not _process_alive(pid):
        return "abandoned"
    return "running"


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def replication_from_json(doc: Mapping[str, Any], site_ids: Sequence[str], phases: Sequence[str],
                          kpis: Sequence[str]) -> ReplicationKpis:
    """A :class:`twin.kpis.ReplicationKpis` from ``replications/NNNN.json`` (inverse of
    :func:`replication_json`), in the canonical orders the KPI functions give: phases and their KPIs in
    scenario order, years ascending, sites by index, departements by code."""
    index = {sid: i for i, sid in enumerate(site_ids)}
    index[NO_KIOSK] = -1

    def numbers(values: Mapping[str, Any], order: Sequence[str] | None = None) -> dict[str, float]:
        keys = order if order is not None else list(values)
        return {k: _number(values[k]) for k in keys}

    return ReplicationKpis(
        phases={p: numbers(doc["phases"][p], kpis) for p in phases},
        years={int(y): numbers(doc["years"][y], YEAR_KPIS) for y in sorted(doc["years"], key=int)},
        sites={p: dict(sorted((index[sid], numbers(v, SITE_KPIS)) for sid, v in doc["sites"][p].items()))
               for p in phases},
        departements={p: {d: numbers(doc["departements"][p][d], DEPARTEMENT_KPIS)
                          for d in sorted(doc["departements"][p])} for p in phases},
    )


def load_replications(folder: str | Path, site_ids: Sequence[str], n_rep: int, phases: Sequence[str],
                      kpis: Sequence[str]) -> dict[int, ReplicationKpis]:
    """The replications a run folder holds (``replications/NNNN.json`` for N < ``n_rep``).

    Raises:
        TwinInputError: a replication file that is not valid JSON or not of this scenario.
    """
    out: dict[int, ReplicationKpis] = {}
    directory = Path(folder) / REPLICATION_DIR
    for i in range(n_rep):
        file = directory / f"{i:04d}.json"
        if not file.is_file():
            continue
        try:
            out[i] = replication_from_json(json.loads(file.read_text(encoding="utf-8")), site_ids, phases, kpis)
        except (ValueError, KeyError, TypeError) as exc:
            raise TwinInputError(f"{file.name} is not a replication of this scenario ({exc})",
                                 path=str(directory)) from None
    return out


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise TwinInputError(f"missing {path.name}: not a complete twin run folder (was the run interrupted?)",
                             path=str(path.parent))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TwinInputError(f"{path.name} is not valid JSON ({exc})", path=str(path.parent)) from None


def read_run(folder: str | Path) -> RunData:
    """Read a run folder written by ``twin run``.

    Raises:
        TwinInputError: the folder does not exist, or a file is missing or malformed.
    """
    path = Path(folder)
    if not path.is_dir():
        raise TwinInputError("run folder not found", path=str(path))
    manifest = _read_json(path / MANIFEST)
    phases = _read_json(path / PHASES)
    summary_doc = _read_json(path / SUMMARY)
    if not isinstance(manifest, dict):
        raise TwinInputError(f"{MANIFEST} is not a JSON object", path=str(path))
    if not isinstance(phases, list) or not all(isinstance(p, dict) and "name" in p for p in phases):
        raise TwinInputError(f"{PHASES} is not a list of phases with names", path=str(path))
    if not isinstance(summary_doc, dict):
        raise TwinInputError(f"{SUMMARY} is not a JSON object", path=str(path))
    try:
        kpis = list(summary_doc["kpis"])
        summary = dict(summary_doc["summary"])
    except (KeyError, TypeError):
        raise TwinInputError(f"{SUMMARY} lacks 'kpis' or 'summary'", path=str(path)) from None
    rep_path = path / REPLICATIONS
    if not rep_path.is_file():
        raise TwinInputError(f"missing {REPLICATIONS}: not a complete twin run folder", path=str(path))
    replications: dict[str, dict[str, list[float]]] = {}
    try:
        _read_replications(rep_path, replications)
    except UnicodeDecodeError:
        raise TwinInputError(f"{REPLICATIONS} is not UTF-8 text", path=str(path)) from None
    except csv.Error as exc:
        raise TwinInputError(f"{REPLICATIONS} is not a readable CSV file ({exc})", path=str(path)) from None
    return RunData(path=path, manifest=manifest, phases=phases, kpis=kpis, summary=summary, replications=replications,
                   by_year=dict(summary_doc.get("by_year") or {}),
                   by_departement=dict(summary_doc.get("by_departement") or {}))


def _read_replications(rep_path: Path, replications: dict[str, dict[str, list[float]]]) -> None:
    path = rep_path.parent
    with rep_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["replication", "phase", "kpi", "value"]:
            raise TwinInputError(f"{REPLICATIONS} has unexpected columns {reader.fieldnames}", path=str(path))
        for row in reader:
            line_no = reader.line_num
            if None in row.values() or None in row:
                raise TwinInputError(f"{REPLICATIONS} line {line_no}: expected 4 fields", path=str(path))
            try:
                value = float(row["value"]) if row["value"] != "" else math.nan
            except ValueError:
                raise TwinInputError(f"{REPLICATIONS} line {line_no}: value {row['value']!r} is not a number",
                                     path=str(path)) from None
            replications.setdefault(row["phase"], {}).setdefault(row["kpi"], []).append(value)
