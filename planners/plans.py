"""Each planner on a scenario, end to end: the problem taken from the scenario, solved or computed, and
the plan turned back into scenario data (written by :func:`planners.scenarios.write_scenario`).

* :func:`plan_placement` - user-kiosk placement (:mod:`planners.placement`) with the new kiosks' line
  (:mod:`planners.lines`), as a :class:`PlacementPlan`;
* :func:`upgrade_gains`, :func:`plan_upgrades` - generation upgrades (:mod:`planners.upgrades`) measured
  on the scenario and its all-upgraded what-if (:func:`planners.scenarios.with_generation`);
* :func:`placement_file`, :func:`lines_file`, :func:`upgrades_file` - a scenario file in, a planned
  scenario file out: one call per ``twin plan`` command (the output checked before any work).

Line sizing needs no what-if: :func:`planners.lines.size_lines` works on the scenario directly.

Imports run one way: this module uses :mod:`planners.scenarios` (scenario <-> problem and plan data) and
the computations (:mod:`planners.placement`, :mod:`planners.lines`, :mod:`planners.upgrades`), none of
which imports it.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from planners.lines import (
    DEFAULT_LINE_TARGET,
    LineSizing,
    LineTarget,
    agent_lines_of,
    lines_header,
    size_line,
    size_lines,
)
from planners.placement import MODELS, PlacementResult, solve_placement
from planners.scenarios import (
    DEFAULT_MIN_POPULATION,
    PLACEMENT_MODES,
    Candidate,
    ScenarioPlacement,
    apply_line_sizing,
    apply_placement,
    apply_upgrades,
    check_plan_target,
    largest_need_services,
    median_user_loop_length_m,
    placement_problem_from_scenario,
    read_candidate_file,
    with_generation,
    write_scenario,
)
from planners.upgrades import (
    UpgradeGain,
    UpgradePlan,
    measure_gains,
    order_upgrades,
    upgrade_budget,
    upgrade_candidates,
    upgrades_header,
)
from twin.errors import TwinInputError
from twin.quality import QualityModel, quality_for_scenario
from twin.scenario.loading import load_scenario
from twin.scenario.spec import GEN1_SERVICE_LIMIT, LineSpec, LoadedScenario

__all__ = [
    "REPORT_RADIUS_KM",
    "PlacementPlan",
    "PlanFile",
    "lines_file",
    "placement_file",
    "placement_header",
    "placement_mode",
    "plan_placement",
    "plan_upgrades",
    "upgrade_gains",
    "upgrades_file",
]

# --------------------------------------------------------------------------------------------------
# Placement


#: Radius of the coverage figure reported with every placement (the twin's KPI
#: ``population_within_15km``), km.
REPORT_RADIUS_KM = 15.0


@dataclass(frozen=True)
class PlacementPlan:
    """A placement plan and the scenario that carries it.

    Attributes:
        result: the solver's :class:`PlacementResult` (objective, bound, gap, time).
        placement: the problem and its candidates.
        data: the planned scenario as plain data (write it with
            :func:`planners.scenarios.write_scenario`).
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
        min_population, candidate_communes, fix_existing: see
            :func:`planners.scenarios.placement_problem_from_scenario`.
        generation: generation of the new kiosks (1 or 2). New generation-1 kiosks reach the 6
            services of largest regional need (``GEN1_SERVICE_LIMIT``).
        loop_length_m: ASSUMED loop length of new sites, m (default: the median of the scenario's user
            kiosks, :func:`planners.scenarios.median_user_loop_length_m`); their offer is the cheapest
            meeting the default line target (:func:`planners.lines.size_line`).
        mode, start_date: how the plan enters the scenario (:mod:`planners.scenarios`).
        time_limit_s: solver time limit, s.
        seed: seed of the p-median local search.

    Raises:
        TwinInputError: bad model/p/radius/mode/generation/loop length, infeasible LSCP, no line
            eligible on the assumed loop.
    """
    if model not in MODELS:  # checked before any work (solve_placement checks it too)
        raise TwinInputError(f"unknown placement model {model!r}; use one of {', '.join(MODELS)}")
    if mode not in PLACEMENT_MODES:
        raise TwinInputError(f"unknown placement output mode {mode!r}; use one of {', '.join(PLACEMENT_MODES)}")
    if generation not in (1, 2):
        raise TwinInputError(f"generation must be 1 or 2, got {generation!r}")
    placement = placement_problem_from_scenario(loaded, min_population, candidate_communes, fix_existing)
    if p is None and model != "lscp":
        p = len(placement.existing)
        if p == 0:
            raise TwinInputError(f"the scenario has no user kiosk to count: give p for model {model}")
    result = solve_placement(placement.problem, model, p, radius_km, time_limit_s, seed)
    line, note = _new_site_line(loaded, generation, loop_length_m)
    services = largest_need_services(loaded, GEN1_SERVICE_LIMIT) if generation == 1 else []
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
    new_sites = tuple(zip(new_ids, placement.chosen_new_in_id_order(result)))
    return PlacementPlan(result, placement, data, kept, removed, new_sites, line, note, before, after, mode)


def _new_site_line(loaded: LoadedScenario, generation: int, loop_length_m: float | None) -> tuple[dict[str, Any], str]:
    """The ``line`` of new kiosks (the cheapest offer meeting the default target on the assumed loop) and
    the note saying how it was chosen.

    Raises:
        TwinInputError: a loop length outside 0..12000 m, or no offer carrying ``generation`` on it.
    """
    loop = median_user_loop_length_m(loaded) if loop_length_m is None else float(loop_length_m)
    if not (np.isfinite(loop) and 0 <= loop <= 12000):
        raise TwinInputError(f"loop length must be in 0..12000 m, got {loop_length_m!r}")
    choice = size_line(LineSpec(loop_length_m=loop), generation, agent_lines_of(loaded),
                       quality_for_scenario(loaded), LineTarget())
    if choice.offer is None:
        raise TwinInputError(f"no line offer carries a generation-{generation} kiosk on the assumed "
                             f"{loop:.0f} m loop: {choice.reason}; give another loop length")
    how = "the median of the scenario's user kiosks" if loop_length_m is None else "given"
    note = (f"new kiosks: generation {generation}, loop length {loop:.0f} m ({how}; ASSUMPTION until the "
            f"site is surveyed), offer {choice.offer}: the cheapest meeting the default line target")
    return {"offer": choice.offer, "loop_length_m": loop}, note


def placement_header(plan: PlacementPlan, source: str | os.PathLike[str]) -> list[str]:
    """Comment lines heading a planned scenario file: provenance (``source``, the input scenario file),
    solve status, coverage before and after, output mode and the new sites' line assumption."""
    res = plan.result
    return [
        # The module named here is the one that held the placement planner when the committed planned
        # scenarios were written (now planners/plans.py); kept so plans stay byte-identical.
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


# --------------------------------------------------------------------------------------------------
# Upgrades


def upgrade_gains(
    loaded: LoadedScenario,
    resize_lines: bool = True,
    target: LineTarget = DEFAULT_LINE_TARGET,
    quality_model: QualityModel | None = None,
) -> tuple[tuple[UpgradeGain, ...], float]:
    """The gain of upgrading each generation-1 user kiosk installed after the last phase (method in
    :mod:`planners.upgrades`), measured against the what-if where all of them are generation 2.

    Args:
        loaded: the scenario.
        resize_lines: give upgraded kiosks the cheapest line meeting ``target`` for generation 2.
        target: line-sizing target (:class:`planners.lines.LineTarget`).
        quality_model: default: the scenario's (:func:`twin.quality.quality_for_scenario`).

    Returns:
        (gains in installation order, reachable demand lost to ``gen1_limit`` before any upgrade in
        interviews/year).

    Raises:
        TwinInputError: no generation-1 user kiosk left to upgrade.
    """
    cands = upgrade_candidates(loaded)
    model = quality_model if quality_model is not None else quality_for_scenario(loaded)
    return measure_gains(loaded, with_generation(loaded, cands, 2), model, resize_lines, target)


def plan_upgrades(
    loaded: LoadedScenario,
    budget_eur: float | None = None,
    start_date: dt.date | None = None,
    max_phases: int | None = None,
    resize_lines: bool = True,
    target: LineTarget = DEFAULT_LINE_TARGET,
    quality_model: QualityModel | None = None,
) -> UpgradePlan:
    """Order the generation-1 kiosks' upgrades by gain and cut them into yearly phases by budget.

    Args:
        loaded: the scenario.
        budget_eur, start_date, max_phases: see :func:`planners.upgrades.upgrade_budget` (default: 10
            upgrades a year from one year after the last phase's start, as many years as needed).
        resize_lines, target, quality_model: see :func:`upgrade_gains`.

    Returns:
        :class:`planners.upgrades.UpgradePlan` (write it with :func:`planners.scenarios.apply_upgrades`).

    Raises:
        TwinInputError: a budget that buys no upgrade, NaN/negative budget, max_phases < 1, a start date
            not after the last phase (all checked before any work), nothing to upgrade.
    """
    budget = upgrade_budget(loaded.spec, budget_eur, start_date, max_phases)
    gains, gen1_limit = upgrade_gains(loaded, resize_lines, target, quality_model)
    return order_upgrades(gains, gen1_limit, budget, (p.name for p in loaded.spec.phases), resize_lines)


# --------------------------------------------------------------------------------------------------
# Scenario file in, planned scenario file out: what `twin plan` calls

PlanT = TypeVar("PlanT")


@dataclass(frozen=True)
class PlanFile(Generic[PlanT]):
    """A plan written as a scenario file.

    Attributes:
        source: the input scenario.
        plan: the plan (:class:`PlacementPlan`, :class:`planners.lines.LineSizing` or
            :class:`planners.upgrades.UpgradePlan`).
        written: the planned scenario, loaded back from ``out``.
        out: the file written.
    """

    source: LoadedScenario
    plan: PlanT
    written: LoadedScenario
    out: Path


def _source_and_target(scenario: Path, out: Path, force: bool) -> LoadedScenario:
    """Load the input scenario and refuse a wrong ``out`` (:func:`planners.scenarios.check_plan_target`)
    before any planning."""
    loaded = load_scenario(scenario)
    check_plan_target(out, loaded, force=force)
    return loaded


def placement_mode(replace_history: bool = False, start_date: dt.date | None = None) -> str:
    """The placement output mode (:mod:`planners.scenarios`) the command's options ask for:
    ``"history"`` with ``--replace-history``, ``"append"`` with ``--start-date``, else ``"final"``.

    Raises:
        TwinInputError: both given.
    """
    if replace_history and start_date is not None:
        raise TwinInputError("--replace-history and --start-date exclude each other")
    return "history" if replace_history else ("append" if start_date is not None else "final")


def placement_file(
    scenario: Path,
    out: Path,
    *,
    model: str = "p-median",
    p: int | None = None,
    radius_km: float = REPORT_RADIUS_KM,
    min_population: int = DEFAULT_MIN_POPULATION,
    candidates_file: Path | None = None,
    fix_existing: bool = False,
    generation: int = 2,
    loop_length_m: float | None = None,
    start_date: dt.date | None = None,
    replace_history: bool = False,
    time_limit_s: float = 60.0,
    seed: int = 0,
    force: bool = False,
) -> PlanFile[PlacementPlan]:
    """``twin plan placement``: place the user kiosks of the scenario file ``scenario`` and write the
    planned scenario to ``out`` (headed by :func:`placement_header`).

    Args:
        scenario, out: the input scenario file and the planned scenario file to write.
        candidates_file: candidate communes (:func:`planners.scenarios.read_candidate_file`) instead of
            the ``min_population`` rule.
        start_date, replace_history: the output mode (:func:`placement_mode`).
        force: overwrite an earlier plan at ``out`` (:func:`planners.scenarios.check_plan_target`).
        model, p, radius_km, min_population, fix_existing, generation, loop_length_m, time_limit_s, seed:
            see :func:`plan_placement`.

    Raises:
        TwinInputError: conflicting options, ``p`` given for LSCP, a refused ``out`` (before loading
            anything else), an unreadable scenario or candidate file, and every error of
            :func:`plan_placement`.
    """
    mode = placement_mode(replace_history, start_date)
    if model == "lscp" and p is not None:
        raise TwinInputError(f"-p {p} does not apply to --model lscp: the location set covering problem finds the "
                             "fewest kiosks that put every commune within --radius-km; use p-median, mclp or "
                             "p-center to place a given number")
    loaded = _source_and_target(scenario, out, force)
    candidates = read_candidate_file(candidates_file, loaded) if candidates_file is not None else None
    plan = plan_placement(loaded, model=model, p=p, radius_km=radius_km, min_population=min_population,
                          candidate_communes=candidates, fix_existing=fix_existing, generation=generation,
                          loop_length_m=loop_length_m, mode=mode, start_date=start_date,
                          time_limit_s=time_limit_s, seed=seed)
    written = write_scenario(plan.data, loaded, out, placement_header(plan, scenario), force=force)
    return PlanFile(loaded, plan, written, out)


def lines_file(scenario: Path, out: Path, target: LineTarget = DEFAULT_LINE_TARGET,
               force: bool = False) -> PlanFile[LineSizing]:
    """``twin plan lines``: give each user kiosk of the scenario file ``scenario`` the cheapest offer
    meeting ``target`` (:func:`planners.lines.size_lines`) and write the result to ``out``.

    Args:
        scenario, out: the input scenario file and the line-sized scenario file to write.
        target: the quality target (:class:`planners.lines.LineTarget`).
        force: overwrite an earlier plan at ``out`` (:func:`planners.scenarios.check_plan_target`).

    Raises:
        TwinInputError: a refused ``out`` (before any work), an unreadable scenario, no user kiosk.
    """
    loaded = _source_and_target(scenario, out, force)
    sizing = size_lines(loaded, target)
    written = write_scenario(apply_line_sizing(loaded, sizing), loaded, out, lines_header(sizing, scenario),
                             force=force)
    return PlanFile(loaded, sizing, written, out)


def upgrades_file(
    scenario: Path,
    out: Path,
    *,
    budget_eur: float | None = None,
    start_date: dt.date | None = None,
    max_phases: int | None = None,
    resize_lines: bool = True,
    force: bool = False,
) -> PlanFile[UpgradePlan]:
    """``twin plan upgrades``: order the generation-1 kiosk upgrades of the scenario file ``scenario``
    (:func:`plan_upgrades`, whose arguments these are) and write the scenario with the upgrade phases to
    ``out``.

    Raises:
        TwinInputError: a refused ``out`` (before any work), an unreadable scenario, and every error of
            :func:`plan_upgrades`.
    """
    loaded = _source_and_target(scenario, out, force)
    plan = plan_upgrades(loaded, budget_eur=budget_eur, start_date=start_date, max_phases=max_phases,
                         resize_lines=resize_lines)
    written = write_scenario(apply_upgrades(loaded, plan), loaded, out, upgrades_header(plan, scenario),
                             force=force)
    return PlanFile(loaded, plan, written, out)
