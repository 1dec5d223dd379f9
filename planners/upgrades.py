"""Generation upgrades: which generation-1 user kiosks to upgrade to generation 2 first, under a budget.

**Gain of an upgrade** (interviews per year of reachable demand). A generation-1 kiosk reaches only
the (at most 6) services it is configured with; the demand of the other services whose need reaches it
is lost (the twin's unmet reason ``gen1_limit``). Generation-2 kiosks reach every service, including
services that only own standard videoconference rooms. The gain is computed with the twin's own demand
code, not a copy of it: :func:`twin.model.prepare` compiles the scenario twice - as it is, and with every
candidate kiosk made generation 2 (the what-if :func:`planners.scenarios.with_generation` builds) - and,
in the state reached after the last phase, the gain of kiosk k is

    gain_k = sum of stream.rate_per_year over the generation-2 streams at k
             - the same sum over the generation-1 streams at k,

split into the part recovered from ``gen1_limit`` (services k was not configured for) and the rest
(services k was configured for but could only reach through an expert kiosk, now also through standard
videoconference rooms). Citizens choose the nearest kiosk whatever its generation, so catchments do not
change and gains add up exactly: with one price per upgrade (``costs.upgrade_capex_eur``) the best
set of n upgrades is the n largest gains, and ordering by gain is optimal. Whether agents and booths can
serve the recovered demand is left to the twin: the plan is written as a scenario and ``twin run``
judges it (served interviews, ``unmet_gen1_limit``).

**Quality.** Generation 2 sends H.264 CIF video at up to 768 kbit/s: on a 128 kbit/s uplink it
collapses (see :mod:`planners.lines`). By default (``resize_lines=True``) an upgraded kiosk also gets
the cheapest line that carries the generation-2 profile (:func:`planners.lines.size_line`); a
scenario's line is one for the whole run, so the new offer applies from the kiosk's installation
(ASSUMPTION: harmless, generation-1 quality does not depend on the extra uplink). The MOS before and
after are reported for each step; they do not enter the ranking except to break ties.

**Phases.** One new phase per year from ``start_date`` (default: one year after the last phase's start),
each buying ``floor(budget_eur / upgrade_capex_eur)`` upgrades, unspent budget not carried over;
``simulation.end_date`` is extended to the end of the last upgrade year. Kiosks with no gain are not
scheduled (listed with the reason).

This module computes over the core's objects (a loaded scenario, its what-if, the compiled model
inputs): :func:`upgrade_candidates`, :func:`measure_gains`, :func:`upgrade_budget`,
:func:`order_upgrades`. :func:`planners.plans.plan_upgrades` runs them on a scenario and
:func:`planners.scenarios.apply_upgrades` writes the plan into it.
"""


from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

from planners.dates import add_years
from planners.lines import DEFAULT_LINE_TARGET, LineTarget, agent_lines_of, size_line, worst_quality
from planners.rollout import installed_after, unique_id
from twin.errors import TwinInputError
from twin.line import AdslLine
from twin.model.inputs import ModelInputs, PhaseConfig, prepare
from twin.profiles import profile_for_generation
from twin.quality import QualityModel
from twin.scenario.spec import LoadedScenario, Scenario, SiteSpec, build_line

__all__ = [
    "DEFAULT_UPGRADES_PER_PHASE",
    "UpgradeBudget",
    "UpgradeGain",
    "UpgradePlan",
    "UpgradeStep",
    "measure_gains",
    "order_upgrades",
    "upgrade_budget",
    "upgrade_candidates",
    "upgrades_header",
]

#: Default budget per phase, in upgrades (budget_eur = this x costs.upgrade_capex_eur). CHOICE: about
#: half of the Auvergne generation-1 fleet per year.
DEFAULT_UPGRADES_PER_PHASE = 10

@dataclass(frozen=True)
class UpgradeGain:
    """What upgrading one generation-1 kiosk brings, in the state after the scenario's last phase.

    Attributes:
        site_id: the kiosk.
        gain_per_year: reachable kiosk demand gained, interviews/year (>= 0).
        gen1_limit_per_year: part of the gain recovered from the 6-service limit, interviews/year.
        other_per_year: the rest (services reached through standard VC rooms), interviews/year.
        mos_before: interview MOS of the generation-1 profile on the current line (worst agent line).
        mos_after: interview MOS of the generation-2 profile on the line after the upgrade.
        line_before: the current offer.
        line_after: the offer after the upgrade (= line_before unless resized).
        line_note: why the line was not resized when it should have been (None otherwise).
    """

    site_id: str
    gain_per_year: float
    gen1_limit_per_year: float
    other_per_year: float
    mos_before: float
    mos_after: float
    line_before: str
    line_after: str
    line_note: str | None = None


