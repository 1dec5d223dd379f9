"""``twin plan``: thin click commands over the planners. Each parses its options, calls one planner
function (:mod:`planners.plans`, or :func:`planners.orlib.solve_orlib_file`) that checks the output, plans
and writes the planned scenario (atomically, loaded back as a check), and prints the plan with rich.

Bad input raises :class:`twin.errors.TwinInputError`, which ``twin``'s entry point reports as one
paragraph with exit status 2. No model logic lives here.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import click

from twin.cli.options import Bounded as _Bounded
from twin.cli.options import NamedChoice, force_option, out_option
from twin.vocabulary import LATEST_DATE

__all__ = ["plan_group"]

_DATE = click.DateTime(formats=["%Y-%m-%d"])


_TIME_LIMIT = _Bounded(0.0, 86_400.0)
_RADIUS = _Bounded(0.0, 1_000.0)
_SEED = click.IntRange(min=0)
_LATEST_PLAN_DATE = dt.datetime.combine(LATEST_DATE, dt.time())


def _check_start_date(ctx, param, value):  # click callback
    if value is not None and value > _LATEST_PLAN_DATE:
        raise click.BadParameter(f"{value:%Y-%m-%d} is after {_LATEST_PLAN_DATE:%Y-%m-%d}")
    return value


def _console():
    from rich.console import Console

    return Console(highlight=False, width=None if Console().is_terminal else 150)


def _num(value: float | None) -> str:
    """Objectives and bounds: integers as such (5819), others with one decimal (or 4 significant digits)."""
    if value is None or not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"


def _pop(value: float) -> str:
    return f"{value:,.0f}"


def _gap(gap: float) -> str:
    """A relative gap for the terminal: below 1e-9 it is rounding residue of a proven optimum (an MCLP
    printed 1.04e-14), shown as 0."""
    return "0" if abs(gap) < 1e-9 else f"{gap:.3g}"


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@click.group("plan")
def plan_group() -> None:
    """Planners: propose kiosk placements, line offers and upgrade orders, each written as a
    scenario that `twin run` evaluates."""


# --------------------------------------------------------------------------------------------------


@plan_group.command("placement")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=NamedChoice(["p-median", "mclp", "lscp", "p-center"], "placement model"),
              default="p-median", show_default=True, help="Placement model.")
@click.option("-p", "p", type=int, default=None,
              help="User kiosks to place, kept ones included (default: as many as the scenario has).")
@click.option("--radius-km", type=_RADIUS, default=15.0, show_default=True,
              help="Coverage radius, road km (mclp, lscp).")
@click.option("--min-population", type=int, default=1000, show_default=True,
              help="Communes with at least this population are candidate sites.")
@click.option("--candidates", "candidates_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of candidate communes (ids or names, one per line) instead of --min-population.")
@click.option("--fix-existing", is_flag=True, help="Keep every user kiosk installed by the last phase.")
@click.option("--generation", type=int, default=2, show_default=True, help="Generation of new kiosks (1 or 2).")
@click.option("--loop-length-m", type=float, default=None,
              help="Assumed loop length of new sites, m (default: median of the scenario's user kiosks).")
@click.option("--start-date", type=_DATE, default=None, callback=_check_start_date,
              help="Put the plan in a new phase 'planned' starting then (after the last phase). Default: "
                   "replace the user kiosks at the start of the last phase (same dates as the input).")
@click.option("--replace-history", is_flag=True,
              help="Install the planner's kiosks from the first phase instead (same phase dates).")
@click.option("--time-limit-s", type=_TIME_LIMIT, default=60.0, show_default=True, help="Solver time limit, s.")
@click.option("--seed", type=_SEED, default=0, show_default=True, help="Seed of the p-median local search.")
@out_option("The planned scenario to write (YAML)", file=True, required=True)
@force_option("scenario file")
def placement_command(scenario: Path, model: str, p: int | None, radius_km: float, min_population: int,
                      candidates_file: Path | None, fix_existing: bool, generation: int,
                      loop_length_m: float | None, start_date: dt.datetime | None, replace_history: bool,
                      time_limit_s: float, seed: int, out: Path, force: bool) -> None:
    """Place SCENARIO's user kiosks (demand: communes by population) and write the planned scenario."""
    from rich.table import Table

    from planners.plans import REPORT_RADIUS_KM, placement_file

    t0 = time.perf_counter()
    planned = placement_file(scenario, out, model=model, p=p, radius_km=radius_km, min_population=min_population,
                             candidates_file=candidates_file, fix_existing=fix_existing, generation=generation,
                             loop_length_m=loop_length_m, start_date=_date(start_date),
                             replace_history=replace_history, time_limit_s=time_limit_s, seed=seed, force=force)
    elapsed = time.perf_counter() - t0
    loaded, plan = planned.source, planned.plan
    res = plan.result
    console = _console()
    table = Table(title=f"{loaded.spec.name}: {res.model} placement of user kiosks")
    for col in ("sites", "kept", "new", "removed", "objective", "bound", "gap", "optimal", "solve s",
                f"pop. within {REPORT_RADIUS_KM:g} km"):
        table.add_column(col, justify="right")
    table.add_row(str(len(res.sites)), str(len(plan.kept)), str(len(plan.new_sites)), str(len(plan.removed)),
                  _num(res.objective), _num(res.bound), _gap(res.gap), "yes" if res.optimal else "NO",
                  f"{res.solve_time_s:.2f}",
                  f"{_pop(plan.population_within_15km_before)} -> {_pop(plan.population_within_15km_after)}")
    console.print(table)
    console.print(f"method {res.method}: {res.status}")
    if plan.new_sites:
        new = Table(title="new kiosks")
        for col, just in (("site", "left"), ("commune", "left"), ("commune_id", "left"), ("population", "right")):
            new.add_column(col, justify=just)
        for sid, cand in plan.new_sites:
            new.add_row(sid, cand.label, cand.commune_id or "-", f"{cand.population:,}")
        console.print(new)
    if plan.removed:
        console.print(f"not kept ({len(plan.removed)}): {', '.join(plan.removed)}")
    console.print(plan.line_note)
    console.print(f"total {elapsed:.1f} s; wrote {out} (mode {plan.mode}); evaluate it with: twin run {out}")


