"""Scenarios in and out of the planners: the one module between a scenario and a problem or a plan.

A planner proposes, the twin judges: every plan is written as a scenario file that ``twin run`` accepts.
This module turns scenarios into planning problems and plans back into scenarios:

* :func:`placement_problem_from_scenario` - demand points, candidate sites and road distances of a
  loaded scenario as a :class:`planners.placement.PlacementProblem`, with the mapping back to communes
  and existing kiosks (:class:`ScenarioPlacement`); :func:`read_candidate_file` reads a list of
  candidate communes;
* :func:`apply_placement`, :func:`apply_line_sizing`, :func:`apply_upgrades` - the scenario data (a
  dict) with a placement, a line sizing or an upgrade plan in it;
* :func:`with_generation` - a what-if scenario built in memory (:func:`twin.scenario.loading.with_data`);
* :func:`check_plan_target`, :func:`write_scenario` - a plan file: the output path checked before any
  work, the data written as YAML (:func:`twin.scenario.loading.scenario_yaml_text`, atomically with
  :func:`twin.run.atomic.atomic_write_text`) with data-file paths relative to the new file, then
  re-loaded with :func:`twin.scenario.loading.load_scenario` as a check.

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
from planners.lines import LineSizing
from planners.placement import PlacementProblem, PlacementResult
from planners.rollout import installed_after, unique_id
from planners.upgrades import UpgradePlan, UpgradeStep
from twin.errors import TwinInputError
from twin.region import road_distance_matrix_km
from twin.run.atomic import atomic_write_text
from twin.run.outputs import check_output_file
from twin.scenario.loading import load_scenario, scenario_data, scenario_yaml_text, with_data
from twin.scenario.spec import Commune, CommuneIndex, CrossReferenceError, LoadedScenario, Scenario

__all__ = [
    "DEFAULT_MIN_POPULATION",
    "PLACEMENT_MODES",
    "PLAN_MARKER",
    "SAME_PLACE_KM",
    "Candidate",
    "ScenarioPlacement",
    "apply_line_sizing",
    "apply_placement",
    "apply_upgrades",
    "check_plan_target",
    "largest_need_services",
    "median_user_loop_length_m",
    "placement_problem_from_scenario",
    "read_candidate_file",
    "slugify",
    "with_generation",
    "write_scenario",
]

#: Default population threshold for a commune to be a candidate kiosk site (inhabitants). A town hall
#: of a commune of about 1,000 inhabitants is the smallest that usually has a staffed reception all
#: week (CHOICE; ``--min-population`` changes it).
DEFAULT_MIN_POPULATION = 1000

#: An existing kiosk within this great-circle distance of a commune's coordinates stands in that
#: commune: the commune is not offered again as a separate candidate, km.
SAME_PLACE_KM = 0.5

#: How a placement enters the scenario (module docstring): ``"final"``, ``"append"``, ``"history"``.
PLACEMENT_MODES = ("final", "append", "history")

#: Text that the first line of every scenario written by ``twin plan`` holds.
PLAN_MARKER = "written by `twin plan"


def slugify(name: str) -> str:
    """A site id from a name: ASCII, lower case, runs of other characters as ``-``
    (``"Saint-Germain-l'Herm"`` -> ``"saint-germain-l-herm"``). Never empty (``"site"``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug or "site"


# --------------------------------------------------------------------------------------------------
# What-ifs and plan files


def with_generation(loaded: LoadedScenario, site_ids: Iterable[str], generation: int) -> LoadedScenario:
    """What-if: ``loaded`` with the sites ``site_ids`` of generation ``generation`` from their
    installation, validated and resolved in memory (:func:`twin.scenario.loading.with_data`; nothing is
    read or written).

    Raises:
        ScenarioError: the changed scenario does not validate (e.g. a generation-1 user kiosk without
            services).
    """
    data = scenario_data(loaded)
    chosen = set(site_ids)
    for site in data.get("sites", []):
        if site["id"] in chosen:
            site["generation"] = generation
    return with_data(loaded, data)


def _inputs(source: LoadedScenario) -> list[Path]:
    inputs = [source.base_dir / source.spec.region.communes_file]
    if source.path is not None:
        inputs.append(source.path)
    if source.calibration_path is not None:
        inputs.append(source.calibration_path)
    return inputs


def check_plan_target(out: Path, source: LoadedScenario, force: bool = False) -> None:
    """Refuse, before any work, an output that would overwrite the input scenario or a data file it
    reads (communes, calibration), or an existing file unless it is an earlier plan (its first bytes
    hold :data:`PLAN_MARKER`) and ``force`` is given (:func:`twin.run.outputs.check_output_file`).

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
        """Existing kiosks the solution keeps, in the order of ``result.sites``."""
        return [self.candidates[j].existing_site for j in result.sites
                if self.candidates[j].existing_site is not None]  # type: ignore[misc]

    def chosen_new(self, result: PlacementResult) -> list[Candidate]:
        """New sites the solution opens, in the order of ``result.sites``."""
        return [self.candidates[j] for j in result.sites if self.candidates[j].existing_site is None]

    def chosen_new_in_id_order(self, result: PlacementResult) -> list[Candidate]:
        """New sites the solution opens, sorted by the slug of their label: the order in which
        :func:`apply_placement` gives them site ids."""
        return sorted(self.chosen_new(result), key=lambda c: slugify(c.label))


def read_candidate_file(path: str | Path, loaded: LoadedScenario) -> list[str]:
    """Commune ids of a candidate list file: one commune id or unique commune name per line (looked up
    as scenario places are, :meth:`twin.scenario.spec.CommuneIndex.commune`); blank lines and ``#``
    comments are ignored; repeats are kept once.

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
    index = CommuneIndex(loaded.communes)
    out: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            cid = index.commune(text).commune_id
        except CrossReferenceError as exc:
            raise TwinInputError(f"line {lineno}: {text!r}: {exc}", path=str(p)) from None
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
    commune_latlon = np.array([(c.lat, c.lon) for c in loaded.communes])
    population = np.array([c.population for c in loaded.communes], dtype=float)
    existing = [sid for sid in installed_after(spec) if spec.site(sid).kind == "user"]
    candidates = _existing_candidates(loaded, existing, commune_latlon)
    hosted = {c.commune_id for c in candidates if c.commune_id is not None}
    for c in _candidate_pool(loaded, min_population, candidate_communes):
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


def _existing_candidates(loaded: LoadedScenario, existing: list[str], commune_latlon: np.ndarray) -> list[Candidate]:
    """One candidate per existing user kiosk, standing in the nearest commune when that commune's
    coordinates are within :data:`SAME_PLACE_KM` great-circle km (else in no commune)."""
    if not existing:
        return []
    site_ll = np.array([loaded.site_latlon[s] for s in existing])
    crow = road_distance_matrix_km(site_ll, commune_latlon, 1.0)  # (n_existing, n_communes)
    candidates = []
    for k, sid in enumerate(existing):
        j = int(crow[k].argmin())
        commune = loaded.communes[j] if crow[k, j] <= SAME_PLACE_KM else None
        label = f"{sid} ({commune.name})" if commune is not None else sid
        candidates.append(Candidate(label, float(site_ll[k, 0]), float(site_ll[k, 1]),
                                    commune.commune_id if commune else None, sid,
                                    commune.population if commune else 0))
    return candidates


def _candidate_pool(loaded: LoadedScenario, min_population: int,
                    candidate_communes: Iterable[str] | None) -> list[Commune]:
    """The communes offered as new sites: those of ``candidate_communes`` (ids), else those with at least
    ``min_population`` inhabitants, in the communes file's order."""
    if candidate_communes is None:
        return [c for c in loaded.communes if c.population >= min_population]
    by_id = CommuneIndex(loaded.communes).by_id
    pool = []
    for cid in candidate_communes:
        if cid not in by_id:
            raise TwinInputError(f"candidate commune id {cid!r} is not in the region's communes file")
        pool.append(by_id[cid])
    return pool


# --------------------------------------------------------------------------------------------------
# New sites


def median_user_loop_length_m(loaded: LoadedScenario, default_m: float = 2500.0) -> float:
    """Median loop length of the scenario's user kiosks, m (``default_m`` if it has none): the
    ASSUMED loop length of a new site, whose real line is unknown until the operator surveys it."""
    lengths = [s.line.loop_length_m for s in loaded.spec.sites if s.kind == "user"]
    return float(statistics.median(lengths)) if lengths else float(default_m)


def largest_need_services(loaded: LoadedScenario, limit: int) -> list[str]:
    """The ids of the ``limit`` services of largest regional need (need per capita x population of the
    departements served, interviews/year), largest first (ties by id): what a new generation-1 kiosk
    reaches."""
    pop_by_dep: dict[str, float] = {}
    for c in loaded.communes:
        pop_by_dep[c.departement_code] = pop_by_dep.get(c.departement_code, 0.0) + c.population
    total = sum(pop_by_dep.values())

    def need(svc) -> float:
        served = total if svc.departements is None else sum(pop_by_dep.get(d, 0.0) for d in svc.departements)
        return svc.need_per_capita_per_year * served

    ranked = sorted(loaded.spec.services, key=lambda s: (-need(s), s.id))
    return [s.id for s in ranked[:limit]]


# --------------------------------------------------------------------------------------------------
# Plans back to scenario data


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
        (scenario data, ids of the new sites in the order of
        :meth:`ScenarioPlacement.chosen_new_in_id_order`).

    Raises:
        TwinInputError: unknown mode, bad generation, a start date not after the last phase.
    """
    if mode not in PLACEMENT_MODES:
        raise TwinInputError(f"unknown placement output mode {mode!r}; use one of {', '.join(PLACEMENT_MODES)}")
    if generation not in (1, 2):
        raise TwinInputError(f"generation must be 1 or 2, got {generation!r}")
    if generation == 1 and not gen1_services:
        raise TwinInputError("new generation-1 kiosks need the services they reach")
    spec = loaded.spec
    data = scenario_data(loaded)
    taken = {s.id for s in spec.sites}
    new_ids: list[str] = []
    for cand in placement.chosen_new_in_id_order(result):
        sid = unique_id(slugify(cand.label), taken)
        new_ids.append(sid)
        data.setdefault("sites", []).append(_new_site(cand, sid, generation, list(gen1_services),
                                                      dict(new_site_line)))
    keep = set(placement.chosen_existing(result))
    user_ids = {s.id for s in spec.sites if s.kind == "user"}
    if mode == "final":
        _replace_in_last_phase(data["phases"][-1], spec, user_ids, keep, new_ids)
    elif mode == "append":
        _append_planned_phase(data, spec, placement.existing, keep, new_ids, start_date)
    else:  # history
        _replace_from_first_phase(data["phases"], placement.existing, user_ids, keep, new_ids)
    _drop_unreferenced_sites(data, spec)
    data["name"] = f"{spec.name}-{name_suffix}"
    return data, new_ids


def _new_site(cand: Candidate, site_id: str, generation: int, services: list[str],
              line: dict[str, Any]) -> dict[str, Any]:
    site: dict[str, Any] = {"id": site_id, "kind": "user", "place": {"commune": cand.commune_id},
                            "generation": generation}
    if generation == 1:
        site["services"] = services
    site["line"] = line
    return site


def _replace_in_last_phase(last: dict[str, Any], spec: Scenario, user_ids: set[str], keep: set[str],
                           new_ids: list[str]) -> None:
    """Mode ``"final"``: the last phase adds the new kiosks and removes (or no longer adds) the user
    kiosks not kept; it upgrades only kept ones."""
    before = [s for s in installed_after(spec, len(spec.phases) - 1) if s in user_ids]
    adds = [s for s in last.get("add", []) if s not in user_ids or s in keep] + new_ids
    removes = [s for s in last.get("remove", []) if s not in user_ids or s not in keep]
    removes += [s for s in before if s not in keep]
    ups = [s for s in last.get("upgrade", []) if s in keep]
    _set_lists(last, adds, ups, removes)


def _append_planned_phase(data: dict[str, Any], spec: Scenario, existing: tuple[str, ...], keep: set[str],
                          new_ids: list[str], start_date: dt.date | None) -> None:
    """Mode ``"append"``: a new phase ``planned`` on ``start_date`` (default one year after the last
    phase's start) adds the new kiosks and removes those not kept; the horizon is extended to a year
    after it when shorter.

    Raises:
        TwinInputError: ``start_date`` not after the last phase's start.
    """
    phases = data["phases"]
    last_start = spec.phases[-1].start_date
    start = start_date or add_years(last_start, 1)
    if start <= last_start:
        raise TwinInputError(
            f"start date {start.isoformat()} must be after the last phase's start "
            f"({last_start.isoformat()}); use the default mode to replace the last phase's kiosks"
        )
    removes = [s for s in existing if s not in keep]
    phase: dict[str, Any] = {"name": unique_id("planned", {p["name"] for p in phases}),
                             "start_date": start.isoformat()}
    _set_lists(phase, new_ids, [], removes)
    phases.append(phase)
    end = add_years(start, 1) - dt.timedelta(days=1)
    if spec.simulation.end_date < end:
        data["simulation"]["end_date"] = end.isoformat()


def _replace_from_first_phase(phases: list[dict[str, Any]], existing: tuple[str, ...], user_ids: set[str],
                              keep: set[str], new_ids: list[str]) -> None:
    """Mode ``"history"``: the first phase installs the kept and new user kiosks; no phase adds or
    removes any other user kiosk; upgrades are kept for kept kiosks only."""
    for k, ph in enumerate(phases):
        adds = [s for s in ph.get("add", []) if s not in user_ids]
        if k == 0:
            adds = list(dict.fromkeys([s for s in existing if s in keep] + new_ids + adds))
        ups = [s for s in ph.get("upgrade", []) if s in keep]
        removes = [s for s in ph.get("remove", []) if s not in user_ids]
        _set_lists(ph, adds, ups, removes)


def _drop_unreferenced_sites(data: dict[str, Any], spec: Scenario) -> None:
    """Remove the sites that some phase of ``spec`` referenced and no phase of ``data`` still does
    (sites no phase ever referenced stay, as in the input)."""
    referenced = {s for ph in data["phases"] for key in ("add", "upgrade", "remove") for s in ph.get(key, [])}
    originally_referenced = {s for ph in spec.phases for s in (*ph.add, *ph.upgrade, *ph.remove)}
    data["sites"] = [s for s in data.get("sites", [])
                     if s["id"] in referenced or s["id"] not in originally_referenced]


def _set_lists(phase: dict[str, Any], adds: list[str], ups: list[str], removes: list[str]) -> None:
    for key, values in (("add", adds), ("upgrade", ups), ("remove", removes)):
        if values:
            phase[key] = list(dict.fromkeys(values))
        else:
            phase.pop(key, None)


def apply_line_sizing(loaded: LoadedScenario, sizing: LineSizing, name_suffix: str = "lines") -> dict[str, Any]:
    """The scenario data with each sized kiosk's line offer replaced (loop length, loss and outage
    figures kept; sites no offer can serve keep their line) and ``name_suffix`` appended to the name.
    Not validated here: :func:`write_scenario` loads the written file back."""
    data = scenario_data(loaded)
    chosen = {c.site_id: c.offer for c in sizing.choices if c.offer is not None}
    _set_offers(data, chosen)
    data["name"] = f"{loaded.spec.name}-{name_suffix}"
    return data


def apply_upgrades(loaded: LoadedScenario, plan: UpgradePlan, name_suffix: str = "upgrades") -> dict[str, Any]:
    """The scenario data with the plan's phases appended (``upgrade:`` lists), upgraded kiosks'
    lines resized when the plan says so, ``simulation.end_date`` extended to the end of the last
    upgrade year and ``name_suffix`` appended to the name. Not validated here: :func:`write_scenario`
    loads the written file back."""
    data = scenario_data(loaded)
    phases: dict[str, dict] = {}
    for step in plan.steps:
        phase = phases.setdefault(step.phase_name, {"name": step.phase_name,
                                                    "start_date": step.start_date.isoformat(), "upgrade": []})
        phase["upgrade"].append(step.gain.site_id)
    data["phases"].extend(phases.values())
    _set_offers(data, {s.gain.site_id: s.gain.line_after for s in plan.steps
                       if s.gain.line_after != s.gain.line_before})
    if plan.steps:
        end = add_years(plan.steps[-1].start_date, 1) - dt.timedelta(days=1)
        if loaded.spec.simulation.end_date < end:
            data["simulation"]["end_date"] = end.isoformat()
    data["name"] = f"{loaded.spec.name}-{name_suffix}"
    data["description"] = _upgrades_description(loaded, plan) + "\n\n" + str(data.get("description") or "").strip()
    return data


def _upgrades_description(loaded: LoadedScenario, plan: UpgradePlan) -> str:
    """What the plan changes, in words, ahead of the scenario's own description (reports show it)."""
    by_phase: dict[str, list[UpgradeStep]] = {}
    for step in plan.steps:
        by_phase.setdefault(step.phase_name, []).append(step)
    phases = "; ".join(f"{len(steps)} in {steps[0].start_date:%B %Y} ({name})" for name, steps in by_phase.items())
    relined = sorted({s.gain.site_id for s in plan.steps if s.gain.line_after != s.gain.line_before})
    text = (f"Upgrade plan for {loaded.spec.name}: {len(plan.steps)} generation-1 kiosks upgraded to generation 2, "
            f"{phases}; {sum(s.cost_eur for s in plan.steps):,.0f} EUR of upgrades.")
    if relined:
        text += (f" {len(relined)} of them get the line their generation-2 profile needs from installation (a site "
                 "has one line for the whole scenario), so their line cost and quality change from the start.")
    return textwrap.fill(text, 100)


def _set_offers(data: dict[str, Any], offers: dict[str, str]) -> None:
    """Give each site of ``offers`` (site id -> offer name) that line offer, keeping its other line fields."""
    for site in data.get("sites", []):
        if site["id"] in offers:
            line = dict(site.get("line", {}))
            line["offer"] = offers[site["id"]]
            site["line"] = line
