"""Generation upgrades: which generation-1 user kiosks to upgrade to generation 2 first, under a budget.

**Gain of an upgrade** (interviews per year of reachable demand). A generation-1 kiosk reaches only
the (at most 6) services it is configured with; the demand of the other services whose need reaches it
is lost (the twin's unmet reason ``gen1_limit``). Generation-2 kiosks reach every service, including
services that only own standard videoconference rooms. The gain is computed with the twin's own demand
code, not a copy of it: :func:`twin.model.prepare` compiles the scenario twice - as it is, and with every
candidate kiosk made generation 2 - and, in the state reached after the last phase, the gain of kiosk k
is

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
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from planners.dates import add_years
from planners.lines import DEFAULT_LINE_TARGET, LineTarget, agent_lines_of, size_line, worst_quality
from planners.scenario_io import installed_after, loaded_with_data, scenario_data, unique_id
from twin.errors import TwinInputError
from twin.model.inputs import ModelInputs, PhaseConfig, prepare
from twin.profiles import profile_for_generation
from twin.quality import QualityModel, quality_for_scenario
from twin.scenario.spec import LoadedScenario, build_line

__all__ = [
    "DEFAULT_UPGRADES_PER_PHASE",
    "UpgradeGain",
    "UpgradePlan",
    "UpgradeStep",
    "apply_upgrades",
    "plan_upgrades",
    "upgrade_gains",
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


def _candidates(loaded: LoadedScenario) -> list[str]:
    spec = loaded.spec
    upgraded = {sid for phase in spec.phases for sid in phase.upgrade}
    return [sid for sid in installed_after(spec)
            if spec.site(sid).kind == "user" and spec.site(sid).generation == 1 and sid not in upgraded]


def _rates_by_site(inputs: ModelInputs, cfg: PhaseConfig) -> tuple[dict[int, float], dict[int, dict[str, float]]]:
    total: dict[int, float] = {}
    by_service: dict[int, dict[str, float]] = {}
    for stream in cfg.streams:
        total[stream.site] = total.get(stream.site, 0.0) + stream.rate_per_year
        per = by_service.setdefault(stream.site, {})
        sid = inputs.service_ids[stream.service]
        per[sid] = per.get(sid, 0.0) + stream.rate_per_year
    return total, by_service


def upgrade_gains(
    loaded: LoadedScenario,
    resize_lines: bool = True,
    target: LineTarget = DEFAULT_LINE_TARGET,
    quality_model: QualityModel | None = None,
) -> tuple[tuple[UpgradeGain, ...], float]:
    """The gain of upgrading each generation-1 user kiosk installed after the last phase (method in the
    module docstring).

    Args:
        loaded: the scenario.
        resize_lines: give upgraded kiosks the cheapest line meeting ``target`` for generation 2.
        target: line-sizing target (:class:`planners.lines.LineTarget`).
        quality_model: default: the scenario's (:func:`twin.quality.quality_for_scenario`).

    Returns:
        (gains in the scenario's site order, reachable demand lost to ``gen1_limit`` before any
        upgrade in interviews/year).

    Raises:
        TwinInputError: no generation-1 user kiosk left to upgrade.
    """
    spec = loaded.spec
    cands = _candidates(loaded)
    if not cands:
        raise TwinInputError("no generation-1 user kiosk is installed after the last phase (or all are "
                             "already upgraded): nothing to upgrade", path=str(loaded.path))
    model = quality_model if quality_model is not None else quality_for_scenario(loaded)
    base = prepare(loaded, model)
    data = scenario_data(loaded)
    cand_set = set(cands)
    for site in data["sites"]:
        if site["id"] in cand_set:
            site["generation"] = 2
    upgraded = prepare(loaded_with_data(loaded, data), model)
    base_cfg, up_cfg = base.phases[-1], upgraded.phases[-1]
    years = base_cfg.window.duration_days / 365.0
    gen1_limit = sum(v for (_k, reason), v in base_cfg.unmet_expected.items() if reason == "gen1_limit")
    gen1_limit_per_year = gen1_limit / years if years > 0 else 0.0
    rate1, _ = _rates_by_site(base, base_cfg)
    rate2, by_service2 = _rates_by_site(upgraded, up_cfg)
    agents = agent_lines_of(loaded)
    p1, p2 = profile_for_generation(1), profile_for_generation(2)
    index = {sid: i for i, sid in enumerate(base.site_ids)}
    gains = []
    for sid in cands:
        site = spec.site(sid)
        i = index[sid]
        gain = max(0.0, rate2.get(i, 0.0) - rate1.get(i, 0.0))
        limited = sum(r for svc, r in by_service2.get(i, {}).items() if svc not in site.services)
        line_after, note, new_line = site.line.offer, None, site.line
        if resize_lines:
            choice = size_line(site.line, 2, agents, model, target, site_id=sid)
            if choice.offer is not None:
                line_after = choice.offer
                new_line = site.line.model_copy(update={"offer": choice.offer})
            else:
                note = choice.reason
        kiosk1, kiosk2 = build_line(site.line), build_line(new_line)
        mos1 = worst_quality([model.score(kiosk1, a, p1) for a in agents]).mos
        mos2 = worst_quality([model.score(kiosk2, a, p2) for a in agents]).mos
        limited = min(limited, gain)
        other = gain - limited
        if other <= 1e-9 * max(1.0, gain):  # float noise of two sums over the same streams
            other, limited = 0.0, gain
        gains.append(UpgradeGain(sid, gain, limited, other, mos1, mos2,
                                 site.line.offer, line_after, note))
    return tuple(gains), gen1_limit_per_year


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
        budget_eur: budget per phase, EUR (default :data:`DEFAULT_UPGRADES_PER_PHASE` x
            ``costs.upgrade_capex_eur``).
        start_date: first upgrade phase (default one year after the last phase's start); must be after
            the last phase's start.
        max_phases: at most this many upgrade phases (default: as many as needed).
        resize_lines, target, quality_model: see :func:`upgrade_gains`.

    Returns:
        :class:`UpgradePlan`.

    Raises:
        TwinInputError: a budget that buys no upgrade, NaN/negative budget, max_phases < 1, a start date
            not after the last phase, nothing to upgrade.
    """
    spec = loaded.spec
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
    gains, gen1_limit = upgrade_gains(loaded, resize_lines, target, quality_model)
    ordered = sorted(gains, key=lambda g: (-g.gain_per_year, -(g.mos_after - g.mos_before), g.site_id))
    useful = [g for g in ordered if g.gain_per_year > 1e-9]
    skipped = [(g, "no demand gain: every service whose need reaches it is already reachable")
               for g in ordered if g.gain_per_year <= 1e-9]
    taken_names = {p.name for p in spec.phases}
    steps: list[UpgradeStep] = []
    cumulative = 0.0
    phase_names: dict[int, str] = {}
    for k, g in enumerate(useful):
        phase_k = k // per_phase
        if max_phases is not None and phase_k >= max_phases:
            skipped.append((g, f"beyond the budget of {max_phases} phase(s)"))
            continue
        day = add_years(start, phase_k)
        if phase_k not in phase_names:
            phase_names[phase_k] = unique_id(f"upgrades-{day.year}", taken_names)
        cumulative += g.gain_per_year
        steps.append(UpgradeStep(k + 1, phase_names[phase_k], day, g, cumulative, capex))
    return UpgradePlan(tuple(steps), tuple(skipped), per_phase if capex > 0 else len(useful), budget, capex,
                       gen1_limit, resize_lines)