# --------------------------------------------------------------------------------------------------


@plan_group.command("lines")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target-mos", type=_Bounded(1.0, 5.0, low_closed=True), default=3.1, show_default=True,
              help="Minimum speech MOS (worse direction) the line must give the kiosk's profile (3.1: R 60, G.109).")
@click.option("--min-fps-share", type=_Bounded(0.0, 1.0, low_closed=True), default=0.8, show_default=True,
              help="Minimum delivered frame rate, as a share of the profile's frame rate.")
@click.option("--target-video-mos", type=_Bounded(1.0, 5.0, low_closed=True), default=None,
              help="Also require this video MOS (G.1070 or calibration); default: not required.")
@click.option("--max-delay-ms", type=_Bounded(0.0, 60_000.0), default=400.0, show_default=True,
              help="Largest p95 one-way delay, each direction, ms (ITU-T G.114: 400).")
@click.option("--verify", is_flag=True, default=False,
              help="Emulate each chosen line with the site's profile in virtual time (20 s, with and without "
                   "documents) and report target met / not met.")
@out_option("The scenario with resized lines to write (YAML)", file=True, required=True)
@force_option("scenario file")
def lines_command(scenario: Path, target_mos: float, min_fps_share: float, target_video_mos: float | None,
                  max_delay_ms: float, verify: bool, out: Path, force: bool) -> None:
    """Give each user kiosk of SCENARIO the cheapest line offer meeting the quality target."""
    from rich.table import Table

    from planners.lines import LineTarget
    from planners.plans import lines_file

    t0 = time.perf_counter()
    target = LineTarget(speech_mos=target_mos, min_frame_rate_share=min_fps_share, video_mos=target_video_mos,
                        max_delay_p95_ms=max_delay_ms)
    planned = lines_file(scenario, out, target, force=force)
    loaded, sizing = planned.source, planned.plan
    console = _console()
    table = Table(title=f"{loaded.spec.name}: line sizing ({sizing.quality_source} quality model, worst of "
                        f"{sizing.agent_lines} agent line(s))")
    for col in ("site", "gen", "loop m", "current", "chosen", "EUR/month", "speech MOS", "fps up", "fps down",
                "p95 up ms", "MOS", "usable"):
        table.add_column(col, justify="left" if col in ("site", "current", "chosen") else "right")
    for c in sizing.choices:
        q = c.quality
        table.add_row(c.site_id, str(c.generation), f"{c.loop_length_m:.0f}", c.current_offer, c.offer or "NONE",
                      f"{c.monthly_cost_eur:.0f}" if c.monthly_cost_eur is not None else "-",
                      f"{q.speech_mos:.2f}" if q else "-", f"{q.frame_rate_fps_up:.1f}" if q else "-",
                      f"{q.frame_rate_fps_down:.1f}" if q and q.frame_rate_fps_down is not None else "-",
                      f"{q.one_way_delay_ms:.0f}" if q else "-", f"{q.mos:.2f}" if q else "-",
                      f"{q.usable:.0%}" if q and q.usable is not None else "-")
    console.print(table)
    console.print(f"target: {target.describe()}")
    for point in dict.fromkeys(c.operating_point for c in sizing.choices if c.operating_point):
        sites = [c.site_id for c in sizing.choices if c.operating_point == point]
        console.print(f"measured operating point for {', '.join(sites)}: {point}")
    for c in sizing.impossible:
        console.print(f"no offer for {c.site_id}: {c.reason}")
    console.print(f"{sizing.changed} line(s) changed, {len(sizing.impossible)} site(s) without a sufficient "
                  f"offer; monthly line cost {sizing.current_monthly_cost_eur:,.0f} -> "
                  f"{sizing.monthly_cost_eur:,.0f} EUR")
    if verify:
        _verify_lines(console, sizing, target)
    console.print(f"total {time.perf_counter() - t0:.1f} s; wrote {out}; evaluate it with: twin run {out}")


