"""Planners on scenarios: placement, line sizing and upgrades written as scenarios the twin runs.

Fast: the tiny scenario (three kiosks, four months) and small synthetic variants of it; one Auvergne
p-median run checks the placement against the historical coverage.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planners.distances import great_circle_km as planners_gc
from planners.lines import LineTarget, agent_lines_of, size_line, size_lines
from planners.plans import plan_placement, plan_upgrades, upgrade_gains
from planners.rollout import installed_after
from planners.scenarios import (
    apply_line_sizing,
    apply_upgrades,
    placement_problem_from_scenario,
    read_candidate_file,
    slugify,
    write_scenario,
)
from twin.errors import TwinInputError
from twin.line import OFFERS
from twin.model import prepare
from twin.profiles import profile_for_generation
from twin.quality import OpinionQualityModel, quality_for_scenario
from twin.region import great_circle_km as region_gc
from twin.region import road_distance_matrix_km
from twin.run.runner import run_scenario
from twin.scenario.loading import load_scenario, scenario_data
from twin.scenario.loading import with_data as loaded_with_data
from twin.scenario.spec import LineSpec, build_line

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "scenarios" / "tiny.yaml"
AUVERGNE = ROOT / "scenarios" / "auvergne-2008.yaml"
PMED1 = ROOT / "tests" / "data" / "or-library" / "pmed1.txt"


@pytest.fixture(scope="module")
def tiny():
    return load_scenario(TINY)


def _run(path: Path, out: Path, replications: int = 2) -> dict:
    outcome = run_scenario(path, replications=replications, jobs=1, out_dir=out)
    assert outcome.replications_done == replications
    return outcome.summary


def _mean(summary: dict, phase: str, kpi: str) -> float:
    return summary[phase][kpi]["mean"]


# ------------------------------------------------------------------ shared plumbing


def test_distances_reuse_the_twins_haversine():
    lat1, lon1 = np.array([45.0, 45.78]), np.array([3.0, 3.09])
    lat2, lon2 = np.array([46.0, 44.93]), np.array([3.5, 2.44])
    assert np.array_equal(planners_gc(lat1, lon1, lat2, lon2), region_gc(lat1, lon1, lat2, lon2))


def test_slugify_and_installed_after(tiny):
    assert slugify("Saint-Germain-l'Herm") == "saint-germain-l-herm"
    assert slugify("Allègre") == "allegre"
    assert slugify("!!!") == "site"
    assert installed_after(tiny.spec, 0) == []
    assert installed_after(tiny.spec, 1) == ["vorey", "retournac", "anpe-le-puy"]
    assert installed_after(tiny.spec) == ["vorey", "retournac", "anpe-le-puy", "cunlhat"]


def test_problem_from_scenario_uses_the_twins_distances(tiny):
    sp = placement_problem_from_scenario(tiny, min_population=5000, fix_existing=True)
    n = len(tiny.communes)
    assert sp.problem.cost.shape == (n, len(sp.candidates))
    assert sp.existing == ("vorey", "retournac", "cunlhat")
    assert [c.existing_site for c in sp.candidates[:3]] == ["vorey", "retournac", "cunlhat"]
    assert all(c.existing_site is None and c.population >= 5000 for c in sp.candidates[3:])
    assert sp.problem.fixed_sites == (0, 1, 2)
    communes = np.array([(c.lat, c.lon) for c in tiny.communes])
    cands = np.array([(c.lat, c.lon) for c in sp.candidates])
    np.testing.assert_array_equal(sp.problem.cost, road_distance_matrix_km(communes, cands, 1.3))
    np.testing.assert_array_equal(sp.problem.weights, [c.population for c in tiny.communes])
    shortcut = placement_problem_from_scenario(tiny, min_population=5000).problem
    np.testing.assert_array_equal(shortcut.cost, sp.problem.cost)
    assert shortcut.fixed_sites == ()


def test_candidate_file(tiny, tmp_path):
    f = tmp_path / "cands.txt"
    f.write_text("# towns\nYssingeaux\n\ngn3024635  # Clermont-Ferrand by id\nYssingeaux\n", encoding="utf-8")
    ids = read_candidate_file(f, tiny)
    assert len(ids) == 2 and ids[1] == "gn3024635"
    sp = placement_problem_from_scenario(tiny, candidate_communes=ids)
    assert [c.label for c in sp.candidates[3:]] == ["Yssingeaux", "Clermont-Ferrand"]
    f.write_text("Atlantis\n", encoding="utf-8")
    with pytest.raises(TwinInputError, match="line 1.*Atlantis"):
        read_candidate_file(f, tiny)
    with pytest.raises(TwinInputError, match="not found"):
        read_candidate_file(tmp_path / "missing.txt", tiny)


# ------------------------------------------------------------------ placement


def test_placement_final_mode_loads_runs_and_keeps_history(tiny, tmp_path):
    plan = plan_placement(tiny, model="p-median", p=3)
    out = write_scenario(plan.data, tiny, tmp_path / "sub" / "planned.yaml", ["test"])
    assert out.spec.name == "tiny-planned-p-median"
    # earlier phases untouched, same dates (twin compare aligns them)
    assert out.spec.phases[:-1] == tiny.spec.phases[:-1]
    assert [p.start_date for p in out.spec.phases] == [p.start_date for p in tiny.spec.phases]
    final_users = [s for s in installed_after(out.spec) if out.spec.site(s).kind == "user"]
    assert len(final_users) == 3
    assert set(final_users) == set(plan.kept) | {sid for sid, _ in plan.new_sites}
    assert "anpe-le-puy" in installed_after(out.spec)  # expert kiosks kept
    inputs = prepare(out, quality_for_scenario(out))
    assert inputs.phases[-1].population_within_15km == pytest.approx(plan.population_within_15km_after)
    assert plan.population_within_15km_after >= plan.population_within_15km_before
    summary = _run(tmp_path / "sub" / "planned.yaml", tmp_path / "run")
    assert _mean(summary, "extension", "user_kiosks") == 3


def test_fixed_sites_kept(tiny, tmp_path):
    plan = plan_placement(tiny, model="p-median", p=5, fix_existing=True)
    assert set(plan.kept) == {"vorey", "retournac", "cunlhat"}
    assert plan.removed == ()
    assert len(plan.new_sites) == 2
    out = write_scenario(plan.data, tiny, tmp_path / "fixed.yaml")
    users = [s for s in installed_after(out.spec) if out.spec.site(s).kind == "user"]
    assert {"vorey", "retournac", "cunlhat"} <= set(users) and len(users) == 5
    for sid, cand in plan.new_sites:
        site = out.spec.site(sid)
        assert site.generation == 2 and site.place.commune == cand.commune_id
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", sid)
    with pytest.raises(TwinInputError, match="smaller than the number of fixed"):
        plan_placement(tiny, p=2, fix_existing=True)


def test_append_and_history_modes(tiny, tmp_path):
    plan = plan_placement(tiny, model="mclp", p=3, radius_km=15, mode="append", start_date=dt.date(2007, 6, 1))
    out = write_scenario(plan.data, tiny, tmp_path / "append.yaml")
    assert out.spec.phases[:-1] == tiny.spec.phases
    assert out.spec.phases[-1].name == "planned"
    assert out.spec.phases[-1].start_date == dt.date(2007, 6, 1)
    assert out.spec.simulation.end_date == dt.date(2008, 5, 31)
    with pytest.raises(TwinInputError, match="must be after the last phase"):
        plan_placement(tiny, mode="append", start_date=dt.date(2007, 3, 1))

    plan = plan_placement(tiny, model="p-median", p=3, mode="history")
    out = write_scenario(plan.data, tiny, tmp_path / "history.yaml")
    first_users = [s for s in out.spec.phases[0].add if out.spec.site(s).kind == "user"]
    assert len(first_users) == 3
    assert [p.start_date for p in out.spec.phases] == [p.start_date for p in tiny.spec.phases]
    assert all(out.spec.site(s).kind != "user" for p in out.spec.phases[1:] for s in p.add)
    _run(tmp_path / "history.yaml", tmp_path / "run", replications=1)


def test_new_generation1_kiosks_get_services(tiny, tmp_path):
    plan = plan_placement(tiny, p=4, fix_existing=True, generation=1, loop_length_m=7000)
    out = write_scenario(plan.data, tiny, tmp_path / "g1.yaml")
    (sid, _), = plan.new_sites
    site = out.spec.site(sid)
    assert site.generation == 1 and set(site.services) == {"anpe", "caf"}
    assert site.line.offer == "readsl-512-128" and site.line.loop_length_m == 7000  # only READSL reaches 7 km


def test_auvergne_pmedian_beats_historical_coverage():
    loaded = load_scenario(AUVERGNE)
    plan = plan_placement(loaded, model="p-median", p=58, time_limit_s=60)
    assert plan.result.optimal and plan.result.gap == 0
    assert plan.population_within_15km_after > plan.population_within_15km_before
    out = loaded_with_data(loaded, plan.data)
    last = prepare(out, quality_for_scenario(out)).phases[-1]
    assert last.population_within_15km == pytest.approx(plan.population_within_15km_after)
    assert len(last.installed_user) == 58


# ------------------------------------------------------------------ line sizing


def test_size_line_picks_the_cheapest_sufficient_eligible_offer(tiny):
    model = OpinionQualityModel()
    agents = agent_lines_of(tiny)
    target = LineTarget()
    for generation in (1, 2):
        profile = profile_for_generation(generation)
        for loop_m in (1500.0, 4000.0, 6000.0, 7500.0):
            choice = size_line(LineSpec(loop_length_m=loop_m), generation, agents, model, target)
            # brute force: every cheaper offer is ineligible or misses the target
            sufficient = []
            for offer in OFFERS.values():
                try:
                    line = build_line(LineSpec(offer=offer.name, loop_length_m=loop_m))
                except TwinInputError:
                    continue
                worst = min((model.score(line, a, profile) for a in agents), key=lambda q: q.mos)
                if target.shortfall(worst, profile) is None:
                    sufficient.append(offer.monthly_cost_eur)
            if sufficient:
                assert choice.offer is not None and choice.monthly_cost_eur == min(sufficient)
                assert choice.reason is None
            else:
                assert choice.offer is None and choice.reason
    assert size_line(LineSpec(loop_length_m=2000), 1, agents, model, target).offer == "adsl-512-128"
    assert size_line(LineSpec(loop_length_m=7500), 1, agents, model, target).offer == "readsl-512-128"


def test_impossible_sites_are_listed_with_the_reason(tiny, tmp_path):
    data = scenario_data(tiny)
    for site in data["sites"]:
        if site["id"] == "retournac":
            site["line"] = {"offer": "readsl-512-128", "loop_length_m": 7900}
            site["generation"] = 2
            site.pop("services", None)
    loaded = loaded_with_data(tiny, data)
    sizing = size_lines(loaded)
    (bad,) = sizing.impossible
    assert bad.site_id == "retournac" and bad.offer is None
    assert "speech MOS" in bad.reason and "not eligible at 7900 m" in bad.reason
    out = write_scenario(apply_line_sizing(loaded, sizing), loaded, tmp_path / "lines.yaml")
    assert out.spec.site("retournac").line.offer == "readsl-512-128"  # kept
    by_site = {c.site_id: c for c in sizing.choices}
    assert out.spec.site("cunlhat").line.offer == by_site["cunlhat"].offer
    # nothing reaches 9 km
    far = size_line(LineSpec(loop_length_m=9000), 1, agent_lines_of(tiny), OpinionQualityModel())
    assert far.offer is None and "no offer is eligible" in far.reason
    # an unreachable video MOS target is reported, not hidden
    strict = size_lines(tiny, LineTarget(video_mos=4.5))
    assert len(strict.impossible) == 3 and all("video MOS" in c.reason for c in strict.impossible)
    _run(tmp_path / "lines.yaml", tmp_path / "run", replications=1)


# ------------------------------------------------------------------ upgrades


@pytest.fixture(scope="module")
def two_gen1(tiny):
    """tiny without the Vorey upgrade, Vorey and Retournac reaching only the ANPE: both lose CAF demand."""
    data = scenario_data(tiny)
    for site in data["sites"]:
        if site["id"] in ("vorey", "retournac"):
            site["services"] = ["anpe"]
    for phase in data["phases"]:
        phase.pop("upgrade", None)
    return loaded_with_data(tiny, data)


def test_upgrade_gains_are_the_gen1_limit_losses(two_gen1):
    gains, lost = upgrade_gains(two_gen1)
    assert {g.site_id for g in gains} == {"vorey", "retournac"}
    assert all(g.gain_per_year > 0 for g in gains)
    assert sum(g.gen1_limit_per_year for g in gains) == pytest.approx(lost)
    last = prepare(two_gen1, quality_for_scenario(two_gen1)).phases[-1]
    years = last.window.duration_days / 365.0
    assert lost == pytest.approx(sum(v for (_, r), v in last.unmet_expected.items() if r == "gen1_limit") / years)


def test_upgrades_ordered_by_gain_and_confirmed_by_the_twin(two_gen1, tmp_path):
    capex = two_gen1.spec.costs.upgrade_capex_eur
    plan = plan_upgrades(two_gen1, budget_eur=capex * 1.5, start_date=dt.date(2007, 4, 1))
    assert plan.upgrades_per_phase == 1
    gains = [s.gain.gain_per_year for s in plan.steps]
    assert gains == sorted(gains, reverse=True) and len(gains) == 2
    assert [s.phase_name for s in plan.steps] == ["upgrades-2007", "upgrades-2008"]
    assert plan.steps[-1].cumulative_gain_per_year == pytest.approx(sum(gains))
    data = apply_upgrades(two_gen1, plan)
    path = tmp_path / "upgrades.yaml"
    out = write_scenario(data, two_gen1, path)
    assert [p.upgrade for p in out.spec.phases[-2:]] == [[plan.steps[0].gain.site_id], [plan.steps[1].gain.site_id]]
    assert out.spec.simulation.end_date == dt.date(2009, 3, 31)
    for s in plan.steps:  # generation-2 kiosks get a line that carries generation 2
        assert out.spec.site(s.gain.site_id).line.offer == s.gain.line_after != "readsl-512-128"
    summary = _run(path, tmp_path / "run", replications=3)
    phases = ["extension", "upgrades-2007", "upgrades-2008"]
    per_year = [_mean(summary, p, "interviews_served_per_year") for p in phases]
    gen1 = [_mean(summary, p, "unmet_gen1_limit") * 365.0 / d
            for p, d in zip(phases, (31, 366, 365))]
    assert gen1[0] > gen1[1] > gen1[2] == 0
    half = summary["upgrades-2008"]["interviews_served_per_year"]["ci95_half_width"]
    assert per_year[2] >= per_year[1] - half
    assert per_year[1] >= per_year[0] - summary["extension"]["interviews_served_per_year"]["ci95_half_width"]


def test_upgrade_bad_inputs(tiny, two_gen1):
    with pytest.raises(TwinInputError, match="buys no upgrade"):
        plan_upgrades(two_gen1, budget_eur=10.0)
    with pytest.raises(TwinInputError, match="finite"):
        plan_upgrades(two_gen1, budget_eur=float("nan"))
    with pytest.raises(TwinInputError, match="after the last phase"):
        plan_upgrades(two_gen1, start_date=dt.date(2007, 1, 1))
    data = scenario_data(tiny)
    data["phases"][1]["upgrade"] = ["vorey", "retournac"]
    with pytest.raises(TwinInputError, match="nothing to upgrade"):
        plan_upgrades(loaded_with_data(tiny, data))


# ------------------------------------------------------------------ command line


def _twin(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def test_cli_orlib_pmed1():
    proc = _twin("plan", "orlib", str(PMED1))
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "5819" in line)
    cells = [c.strip() for c in re.split(r"[│|]", row) if c.strip()]
    assert cells[:5] == ["5819", "5819", "0", "yes", "5819"]


def test_cli_placement_lines_upgrades_write_runnable_scenarios(tmp_path):
    out = tmp_path / "planned.yaml"
    proc = _twin("plan", "placement", str(TINY), "--model", "lscp", "--radius-km", "25", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "lscp" in proc.stdout and "gap" in proc.stdout
    load_scenario(out)
    lines_out = tmp_path / "lines.yaml"
    proc = _twin("plan", "lines", str(out), "-o", str(lines_out))
    assert proc.returncode == 0, proc.stderr
    upg = tmp_path / "upgrades.yaml"
    proc = _twin("plan", "upgrades", str(TINY), "--start-date", "2007-04-01", "-o", str(upg))
    assert proc.returncode == 0, proc.stderr
    assert "retournac" in proc.stdout
    spec = load_scenario(upg).spec
    assert spec.phases[-1].upgrade == ["retournac"]
    _run(lines_out, tmp_path / "run", replications=1)


@pytest.mark.parametrize("args, message", [
    (["placement", str(TINY), "--model", "k-means", "-o", "X"], "unknown placement model"),
    (["placement", str(TINY), "-p", "100000", "-o", "X"], "exceeds the number of candidate"),
    (["placement", str(TINY), "--model", "lscp", "--radius-km", "0.5", "-o", "X"], "LSCP infeasible"),
    (["placement", str(TINY), "--model", "mclp", "--radius-km", "nan", "-o", "X"], "--radius-km"),
    (["placement", str(TINY), "--model", "mclp", "--radius-km", "0", "-o", "X"], "--radius-km"),
    (["placement", str(TINY), "--time-limit-s", "-1", "-o", "X"], "--time-limit-s"),
    (["placement", str(TINY), "--seed", "-1", "-o", "X"], "--seed"),
    (["placement", str(TINY), "-o", str(TINY)], "input scenario"),
    (["placement", "missing.yaml", "-o", "X"], "not found"),
    (["placement", str(TINY), "--candidates", "missing.txt", "-o", "X"], "not found"),
    (["upgrades", str(TINY), "--budget-eur", "5", "-o", "X"], "buys no upgrade"),
    (["lines", str(TINY), "--target-mos", "nan", "-o", "X"], "'--target-mos': 'nan' is not a finite number in [1, 5]"),
    (["lines", str(TINY), "--min-fps-share", "2", "-o", "X"], "'--min-fps-share': '2' is not a finite number in [0, 1]"),
    (["lines", str(TINY), "--target-video-mos", "0", "-o", "X"], "'--target-video-mos': '0' is not a finite number in [1, 5]"),
    (["placement", str(TINY), "--model", "lscp", "-p", "3", "-o", "X"], "does not apply to --model lscp"),
    (["orlib", "missing-pmed.txt"], "not found"),
])
def test_cli_bad_inputs_exit_2(tmp_path, args, message):
    args = [str(tmp_path / "out.yaml") if a == "X" else a for a in args]
    proc = _twin("plan", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_run_folder_summary_is_json(tmp_path):
    """The planned Auvergne scenario committed for twin compare loads and keeps the input's dates."""
    planned = load_scenario(ROOT / "scenarios" / "auvergne-planned-pmedian.yaml")
    historical = load_scenario(AUVERGNE)
    assert [p.start_date for p in planned.spec.phases] == [p.start_date for p in historical.spec.phases]
    assert planned.spec.phases[:-1] == historical.spec.phases[:-1]
    assert json.dumps(scenario_data(planned))  # plain data