def apply_upgrades(loaded: LoadedScenario, plan: UpgradePlan, name_suffix: str = "upgrades") -> dict:
    """The scenario data with the plan's phases appended (``upgrade:`` lists), upgraded kiosks'
    lines resized when the plan says so, and ``simulation.end_date`` extended to the end of the last
    upgrade year."""
    data = scenario_data(loaded)
    phases: dict[str, dict] = {}
    for step in plan.steps:
        phase = phases.setdefault(step.phase_name, {"name": step.phase_name,
                                                    "start_date": step.start_date.isoformat(), "upgrade": []})
        phase["upgrade"].append(step.gain.site_id)
    data["phases"].extend(phases.values())
    new_offer = {s.gain.site_id: s.gain.line_after for s in plan.steps if s.gain.line_after != s.gain.line_before}
    for site in data["sites"]:
        if site["id"] in new_offer:
            line = dict(site.get("line", {}))
            line["offer"] = new_offer[site["id"]]
            site["line"] = line
    if plan.steps:
        end = add_years(plan.steps[-1].start_date, 1) - dt.timedelta(days=1)
        if loaded.spec.simulation.end_date < end:
            data["simulation"]["end_date"] = end.isoformat()
    data["name"] = f"{loaded.spec.name}-{name_suffix}"
    return data


def upgrades_header(plan: UpgradePlan, source) -> list[str]:
    """Comment lines heading an upgrade-planned scenario file."""
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