def _verify_lines(console, sizing, target) -> None:
    """``--verify``: emulate each distinct chosen (offer, loop, generation) in virtual time and print
    whether the target is met without documents, and the documents' times with a scan in flight."""
    import tempfile

    from emulators.calibrate import rows_to_csv, verify_line
    from twin.datafiles import read_calibration_csv
    from twin.line import AdslLine
    from twin.profiles import profile_for_generation

    # one emulation per (offer, sync rates, generation): the emulated line is its sync rates, loss and
    # interleaving, so sites whose loops sync alike get the same call (the first site's loop is used)
    chosen: dict[tuple, tuple[float, list[str]]] = {}
    for c in sizing.choices:
        if c.offer:
            line = AdslLine(c.offer, c.loop_length_m)
            key = (c.offer, line.sync_rate_up_kbps, line.sync_rate_down_kbps, c.generation)
            chosen.setdefault(key, (c.loop_length_m, []))[1].append(c.site_id)
    failed = 0
    for (offer, _up, _down, gen), (loop_m, sites) in chosen.items():
        profile = profile_for_generation(gen)
        rows = verify_line(offer, loop_m, profile.name)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "verify.csv"
            path.write_text(rows_to_csv(rows))
            table = read_calibration_csv(path)
        line = AdslLine(offer, loop_m)
        q = table.score_kiosk_side(line, profile)
        point, _ = table.point(line, profile)
        short = target.shortfall(q, profile)
        failed += short is not None
        verdict = "target met" if short is None else f"target NOT met: {short}"
        console.print(f"verify {profile.name} on {offer}@{loop_m:g} (for {len(sites)} site(s): {', '.join(sites)}): "
                      f"{verdict}; emulated: {point.describe()}")
    console.print(f"verified {len(chosen)} line(s): {len(chosen) - failed} met the target, {failed} did not")


# --------------------------------------------------------------------------------------------------


