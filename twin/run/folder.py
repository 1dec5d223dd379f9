"""Run folders: writing them atomically, replication by replication, and reading them back.

A run folder written by ``twin run`` holds:

- ``manifest.json``: scenario file and its SHA-256, seed, replications requested and done, status
  (``running``, ``complete``, ``interrupted``), package versions, git commit, start and end times (UTC);
- ``replications.csv``: one row per replication x phase x KPI (``replication,phase,kpi,value``; an empty
  value is an undefined KPI), rewritten atomically after each replication, so an interrupted run keeps
  every replication it finished;
- ``summary.json``: {"phases": [...], "kpis": [...], "summary": {phase: {kpi: {mean, ci95_half_width, n}}}}
  with no timestamps, so the same scenario and seed give the same bytes;
- ``phases.json``: each phase's name and dates (for aligning phases across runs);
- ``plots/``: PNG rollout plots.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.run.atomic import atomic_write_json, atomic_write_text
from twin.run.outputs import prepare_output_folder

MANIFEST = "manifest.json"
REPLICATIONS = "replications.csv"
SUMMARY = "summary.json"
PHASES = "phases.json"


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


def replications_csv(rows: Mapping[int, Mapping[str, Mapping[str, float]]], kpis: Sequence[str]) -> str:
    """The replications.csv text for KPI dicts keyed by replication number (written in that order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["replication", "phase", "kpi", "value"])
    for rep in sorted(rows):
        for phase, values in rows[rep].items():
            for kpi in kpis:
                value = values[kpi]
                writer.writerow([rep, phase, kpi, "" if math.isnan(value) else repr(float(value))])
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

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Write ``manifest.json``."""
        atomic_write_json(self.path / MANIFEST, dict(manifest))

    def write_phases(self, phases: Sequence[Mapping[str, Any]]) -> None:
        """Write ``phases.json`` (name, start_date, end_date per phase)."""
        atomic_write_json(self.path / PHASES, list(phases))

    def write_replications(self, rows: Mapping[int, Mapping[str, Mapping[str, float]]], kpis: Sequence[str]) -> None:
        """Rewrite ``replications.csv`` with every replication finished so far."""
        atomic_write_text(self.path / REPLICATIONS, replications_csv(rows, kpis))

    def write_summary(self, phases: Sequence[str], kpis: Sequence[str], summary: Mapping[str, Any]) -> None:
        """Write ``summary.json``."""
        atomic_write_json(self.path / SUMMARY, {"phases": list(phases), "kpis": list(kpis), "summary": summary})


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
    """

    path: Path
    manifest: dict[str, Any]
    phases: list[dict[str, Any]]
    kpis: list[str]
    summary: dict[str, dict[str, dict[str, Any]]]
    replications: dict[str, dict[str, list[float]]]


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
    return RunData(path=path, manifest=manifest, phases=phases, kpis=kpis, summary=summary, replications=replications)


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