@dataclass(frozen=True)
class UpgradeStep:
    """One upgrade of the plan, in order.

    Attributes:
        rank: 1 for the first upgrade.
        phase_name: the new phase that performs it.
        start_date: that phase's first day.
        gain: the kiosk's :class:`UpgradeGain`.
        cumulative_gain_per_year: gain of this and every earlier step, interviews/year.
        cost_eur: the upgrade's capex, EUR.
    """

    rank: int
    phase_name: str
    start_date: dt.date
    gain: UpgradeGain
    cumulative_gain_per_year: float
    cost_eur: float


@dataclass(frozen=True)
class UpgradePlan:
    """An ordered upgrade plan.

    Attributes:
        steps: the scheduled upgrades, best first.
        not_scheduled: (gain, reason) of the candidates left out.
        upgrades_per_phase: how many upgrades each phase's budget buys.
        budget_eur: budget per phase, EUR.
        upgrade_capex_eur: price of one upgrade, EUR.
        gen1_limit_per_year: reachable demand lost to the 6-service limit before any upgrade,
            interviews/year (the twin's expected ``unmet_gen1_limit`` rate in the last phase).
        resize_lines: whether upgraded kiosks get a generation-2 line.
    """

    steps: tuple[UpgradeStep, ...]
    not_scheduled: tuple[tuple[UpgradeGain, str], ...]
    upgrades_per_phase: int
    budget_eur: float
    upgrade_capex_eur: float
    gen1_limit_per_year: float
    resize_lines: bool

    @property
    def gain_per_year(self) -> float:
        """Total reachable demand gained by the plan, interviews/year."""
        return self.steps[-1].cumulative_gain_per_year if self.steps else 0.0


def upgrade_candidates(loaded: LoadedScenario) -> list[str]:
    """The generation-1 user kiosks installed after the scenario's last phase and upgraded by no phase,
    in installation order.

    Raises:
        TwinInputError: there is none (nothing to upgrade).
    """
    spec = loaded.spec
    upgraded = {sid for phase in spec.phases for sid in phase.upgrade}
    cands = [sid for sid in installed_after(spec)
             if spec.site(sid).kind == "user" and spec.site(sid).generation == 1 and sid not in upgraded]
    if not cands:
        raise TwinInputError("no generation-1 user kiosk is installed after the last phase (or all are "
                             "already upgraded): nothing to upgrade", path=str(loaded.path))
    return cands


def _rates_by_site(inputs: ModelInputs, cfg: PhaseConfig) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
    total: dict[int, float] = {}
    by_service: dict[int, dict[str, float]] = {}
    for stream in cfg.streams:
        total[stream.site] = total.get(stream.site, 0.0) + stream.rate_per_year
        per = by_service.setdefault(stream.site, {})
        sid = inputs.service_ids[stream.service]
        per[sid] = per.get(sid, 0.0) + stream.rate_per_year
    return total, by_service


def measure_gains(
    loaded: LoadedScenario,
    upgraded: LoadedScenario,
    quality_model: QualityModel,
    resize_lines: bool = True,
    target: LineTarget = DEFAULT_LINE_TARGET,
) -> tuple[tuple[UpgradeGain, ...], float]:
    """The gain of upgrading each of :func:`upgrade_candidates`, from the scenario and its what-if
    (method in the module docstring).

    Args:
        loaded: the scenario.
        upgraded: the same scenario with every candidate of generation 2
            (:func:`planners.scenarios.with_generation`).
        quality_model: scores interviews (the scenario's: :func:`twin.quality.quality_for_scenario`).
        resize_lines: give upgraded kiosks the cheapest line meeting ``target`` for generation 2.
        target: line-sizing target (:class:`planners.lines.LineTarget`).

    Returns:
        (gains in installation order, reachable demand lost to ``gen1_limit`` before any upgrade in
        interviews/year).

    Raises:
        TwinInputError: no generation-1 user kiosk left to upgrade.
        ValueError: ``upgraded`` leaves a candidate at generation 1 (a caller's bug).
    """
    cands = upgrade_candidates(loaded)
    not_upgraded = [sid for sid in cands if upgraded.spec.site(sid).generation != 2]
    if not_upgraded:
        raise ValueError(f"the what-if leaves {', '.join(not_upgraded)} at generation 1")
    base = prepare(loaded, quality_model)
    up = prepare(upgraded, quality_model)
    base_cfg, up_cfg = base.phases[-1], up.phases[-1]
    years = base_cfg.window.duration_days / 365.0
    gen1_limit = sum(v for (_k, reason), v in base_cfg.unmet_expected.items() if reason == "gen1_limit")
    gen1_limit_per_year = gen1_limit / years if years > 0 else 0.0
    rate1, _ = _rates_by_site(base, base_cfg)
    rate2, by_service2 = _rates_by_site(up, up_cfg)
    agents = agent_lines_of(loaded)
    index = {sid: i for i, sid in enumerate(base.site_ids)}
    gains = []
    for sid in cands:
        i = index[sid]
        gain = max(0.0, rate2.get(i, 0.0) - rate1.get(i, 0.0))
        gains.append(_gain(loaded.spec.site(sid), gain, by_service2.get(i, {}), agents, quality_model,
                           resize_lines, target))
    return tuple(gains), gen1_limit_per_year


