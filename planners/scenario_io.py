"""Scenarios in and out of the planners: placement problems built from a scenario, plans written back.

A planner proposes, the twin judges: every plan is written as a scenario file that ``twin run`` accepts.
This module holds the plumbing shared by the placement, line-sizing and upgrade planners:

* :func:`placement_problem_from_scenario` - demand points, candidate sites and road distances of a
  loaded scenario as a :class:`planners.placement.PlacementProblem` (with the mapping back to communes
  and existing kiosks, :class:`ScenarioPlacement`);
* :func:`apply_placement` - the scenario data (a dict) with the planner's user kiosks in place;
* :func:`scenario_data`, :func:`loaded_with_data`, :func:`write_scenario` - a scenario as plain data,
  re-validated in memory, and written as YAML (a ``yaml.SafeDumper`` writing multi-line strings as
  literal blocks, atomically) with data-file paths rewritten relative to the new file, then re-loaded
  with :func:`twin.scenario.load_scenario` as a check.

How a placement is written (``mode``), and why:

* ``"final"`` (default): the planner's network replaces the user kiosks at the start of the scenario's
  LAST phase (same date, same name). Every earlier phase is the historical one, so ``twin compare``
  (which aligns phases by date) puts the historical final network and the planned one side by side in
  the same window, and the earlier phases act as a control (identical up to random noise). Existing user
  kiosks the planner does not keep are removed in that phase (or simply not added, if that phase added
  them); the planner's new kiosks are added in it.
* ``"append"``: a new phase named ``planned`` starts on ``start_date`` (after the last phase), adds the
  new kiosks and removes the user kiosks not kept; ``simulation.end_date`` is extended to one year after
  ``start_date`` minus a day when it ends earlier. Useful to see the change inside one run.
* ``"history"`` (``--replace-history``): same phases and dates, but the planner's user kiosks are all
  installed from the FIRST phase, and the historical user-kiosk additions/removals are dropped (expert
  kiosks and agents unchanged; upgrades kept only for kept kiosks). Shows what the planned network would
  have delivered over the whole rollout.

Expert kiosks, services and every other section are copied unchanged. Site ids of new kiosks are the
slugified commune names (``Le Puy-en-Velay`` -> ``le-puy-en-velay``), made unique with ``-2``, ``-3``...
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planners.dates import add_years
from planners.placement import PlacementProblem, PlacementResult
from twin.errors import TwinInputError
from twin.region import road_distance_matrix_km
from twin.run.atomic import atomic_write_text
from twin.run.outputs import check_output_file
from twin.scenario.loading import load_scenario, scenario_data, scenario_yaml_text, with_data
from twin.scenario.spec import LoadedScenario, Scenario

__all__ = [
    "DEFAULT_MIN_POPULATION",
    "REPORT_RADIUS_KM",
    "SAME_PLACE_KM",
    "Candidate",
    "PlacementPlan",
    "ScenarioPlacement",
    "apply_placement",
    "installed_after",
    "loaded_with_data",
    "median_user_loop_length_m",
    "placement_header",
    "placement_problem_from_scenario",
    "plan_placement",
    "read_candidate_file",
    "scenario_data",
    "slugify",
    "unique_id",
    "write_scenario",
]

#: Default population threshold for a commune to be a candidate kiosk site (inhabitants). A town hall
#: of a commune of about 1,000 inhabitants is the smallest that usually has a staffed reception all
#: week (CHOICE; ``--min-population`` changes it).
DEFAULT_MIN_POPULATION = 1000

#: An existing kiosk within this great-circle distance of a commune's coordinates stands in that
#: commune: the commune is not offered again as a separate candidate, km.
SAME_PLACE_KM = 0.5

_MODES = ("final", "append", "history")


# --------------------------------------------------------------------------------------------------
# Scenario state helpers


def installed_after(spec: Scenario, n_phases: int | None = None) -> list[str]:
    """Site ids installed after applying the first ``n_phases`` phases (default: all), in
    installation order. ``n_phases=0`` gives no site."""
    installed: dict[str, None] = {}
    for phase in spec.phases[: len(spec.phases) if n_phases is None else max(0, n_phases)]:
        for sid in phase.add:
            installed[sid] = None
        for sid in phase.remove:
            installed.pop(sid, None)
    return list(installed)


def slugify(name: str) -> str:
    """A site id from a name: ASCII, lower case, runs of other characters as ``-``
    (``"Saint-Germain-l'Herm"`` -> ``"saint-germain-l-herm"``). Never empty (``"site"``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or "site"


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever is not in ``taken``; adds it to ``taken``."""
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}-{k}"
    taken.add(candidate)
    return candidate


def loaded_with_data(loaded: LoadedScenario, data: dict[str, Any]) -> LoadedScenario:
    """``loaded`` with its spec replaced by ``data``, validated and resolved in memory
    (:func:`twin.scenario.loading.with_data`), for what-ifs.

    Raises:
        TwinInputError: ``data`` does not validate (a planner bug or an impossible request).
    """
    return with_data(loaded, data)


#: Text that the first line of every scenario written by ``twin plan`` holds.
PLAN_MARKER = "written by `twin plan"


def _inputs(source: LoadedScenario) -> list[Path]:
    inputs = [source.base_dir / source.spec.region.communes_file]
    if source.path is not None:
        inputs.append(source.path)
    if source.calibration_path is not None:
        inputs.append(source.calibration_path)
    return inputs


def check_plan_target(out: Path, source: LoadedScenario, force: bool = False) -> None:
    """Never overwrite the input scenario or a file it reads; overwrite an earlier plan only with
    ``force`` (:func:`twin.run.outputs.check_output_file`).

    Raises:
        TwinInputError: naming the output path and why it is refused.
    """
    resolved = out.resolve()
    if any(resolved == p.resolve() for p in _inputs(source)):
        raise TwinInputError("--out names the input scenario or a data file it reads: choose another file",
                             path=str(out))
    check_output_file(out, marker=PLAN_MARKER.encode(), force=force, head_bytes=200)


def write_scenario(data: dict[str, Any], source: LoadedScenario, out_path: str | Path,
                   header: Sequence[str] = (), force: bool = False) -> LoadedScenario:
    """Write scenario ``data`` as YAML to ``out_path`` atomically and load it back as a check.

    Data files (``region.communes_file``, ``quality.calibration_file``) are re-expressed relative to the
    new file's folder (:func:`twin.scenario.loading.scenario_yaml_text`), so the output may live anywhere.
    ``header`` lines are written as ``#`` comments.

    Returns:
        The written scenario, loaded with :func:`twin.scenario.loading.load_scenario`.

    Raises:
        TwinInputError: the target is refused (:func:`check_plan_target`) or the folder cannot be
            written; ScenarioError if the written file does not load (a planner bug: the file is left in
            place for inspection).
    """
    out = Path(out_path)
    check_plan_target(out, source, force=force)
    text = scenario_yaml_text(data, source.base_dir, out.parent, header)
    try:
        atomic_write_text(out, text)
    except OSError as exc:
        raise TwinInputError(f"cannot write the planned scenario: {exc.strerror}", path=str(out)) from None
    return load_scenario(out)


# --------------------------------------------------------------------------------------------------
# Placement problem from a scenario


@dataclass(frozen=True)
class Candidate:
    """A candidate user-kiosk site.

    Attributes:
        label: display name (commune name, or the existing site's id and commune).
        lat, lon: coordinates, degrees.
        commune_id: the commune it stands in (None for an existing site placed by lat/lon away from
            every commune).
        existing_site: id of the user kiosk installed there at the reference point, or None (new site).
        population: inhabitants of that commune (0 if none).
    """

    label: str
    lat: float
    lon: float
    commune_id: str | None
    existing_site: str | None
    population: int


@dataclass(frozen=True)
class ScenarioPlacement:
    """A scenario's placement problem and the mapping from its indices back to the scenario.

    Attributes:
        problem: the :class:`PlacementProblem`: cost (n_communes, n_candidates) road km (great-circle x
            the scenario's ``region.circuity_factor``, :func:`twin.region.road_distance_matrix_km`),
            weights = commune populations, fixed sites = the existing kiosks when ``fix_existing``.
        candidates: the candidate sites, one per column.
        existing: user kiosks installed at the reference point (after the last phase), in order.
    """

    problem: PlacementProblem
    candidates: tuple[Candidate, ...]
    existing: tuple[str, ...]

    def chosen_existing(self, result: PlacementResult) -> list[str]:
        """Existing kiosks the solution keeps."""
        return [self.candidates[j].existing_site for j in result.sites
                if self.candidates[j].existing_site is not None]  # type: ignore[misc]

    def chosen_new(self, result: PlacementResult) -> list[Candidate]:
        """New sites the solution opens."""
        return [self.candidates[j] for j in result.sites if self.candidates[j].existing_site is None]


def read_candidate_file(path: str | Path, loaded: LoadedScenario) -> list[str]:
    """Commune ids of a candidate list file: one commune id or unique commune name per line;
    blank lines and ``#`` comments are ignored.

    Raises:
        TwinInputError: missing/unreadable file, an unknown or ambiguous commune (naming the line),
            or a file listing no commune.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TwinInputError("candidate file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TwinInputError(f"cannot read candidate file: {exc}", path=str(p)) from None
    by_id = {c.commune_id: c for c in loaded.communes}
    by_name: dict[str, list] = {}
    for c in loaded.communes:
        by_name.setdefault(c.name.casefold(), []).append(c)
    out: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text in by_id:
            cid = text
        else:
            matches = by_name.get(text.casefold(), [])
            if not matches:
                raise TwinInputError(f"line {lineno}: no commune with id or name {text!r} in the region",
                                     path=str(p))
            if len(matches) > 1:
                ids = ", ".join(f"{c.commune_id} ({c.departement_code})" for c in matches)
                raise TwinInputError(f"line {lineno}: ambiguous commune name {text!r}; use one of the ids {ids}",
                                     path=str(p))
            cid = matches[0].commune_id
        if cid not in out:
            out.append(cid)
    if not out:
        raise TwinInputError("the candidate file lists no commune", path=str(p))
    return out


def placement_problem_from_scenario(
    loaded: LoadedScenario,
    min_population: int = DEFAULT_MIN_POPULATION,
    candidate_communes: Iterable[str] | None = None,
    fix_existing: bool = False,
) -> ScenarioPlacement:
    """Build the user-kiosk placement problem of a scenario.

    Demand points: every commune of the region, weight = population. Candidates: the user kiosks
    installed after the scenario's last phase (keeping a kiosk is always an option), then the communes
    with ``population >= min_population`` (or the communes of ``candidate_communes``) that host no such
    kiosk (none within :data:`SAME_PLACE_KM`), in the communes file's order. Costs: road km,
    :func:`twin.region.road_distance_matrix_km` with the scenario's circuity factor (the twin's own
    distances). Expert kiosks are not placed.

    Args:
        loaded: a loaded scenario.
        min_population: population threshold of candidate communes (inhabitants, >= 0).
        candidate_communes: commune ids to use as new candidate sites instead of the threshold rule.
        fix_existing: force the existing user kiosks open (p then counts them).

    Returns:
        :class:`ScenarioPlacement` with an (n_communes, n_candidates) problem.

    Raises:
        TwinInputError: negative threshold, unknown commune ids, no candidate at all.
    """
    if isinstance(min_population, bool) or not isinstance(min_population, (int, np.integer)) or min_population < 0:
        raise TwinInputError(f"min_population must be an integer >= 0, got {min_population!r}")
    spec = loaded.spec
    by_id = {c.commune_id: c for c in loaded.communes}
    commune_latlon = np.array([(c.lat, c.lon) for c in loaded.communes])
    population = np.array([c.population for c in loaded.communes], dtype=float)
    existing = [sid for sid in installed_after(spec) if spec.site(sid).kind == "user"]

    candidates: list[Candidate] = []
    hosted: set[str] = set()
    if existing:
        site_ll = np.array([loaded.site_latlon[s] for s in existing])
        crow = road_distance_matrix_km(site_ll, commune_latlon, 1.0)  # (n_existing, n_communes)
        for k, sid in enumerate(existing):
            j = int(crow[k].argmin())
            near = crow[k, j] <= SAME_PLACE_KM
            commune = loaded.communes[j] if near else None
            if commune is not None:
                hosted.add(commune.commune_id)
            label = f"{sid} ({commune.name})" if commune is not None else sid
            candidates.append(Candidate(label, float(site_ll[k, 0]), float(site_ll[k, 1]),
                                        commune.commune_id if commune else None, sid,
                                        commune.population if commune else 0))
    if candidate_communes is None:
        pool = [c for c in loaded.communes if c.population >= min_population]
    else:
        pool = []
        for cid in candidate_communes:
            if cid not in by_id:
                raise TwinInputError(f"candidate commune id {cid!r} is not in the region's communes file")
            pool.append(by_id[cid])
    for c in pool:
        if c.commune_id not in hosted:
            hosted.add(c.commune_id)
            candidates.append(Candidate(c.name, c.lat, c.lon, c.commune_id, None, c.population))
    if not candidates:
        raise TwinInputError(
            f"no candidate site: no installed user kiosk and no commune with population >= {min_population}"
        )
    cand_ll = np.array([(c.lat, c.lon) for c in candidates])
    cost = road_distance_matrix_km(commune_latlon, cand_ll, spec.region.circuity_factor)
    fixed = [j for j, c in enumerate(candidates) if c.existing_site is not None] if fix_existing else []
    problem = PlacementProblem.from_cost_matrix(cost, population, fixed_sites=fixed)
    return ScenarioPlacement(problem=problem, candidates=tuple(candidates), existing=tuple(existing))


# --------------------------------------------------------------------------------------------------
# Writing a placement back


def _new_site(cand: Candidate, site_id: str, generation: int, services: list[str],
              line: dict[str, Any]) -> dict[str, Any]:
    site: dict[str, Any] = {"id": site_id, "kind": "user", "place": {"commune": cand.commune_id},
                            "generation": generation}
    if generation == 1:
        site["services"] = services
    site["line"] = line
    return site


def apply_placement(
    loaded: LoadedScenario,
    placement: ScenarioPlacement,
    result: PlacementResult,
    new_site_line: dict[str, Any],
    generation: int = 2,
    gen1_services: Sequence[str] = (),
    mode: str = "final",
    start_date: dt.date | None = None,
    name_suffix: str = "planned",
) -> tuple[dict[str, Any], list[str]]:
    """The scenario data with the planner's user kiosks in place (see the module docstring for modes).

    Args:
        loaded: the input scenario.
        placement: its placement problem (:func:`placement_problem_from_scenario`).
        result: the solution; its sites index ``placement.candidates``.
        new_site_line: the ``line`` mapping given to new kiosks (offer, loop_length_m).
        generation: generation of new kiosks (1 or 2).
        gen1_services: services of new generation-1 kiosks (at most 6).
        mode: ``"final"``, ``"append"`` or ``"history"``.
        start_date: ``"append"`` only: first day of the ``planned`` phase (default: one year after the
            last phase's start). Must be after the last phase's start.
        name_suffix: appended to the scenario name.

    Returns:
        (scenario data, ids of the new sites in candidate order).

    Raises:
        TwinInputError: unknown mode, bad generation, a start date not after the last phase.
    """
    if mode not in _MODES:
        raise TwinInputError(f"unknown placement output mode {mode!r}; use one of {', '.join(_MODES)}")
    if generation not in (1, 2):
        raise TwinInputError(f"generation must be 1 or 2, got {generation!r}")
    if generation == 1 and not gen1_services:
        raise TwinInputError("new generation-1 kiosks need the services they reach")
    spec = loaded.spec
    data = scenario_data(loaded)
    taken = {s.id for s in spec.sites}
    new_ids: list[str] = []
    for cand in sorted(placement.chosen_new(result), key=lambda c: slugify(c.label)):
        sid = unique_id(slugify(cand.label), taken)
        new_ids.append(sid)
        data.setdefault("sites", []).append(_new_site(cand, sid, generation, list(gen1_services),
                                                      dict(new_site_line)))
    keep = set(placement.chosen_existing(result))
    user_ids = {s.id for s in spec.sites if s.kind == "user"}
    phases = data["phases"]
    last_start = spec.phases[-1].start_date

    if mode == "final":
        before = [s for s in installed_after(spec, len(spec.phases) - 1) if s in user_ids]
        last = phases[-1]
        adds = [s for s in last.get("add", []) if s not in user_ids or s in keep] + new_ids
        removes = [s for s in last.get("remove", []) if s not in user_ids or s not in keep]
        removes += [s for s in before if s not in keep]
        ups = [s for s in last.get("upgrade", []) if s in keep]
        _set_lists(last, adds, ups, removes)
    elif mode == "append":
        start = start_date or add_years(last_start, 1)
        if start <= last_start:
            raise TwinInputError(
                f"start date {start.isoformat()} must be after the last phase's start "
                f"({last_start.isoformat()}); use the default mode to replace the last phase's kiosks"
            )
        removes = [s for s in placement.existing if s not in keep]
        phase: dict[str, Any] = {"name": unique_id("planned", {p["name"] for p in phases}),
                                 "start_date": start.isoformat()}
        _set_lists(phase, new_ids, [], removes)
        phases.append(phase)
        end = add_years(start, 1) - dt.timedelta(days=1)
        if spec.simulation.end_date < end:
            data["simulation"]["end_date"] = end.isoformat()
    else:  # history
        for k, ph in enumerate(phases):
            adds = [s for s in ph.get("add", []) if s not in user_ids]
            if k == 0:
                adds = list(dict.fromkeys(
                    [s for s in placement.existing if s in keep] + new_ids + adds))
            ups = [s for s in ph.get("upgrade", []) if s in keep]
            removes = [s for s in ph.get("remove", []) if s not in user_ids]
            _set_lists(ph, adds, ups, removes)

    referenced = {s for ph in phases for key in ("add", "upgrade", "remove") for s in ph.get(key, [])}
    originally_referenced = {s for ph in spec.phases for s in (*ph.add, *ph.upgrade, *ph.remove)}
    data["sites"] = [s for s in data.get("sites", [])
                     if s["id"] in referenced or s["id"] not in originally_referenced]
    data["name"] = f"{spec.name}-{name_suffix}"
    return data, new_ids


def _set_lists(phase: dict[str, Any], adds: list[str], ups: list[str], removes: list[str]) -> None:
    for key, values in (("add", adds), ("upgrade", ups), ("remove", removes)):
        if values:
            phase[key] = list(dict.fromkeys(values))
        else:
            phase.pop(key, None)


def median_user_loop_length_m(loaded: LoadedScenario, default_m: float = 2500.0) -> float:
    """Median loop length of the scenario's user kiosks, m (``default_m`` if it has none): the
    ASSUMED loop length of a new site, whose real line is unknown until the operator surveys it."""
    lengths = [s.line.loop_length_m for s in loaded.spec.sites if s.kind == "user"]
    return float(statistics.median(lengths)) if lengths else float(default_m)


# --------------------------------------------------------------------------------------------------
# The whole placement planner


#: Radius of the coverage figure reported with every placement (the twin's KPI
#: ``population_within_15km``), km.
REPORT_RADIUS_KM = 15.0


@dataclass(frozen=True)
class PlacementPlan:
    """A placement plan and the scenario that carries it.

    Attributes:
        result: the solver's :class:`PlacementResult` (objective, bound, gap, time).
        placement: the problem and its candidates.
        data: the planned scenario as plain data (write it with :func:`write_scenario`).
        kept: existing user kiosks kept.
        removed: existing user kiosks not kept (removed, or not added, in the planned phase).
        new_sites: ids of the new kiosks, with their candidate.
        new_site_line: the line given to new kiosks (offer, loop_length_m).
        line_note: how that line was chosen (an assumption to show the user).
        population_within_15km_before: population with an existing user kiosk within
            :data:`REPORT_RADIUS_KM` road km (the twin's KPI for the last phase), inhabitants.
        population_within_15km_after: the same for the planned network, inhabitants.
        mode: ``"final"``, ``"append"`` or ``"history"``.
    """

    result: PlacementResult
    placement: ScenarioPlacement
    data: dict[str, Any]
    kept: tuple[str, ...]
    removed: tuple[str, ...]
    new_sites: tuple[tuple[str, Candidate], ...]
    new_site_line: dict[str, Any]
    line_note: str
    population_within_15km_before: float
    population_within_15km_after: float
    mode: str


def _gen1_services(loaded: LoadedScenario, limit: int) -> list[str]:
    """The ``limit`` services of largest regional need (need per capita x population served)."""
    pop_by_dep: dict[str, float] = {}
    for c in loaded.communes:
        pop_by_dep[c.departement_code] = pop_by_dep.get(c.departement_code, 0.0) + c.population
    total = sum(pop_by_dep.values())

    def need(svc) -> float:
        served = total if svc.departements is None else sum(pop_by_dep.get(d, 0.0) for d in svc.departements)
        return svc.need_per_capita_per_year * served

    ranked = sorted(loaded.spec.services, key=lambda s: (-need(s), s.id))
    return [s.id for s in ranked[:limit]]


def plan_placement(
    loaded: LoadedScenario,
    model: str = "p-median",
    p: int | None = None,
    radius_km: float | None = REPORT_RADIUS_KM,
    min_population: int = DEFAULT_MIN_POPULATION,
    candidate_communes: Iterable[str] | None = None,
    fix_existing: bool = False,
    generation: int = 2,
    loop_length_m: float | None = None,
    mode: str = "final",
    start_date: dt.date | None = None,
    time_limit_s: float = 60.0,
    seed: int = 0,
) -> PlacementPlan:
    """Place user kiosks for a scenario and build the planned scenario (not written yet).

    Args:
        loaded: the input scenario.
        model: ``"p-median"`` (default), ``"mclp"``, ``"lscp"`` or ``"p-center"``.
        p: number of user kiosks (kept + new); default: as many as the scenario has after its last
            phase. Ignored by LSCP.
        radius_km: coverage radius, road km (MCLP, LSCP).
        min_population, candidate_communes, fix_existing: see :func:`placement_problem_from_scenario`.
        generation: generation of the new kiosks (1 or 2). New generation-1 kiosks reach the 6
            services of largest regional need (``GEN1_SERVICE_LIMIT``).
        loop_length_m: ASSUMED loop length of new sites, m (default: the median of the scenario's user
            kiosks, :func:`median_user_loop_length_m`); their offer is the cheapest meeting the default
            line target (:func:`planners.lines.size_line`).
        mode, start_date: how the plan enters the scenario (module docstring).
        time_limit_s: solver time limit, s.
        seed: seed of the p-median local search.

    Raises:
        TwinInputError: bad model/p/radius/mode/generation/loop length, infeasible LSCP, no line
            eligible on the assumed loop.
    """
    from planners.lines import LineTarget, agent_lines_of, size_line
    from planners.placement import MODELS, solve_placement
    from twin.quality import quality_for_scenario
    from twin.scenario.spec import GEN1_SERVICE_LIMIT, LineSpec

    if model not in MODELS:  # checked before any work (solve_placement checks it too)
        raise TwinInputError(f"unknown placement model {model!r}; use one of {', '.join(MODELS)}")
    if mode not in _MODES:
        raise TwinInputError(f"unknown placement output mode {mode!r}; use one of {', '.join(_MODES)}")
    if generation not in (1, 2):
        raise TwinInputError(f"generation must be 1 or 2, got {generation!r}")
    placement = placement_problem_from_scenario(loaded, min_population, candidate_communes, fix_existing)
    if p is None and model != "lscp":
        p = len(placement.existing)
        if p == 0:
            raise TwinInputError(f"the scenario has no user kiosk to count: give p for model {model}")
    result = solve_placement(placement.problem, model, p, radius_km, time_limit_s, seed)

    loop = median_user_loop_length_m(loaded) if loop_length_m is None else float(loop_length_m)
    if not (np.isfinite(loop) and 0 <= loop <= 12000):
        raise TwinInputError(f"loop length must be in 0..12000 m, got {loop_length_m!r}")
    choice = size_line(LineSpec(loop_length_m=loop), generation, agent_lines_of(loaded),
                       quality_for_scenario(loaded), LineTarget())
    if choice.offer is None:
        raise TwinInputError(f"no line offer carries a generation-{generation} kiosk on the assumed "
                             f"{loop:.0f} m loop: {choice.reason}; give another loop length")
    line = {"offer": choice.offer, "loop_length_m": loop}
    how = "the median of the scenario's user kiosks" if loop_length_m is None else "given"
    note = (f"new kiosks: generation {generation}, loop length {loop:.0f} m ({how}; ASSUMPTION until the "
            f"site is surveyed), offer {choice.offer}: the cheapest meeting the default line target")
    services = _gen1_services(loaded, GEN1_SERVICE_LIMIT) if generation == 1 else []
    data, new_ids = apply_placement(loaded, placement, result, line, generation, services, mode, start_date,
                                    name_suffix=f"planned-{model}")
    kept = tuple(placement.chosen_existing(result))
    removed = tuple(s for s in placement.existing if s not in set(kept))
    existing_cols = [j for j, c in enumerate(placement.candidates) if c.existing_site is not None]
    before = placement.problem.coverage(existing_cols, REPORT_RADIUS_KM) if existing_cols else 0.0
    after = placement.problem.coverage(result.sites, REPORT_RADIUS_KM) if result.sites else 0.0
    summary = (f"Planned variant of {loaded.spec.name}: {len(result.sites)} user kiosks placed by the {model} "
               f"model ({len(kept)} kept, {len(new_ids)} new, {len(removed)} removed; "
               f"mode {mode}). {note}.")
    data["description"] = (textwrap.fill(summary, 100) + "\n\n" + str(data.get("description", ""))).strip() + "\n"
    by_id = {sid: c for sid, c in zip(new_ids, sorted(placement.chosen_new(result), key=lambda c: slugify(c.label)))}
    return PlacementPlan(result, placement, data, kept, removed, tuple(by_id.items()), line, note, before, after,
                         mode)


def placement_header(plan: PlacementPlan, source: str | os.PathLike[str]) -> list[str]:
    """Comment lines heading a planned scenario file: provenance, solve status and assumptions."""
    res = plan.result
    return [
        f"Planned scenario written by `twin plan placement` (planners/scenario_io.py) from {Path(source).as_posix()}.",
        (f"Model {res.model}: {len(res.sites)} user kiosks ({len(plan.kept)} kept, {len(plan.new_sites)} new, "
         f"{len(plan.removed)} not kept); objective {res.objective:,.1f}, bound {res.bound:,.1f}, "
         f"gap {res.gap:.3g}, optimal {res.optimal} ({res.method})."),
        (f"Population within {REPORT_RADIUS_KM:g} road km of a user kiosk: "
         f"{plan.population_within_15km_before:,.0f} (input, after its last phase) -> "
         f"{plan.population_within_15km_after:,.0f} (planned)."),
        f"Mode {plan.mode}: " + {
            "final": "the planned network replaces the user kiosks at the start of the last phase; earlier "
                     "phases are the input's.",
            "append": "the planned network starts in the new phase 'planned'.",
            "history": "the planned user kiosks are installed from the first phase.",
        }[plan.mode],
        plan.line_note + ".",
        "Expert kiosks, services, demand and every other section are the input's.",
    ]