@plan_group.command("upgrades")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--budget-eur", type=float, default=None,
              help="Budget per yearly phase, EUR (default: 10 upgrades at costs.upgrade_capex_eur).")
@click.option("--start-date", type=_DATE, default=None, callback=_check_start_date,
              help="First upgrade phase (default: one year after the last phase starts).")
@click.option("--max-phases", type=int, default=None, help="At most this many upgrade phases.")
@click.option("--keep-lines", is_flag=True,
              help="Do not give upgraded kiosks a line that carries the generation-2 profile.")
@out_option("The scenario with the upgrade phases to write (YAML)", file=True, required=True)
@force_option("scenario file")
def upgrades_command(scenario: Path, budget_eur: float | None, start_date: dt.datetime | None,
                     max_phases: int | None, keep_lines: bool, out: Path, force: bool) -> None:
    """Order SCENARIO's generation-1 kiosk upgrades by demand gained, in yearly budgeted phases."""
    from rich.table import Table

    from planners.plans import upgrades_file

    t0 = time.perf_counter()
    planned = upgrades_file(scenario, out, budget_eur=budget_eur, start_date=_date(start_date),
                            max_phases=max_phases, resize_lines=not keep_lines, force=force)
    loaded, plan = planned.source, planned.plan
    console = _console()
    table = Table(title=f"{loaded.spec.name}: upgrade plan ({plan.upgrades_per_phase} per phase, "
                        f"{plan.budget_eur:,.0f} EUR per phase)")
    for col in ("#", "phase", "site", "gain/yr", "gen1 limit", "other", "cumulative/yr", "MOS before",
                "MOS after", "line"):
        table.add_column(col, justify="left" if col in ("phase", "site", "line") else "right", no_wrap=col == "line")
    for s in plan.steps:
        g = s.gain
        line = g.line_before if g.line_after == g.line_before else f"{g.line_before}→{g.line_after}"
        table.add_row(str(s.rank), s.phase_name, g.site_id, f"{g.gain_per_year:.1f}",
                      f"{g.gen1_limit_per_year:.1f}", f"{g.other_per_year:.1f}",
                      f"{s.cumulative_gain_per_year:.1f}", f"{g.mos_before:.2f}", f"{g.mos_after:.2f}", line)
    console.print(table)
    for g, reason in plan.not_scheduled:
        console.print(f"not scheduled: {g.site_id}: {reason}")
    console.print(f"reachable demand lost to the 6-service limit before upgrades: {plan.gen1_limit_per_year:.1f}/yr; "
                  f"the plan recovers {plan.gain_per_year:.1f}/yr (expected; the twin judges capacity)")
    console.print(f"total {time.perf_counter() - t0:.1f} s; wrote {out}; evaluate it with: twin run {out}")


# --------------------------------------------------------------------------------------------------


@plan_group.command("orlib")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-p", "p", type=int, default=None, help="Medians to open (default: the file's p).")
@click.option("--time-limit-s", type=_TIME_LIMIT, default=60.0, show_default=True, help="Solver time limit, s.")
@click.option("--seed", type=_SEED, default=0, show_default=True, help="Seed of the local search restarts.")
def orlib_command(file: Path, p: int | None, time_limit_s: float, seed: int) -> None:
    """Solve an OR-Library p-median FILE (pmedN.txt); print objective, lower bound, gap and time."""
    from rich.table import Table

    from planners.orlib import solve_orlib_file

    run = solve_orlib_file(file, p=p, time_limit_s=time_limit_s, seed=seed)
    res = run.result
    console = _console()
    table = Table(title=f"{run.name}: p-median, n = {run.n_vertices}, p = {run.p}")
    for col in ("objective", "lower bound", "gap", "optimal", "known optimum", "time s", "method"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row(_num(res.objective), _num(res.bound), _gap(res.gap), "yes" if res.optimal else "NO",
                  _num(run.known_optimum) if run.known_optimum is not None else "-", f"{res.solve_time_s:.2f}",
                  res.method)
    console.print(table)