def _gain(site: SiteSpec, gain: float, rates2: dict[str, float], agents: list[AdslLine],
          model: QualityModel, resize_lines: bool, target: LineTarget) -> UpgradeGain:
    """One kiosk's :class:`UpgradeGain`: its demand ``gain`` (interviews/year) split by service
    (``rates2``: generation-2 rates by service id), and its line and MOS before and after."""
    limited = sum(r for svc, r in rates2.items() if svc not in site.services)
    line_after, note, new_line = site.line.offer, None, site.line
    if resize_lines:
        choice = size_line(site.line, 2, agents, model, target, site_id=site.id)
        if choice.offer is not None:
            line_after = choice.offer
            new_line = site.line.model_copy(update={"offer": choice.offer})
        else:
            note = choice.reason
    kiosk1, kiosk2 = build_line(site.line), build_line(new_line)
    p1, p2 = profile_for_generation(1), profile_for_generation(2)
    mos1 = worst_quality([model.score(kiosk1, a, p1) for a in agents]).mos
    mos2 = worst_quality([model.score(kiosk2, a, p2) for a in agents]).mos
    limited = min(limited, gain)
    other = gain - limited
    if other <= 1e-9 * max(1.0, gain):  # float noise of two sums over the same streams
        other, limited = 0.0, gain
    return UpgradeGain(site.id, gain, limited, other, mos1, mos2, site.line.offer, line_after, note)


@dataclass(frozen=True)
class UpgradeBudget:
    """What each yearly upgrade phase may buy, and when the phases start.

    Attributes:
        budget_eur: budget per phase, EUR.
        upgrade_capex_eur: price of one upgrade, EUR (``costs.upgrade_capex_eur``).
        per_phase: upgrades one phase buys (``10**9``, i.e. no limit, when upgrades are free).
        start_date: first day of the first upgrade phase.
        max_phases: at most this many phases (None: as many as needed).
    """

    budget_eur: float
    upgrade_capex_eur: float
    per_phase: int
    start_date: dt.date
    max_phases: int | None


def upgrade_budget(
    spec: Scenario,
    budget_eur: float | None = None,
    start_date: dt.date | None = None,
    max_phases: int | None = None,
) -> UpgradeBudget:
    """Check and complete the budget of an upgrade plan.

    Args:
        spec: the scenario (its ``costs.upgrade_capex_eur`` and last phase).
        budget_eur: budget per phase, EUR (default :data:`DEFAULT_UPGRADES_PER_PHASE` x
            ``costs.upgrade_capex_eur``).
        start_date: first upgrade phase (default one year after the last phase's start); must be after
            the last phase's start.
        max_phases: at most this many upgrade phases (default: as many as needed), >= 1.

    Raises:
        TwinInputError: a budget that buys no upgrade, NaN/negative budget, max_phases < 1, a start date
            not after the last phase.
    """
    capex = float(spec.costs.upgrade_capex_eur)
    if budget_eur is None:
        budget = DEFAULT_UPGRADES_PER_PHASE * capex
    else:
        budget = float(budget_eur)
        if not math.isfinite(budget) or budget < 0:
            raise TwinInputError(f"budget must be a finite amount >= 0 EUR, got {budget_eur!r}")
    if capex > 0:
        per_phase = math.floor(budget / capex + 1e-9)
        if per_phase < 1:
            raise TwinInputError(f"a budget of {budget:,.0f} EUR per phase buys no upgrade at "
                                 f"{capex:,.0f} EUR each (costs.upgrade_capex_eur)")
    else:
        per_phase = 10**9
    if max_phases is not None and max_phases < 1:
        raise TwinInputError(f"max_phases must be >= 1, got {max_phases}")
    last_start = spec.phases[-1].start_date
    start = start_date or add_years(last_start, 1)
    if start <= last_start:
        raise TwinInputError(f"upgrade start date {start.isoformat()} must be after the last phase's start "
                             f"({last_start.isoformat()})")
    return UpgradeBudget(budget, capex, per_phase, start, max_phases)


