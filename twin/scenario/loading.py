"""Loading scenarios: YAML (parsed once, with line numbers), the data files a scenario names, place
resolution, and writing scenarios back as YAML. The I/O edge of :mod:`twin.scenario.spec`.

Two entry points build a :class:`twin.scenario.spec.LoadedScenario`:

* :func:`scenario_from_data` - from data in memory (a mapping as the YAML would give), validated in full;
  tests and the planners' what-ifs build scenarios with it without writing files (as spopt's
  ``from_cost_matrix``);
* :func:`load_scenario` - from a YAML file; it wraps :func:`scenario_from_data` (as spopt's
  ``from_geodataframe`` wraps ``from_cost_matrix``) and adds line numbers to the errors.

Errors are :class:`twin.errors.ScenarioError`: one paragraph naming the file, the line (from YAML), the
field path and the value. YAML is read by :mod:`twin.scenario.yaml12`: YAML 1.2 core-schema values,
ambiguous plain scalars (``010``, ``1:30``, ``yes``) refused, bounded size, nothing executed, duplicate
keys refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twin.datafiles import read_calibration_csv, read_communes
from twin.errors import ScenarioError, TwinInputError
from twin.quality import CalibrationTable
from twin.scenario.spec import Commune, CrossReferenceError, LoadedScenario, Scenario, resolve_scenario
from twin.scenario.yaml12 import (
    MAX_YAML_BYTES,
    MAX_YAML_NODES,
    ambiguity,
    core_tag,
    format_loc,
    parse_yaml_text,
    read_yaml_file,
)
from twin.vocabulary import LATEST_DATE

#: Largest scenario file read, bytes (see :mod:`twin.scenario.yaml12`, which reads it).
MAX_SCENARIO_BYTES = MAX_YAML_BYTES

# --------------------------------------------------------------------------------------------------
# Messages with line numbers


def _line_for(loc: tuple[Any, ...], lines: dict) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(path: str | Path, loc: tuple[Any, ...], value: Any, message: str, lines: dict) -> ScenarioError:
    line = _line_for(loc, lines)
    where = f"line {line}, " if line else ""
    return ScenarioError(f"{where}field {format_loc(loc)} = {_short(value)}: {message}", path=str(path))



def _validation_error(exc: ValidationError, path: str, lines: dict) -> ScenarioError:
    """The first (most telling) pydantic error as one paragraph naming field, value and line."""
    errors = exc.errors(include_url=False)
    # an unknown key is usually a misspelt one, the root of a "missing field" error: report it first
    err = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, CrossReferenceError):
        return _error(path, ctx_error.loc, ctx_error.value, str(ctx_error), lines)
    loc = tuple(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; twin schema lists the fields)"
    more = len(errors) - 1
    extra = f" ({more} more error{'s' if more > 1 else ''} after this one)" if more else ""
    if err["type"] == "missing":
        line = _line_for(loc, lines)
        where = f"line {line}, " if line else ""
        return ScenarioError(f"{where}field {format_loc(loc)} is missing: it is required{extra}", path=path)
    return _error(path, loc, err.get("input"), message + extra, lines)


def parse_scenario_text(text: str, path: Path) -> tuple[Scenario, dict]:
    """Parse and validate scenario YAML text (no data file is read). Returns the Scenario and the line
    index.

    Raises:
        ScenarioError: empty or non-YAML text, a non-mapping document, or any validation error
            (the first one, with field path, value and line).
    """
    data, lines = parse_yaml_text(text, path)
    return validate_scenario_data(data, str(path), lines), lines


def validate_scenario_data(data: Any, label: str = "<scenario>", lines: dict | None = None) -> Scenario:
    """Validate scenario data (a mapping as YAML gives it) into a :class:`Scenario`.

    Raises:
        ScenarioError: not a mapping, or the first validation error with its field path (and line, when
            ``lines`` comes from the YAML).
    """
    if data is None:
        raise ScenarioError("the scenario file is empty (only comments or blank lines)", path=label)
    if not isinstance(data, Mapping):
        raise ScenarioError(f"a scenario is a YAML mapping (name:, region:, ...), got {type(data).__name__}",
                            path=label)
    try:
        return Scenario.model_validate(data)
    except RecursionError:
        raise ScenarioError("the YAML nests too deeply or an alias refers to itself", path=label) from None
    except ValidationError as exc:
        raise _validation_error(exc, label, lines or {}) from None


def data_sha256(data: Mapping[str, Any]) -> str:
    """SHA-256 of scenario data in memory: of its canonical JSON (sorted keys, dates as text)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def scenario_from_data(data: Mapping[str, Any], *, base_dir: str | Path = ".",
                       communes: Sequence[Commune] | None = None,
                       calibration: CalibrationTable | None = None,
                       path: str | Path | None = None, sha256: str | None = None,
                       lines: dict | None = None) -> LoadedScenario:
    """A :class:`LoadedScenario` from data in memory: validated, data files read, places resolved.

    Args:
        data: the scenario as YAML would give it (``name``, ``region``, ``simulation``, ...).
        base_dir: folder against which data-file names (``region.communes_file``,
            ``quality.calibration_file``) are resolved.
        communes: the region's communes, when already in memory (then ``region.communes_file`` is not
            read).
        calibration: the calibration table, when already in memory (then ``quality.calibration_file`` is
            not read).
        path, sha256, lines: the file the data came from, its digest and its line index
            (:func:`load_scenario` passes them); by default the scenario is labelled as in memory and
            its digest is :func:`data_sha256`.

    Raises:
        ScenarioError: validation errors, missing or malformed data files, unknown line offers or
            departements, places outside the region; the message names the field path and the value.
    """
    base = Path(base_dir)
    lines = lines or {}
    label = str(path) if path is not None else "scenario (in memory)"
    spec = validate_scenario_data(data, label, lines)
    if path is None:
        label = f"scenario {spec.name!r} (in memory)"
    if communes is None:
        communes_path = base / spec.region.communes_file
        if not communes_path.is_file():
            why = "not a regular file" if communes_path.exists() else "file not found"
            raise _error(label, ("region", "communes_file"), spec.region.communes_file,
                         f"{why}: {communes_path}", lines)
        try:
            communes = read_communes(communes_path)
        except TwinInputError as exc:
            raise _error(label, ("region", "communes_file"), spec.region.communes_file, str(exc), lines) from None
    calibration_path = base / spec.quality.calibration_file if spec.quality.calibration_file else None
    if calibration is None and calibration_path is not None:
        if not calibration_path.is_file():
            raise _error(label, ("quality", "calibration_file"), spec.quality.calibration_file,
                         f"file not found: {calibration_path}", lines)
        if spec.quality.model == "calibration":
            try:
                calibration = read_calibration_csv(calibration_path)
            except TwinInputError as exc:
                raise _error(label, ("quality", "calibration_file"), spec.quality.calibration_file, str(exc),
                             lines) from None
    try:
        return resolve_scenario(spec, tuple(communes), path=Path(path) if path is not None else None,
                                sha256=sha256 if sha256 is not None else data_sha256(data), base_dir=base,
                                calibration_path=calibration_path, calibration=calibration)
    except CrossReferenceError as exc:
        raise _error(label, exc.loc, exc.value, str(exc), lines) from None


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read, validate and resolve a scenario file.

    Args:
        path: the YAML scenario file. Data files it names are resolved relative to its folder.

    Returns:
        A :class:`LoadedScenario` with communes read and site/office coordinates resolved.

    Raises:
        ScenarioError: missing/unreadable file, invalid YAML, validation errors, missing or malformed
            data files, unknown line offers, places outside the region. The message names the file, the
            field path, the value and the line number where known.
    """
    scenario_path = Path(path)
    data, lines, raw = read_yaml_file(scenario_path, "scenario")
    return scenario_from_data(data, base_dir=scenario_path.parent, path=scenario_path,
                              sha256=hashlib.sha256(raw).hexdigest(), lines=lines)


# --------------------------------------------------------------------------------------------------
# Scenarios back to data and YAML


def scenario_data(loaded_or_spec: LoadedScenario | Scenario) -> dict[str, Any]:
    """The scenario as plain YAML-ready data (dates as ISO strings), with only the fields the file set,
    so defaults stay defaults. Mutating the result does not touch the scenario."""
    spec = loaded_or_spec.spec if isinstance(loaded_or_spec, LoadedScenario) else loaded_or_spec
    return spec.model_dump(mode="json", exclude_unset=True)


def with_data(loaded: LoadedScenario, data: Mapping[str, Any]) -> LoadedScenario:
    """``loaded`` with its spec replaced by ``data``, validated and resolved in memory against the same
    region, data folder and calibration table (for what-ifs: nothing is read or written).

    Raises:
        ScenarioError: ``data`` does not validate or resolve (naming the field).
    """
    return scenario_from_data(data, base_dir=loaded.base_dir, communes=loaded.communes,
                              calibration=loaded.calibration)


def extended_until(loaded: LoadedScenario, year: int) -> LoadedScenario:
    """The scenario simulated through 31 December ``year`` as the status quo: nothing changes after its
    last phase (the last phase runs on), and each demand driver holds its last value in the added years.

    Raises:
        ScenarioError: ``year`` before the scenario's last simulated year, or after the latest date a
            scenario may use.
    """
    end = loaded.spec.simulation.end_date
    if year < end.year:
        raise ScenarioError(f"--until {year}: the scenario already simulates through {end.isoformat()}",
                            path=loaded.label)
    if year > LATEST_DATE.year:
        raise ScenarioError(f"--until {year}: after {LATEST_DATE.year}", path=loaded.label)
    data = scenario_data(loaded)
    data["simulation"] = {**data["simulation"], "end_date": f"{year}-12-31"}
    drivers = data.get("demand", {}).get("drivers") or []
    for driver in drivers:
        values = {int(k): v for k, v in driver["values"].items()}
        last = max(values)
        for y in range(last + 1, year + 1):
            values[y] = values[last]
        driver["values"] = values
    extended = with_data(loaded, data)
    return dataclasses.replace(extended, path=loaded.path, sha256=loaded.sha256)


class _Dumper(yaml.SafeDumper):
    """yaml.SafeDumper writing multi-line strings as literal blocks (readable descriptions), and quoting
    text that YAML 1.2 would read as another type or that :mod:`twin.scenario.yaml12` refuses as
    ambiguous (``09``, ``0o17``, ``1e3``), so that twin reads back what it wrote."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value.strip("\n"):
        style = "|"
    elif core_tag(value) != "tag:yaml.org,2002:str" or ambiguity(value):
        style = "'"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _relative_to(target_dir: Path, source_dir: Path, rel: str) -> str:
    path = (source_dir / rel).resolve()
    return Path(os.path.relpath(path, target_dir.resolve())).as_posix()