def order_upgrades(
    gains: Iterable[UpgradeGain],
    gen1_limit_per_year: float,
    budget: UpgradeBudget,
    taken_phase_names: Iterable[str],
    resize_lines: bool,
) -> UpgradePlan:
    """Order upgrades by gain (then MOS improvement, then site id) and cut them into yearly phases named
    ``upgrades-<year>`` (made unique against ``taken_phase_names``), ``budget.per_phase`` each.

    Args:
        gains: the candidates' gains (:func:`measure_gains`).
        gen1_limit_per_year: reachable demand lost to the 6-service limit before any upgrade,
            interviews/year (reported in the plan).
        budget: the checked budget (:func:`upgrade_budget`).
        taken_phase_names: names of the scenario's phases.
        resize_lines: whether the gains were measured with resized lines (reported in the plan).

    Returns:
        :class:`UpgradePlan`; kiosks with no gain, or beyond ``budget.max_phases``, are listed in
        ``not_scheduled`` with the reason.
    """
    ordered = sorted(gains, key=lambda g: (-g.gain_per_year, -(g.mos_after - g.mos_before), g.site_id))
    useful = [g for g in ordered if g.gain_per_year > 1e-9]
    skipped = [(g, "no demand gain: every service whose need reaches it is already reachable")
               for g in ordered if g.gain_per_year <= 1e-9]
    taken_names = set(taken_phase_names)
    steps: list[UpgradeStep] = []
    cumulative = 0.0
    phase_names: dict[int, str] = {}
    for k, g in enumerate(useful):
        phase_k = k // budget.per_phase
        if budget.max_phases is not None and phase_k >= budget.max_phases:
            skipped.append((g, f"beyond the budget of {budget.max_phases} phase(s)"))
            continue
        day = add_years(budget.start_date, phase_k)
        if phase_k not in phase_names:
            phase_names[phase_k] = unique_id(f"upgrades-{day.year}", taken_names)
        cumulative += g.gain_per_year
        steps.append(UpgradeStep(k + 1, phase_names[phase_k], day, g, cumulative, budget.upgrade_capex_eur))
    per_phase = budget.per_phase if budget.upgrade_capex_eur > 0 else len(useful)
    return UpgradePlan(tuple(steps), tuple(skipped), per_phase, budget.budget_eur, budget.upgrade_capex_eur,
                       gen1_limit_per_year, resize_lines)


def upgrades_header(plan: UpgradePlan, source: str | os.PathLike[str]) -> list[str]:
    """Comment lines heading an upgrade-planned scenario file: provenance (``source``, the input scenario
    file, shown as given), budget, expected gain and the steps in order."""
    lines = [
        f"Upgrade plan written by `twin plan upgrades` (planners/upgrades.py) from {source}.",
        (f"{len(plan.steps)} generation-1 kiosks upgraded, {plan.upgrades_per_phase} per yearly phase "
         f"({plan.budget_eur:,.0f} EUR at {plan.upgrade_capex_eur:,.0f} EUR each), ordered by reachable demand "
         "gained."),
        (f"Expected gain {plan.gain_per_year:.1f} interviews/year of the {plan.gen1_limit_per_year:.1f}/year lost "
         "to the 6-service limit (twin.model.prepare streams); the twin judges capacity."),
    ]
    if plan.resize_lines:
        lines.append("Upgraded kiosks get the cheapest line carrying the generation-2 profile (planners.lines), "
                     "from their installation (a site has one line).")
    for s in plan.steps:
        lines.append(f"  {s.rank:2d}. {s.phase_name} {s.gain.site_id}: +{s.gain.gain_per_year:.1f}/yr "
                     f"(cumulative {s.cumulative_gain_per_year:.1f}/yr)")
    return lines