def scenario_yaml_text(data: Mapping[str, Any], source_dir: Path, target_dir: Path,
                       header: Sequence[str] = ()) -> str:
    """Scenario ``data`` as YAML text for a file in ``target_dir``: data-file names
    (``region.communes_file``, ``quality.calibration_file``), relative to ``source_dir`` in ``data``, are
    re-expressed relative to ``target_dir``; ``header`` lines become ``#`` comments (wrapped)."""
    data = dict(data)
    region = dict(data["region"])
    region["communes_file"] = _relative_to(target_dir, source_dir, region["communes_file"])
    data["region"] = region
    if isinstance(data.get("quality"), dict) and data["quality"].get("calibration_file"):
        quality = dict(data["quality"])
        quality["calibration_file"] = _relative_to(target_dir, source_dir, quality["calibration_file"])
        data["quality"] = quality
    comment = "".join("# " + wrapped + "\n" for line in header
                      for wrapped in textwrap.wrap(line, 106, subsequent_indent="  ") or [""])
    return comment + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110,
                               default_flow_style=None)


__all__ = [
    "MAX_SCENARIO_BYTES",
    "MAX_YAML_NODES",
    "data_sha256",
    "extended_until",
    "load_scenario",
    "parse_scenario_text",
    "parse_yaml_text",
    "scenario_data",
    "scenario_from_data",
    "scenario_yaml_text",
    "validate_scenario_data",
    "with_data",
]
