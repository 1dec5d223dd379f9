"""Demand through time, results per site and departement, observations and records (issue: the twin
through time), and the accounting of needs (served + unmet + pending = arrived)."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ALWAYS, ROOT, queue_scenario, small_scenario_data
from scipy import stats

from twin.errors import ScenarioError
from twin.kpis import compute_all, compute_kpis
from twin.model import prepare, simulate
from twin.quality import OpinionQualityModel
from twin.run.folder import read_run
from twin.run.runner import run_scenario
from twin.scenario.loading import scenario_from_data
from twin.scenario.spec import DemandDriver
from twin.vocabulary import COUNT_KPIS, DEPARTEMENT_KPIS, NO_KIOSK, UNMET_REASONS

TINY = ROOT / "scenarios" / "tiny.yaml"


def _driver(**changes) -> dict:
    driver = {"id": "d", "description": "test", "effect": "multiplier", "values": {2006: 1.0, 2007: 1.0},
              "source": "test"}
    driver.update(changes)
    return driver


def test_driver_factors() -> None:
    sub = DemandDriver(id="web", description="x", effect="substitution", substitution_share=0.5,
                       values={2007: 0.4}, source="s")
    assert sub.factor(2007) == pytest.approx(0.8)
    assert DemandDriver(id="m", description="x", effect="multiplier", values={2007: 1.3}, source="s").factor(2007) == 1.3


def test_a_yearly_driver_scales_arrivals_by_its_value() -> None:
    """A multiplier of 2 in the second year doubles the needs arriving: the yearly counts are Poisson
    with means in ratio 2; their ratio over replications falls in its 99% CI around 2."""
    loaded = queue_scenario(arrivals_per_min=0.02, mean_service_min=5.0, servers=3, booking="appointment",
                            patience_min=30, days=730)
    data = loaded.spec.model_dump(mode="json", exclude_unset=True)
    data["demand"]["drivers"] = [_driver(values={2006: 1.0, 2007: 1.0, 2008: 2.0})]
    doubled = scenario_from_data(data, communes=loaded.communes)
    inputs = prepare(doubled, OpinionQualityModel())
    first, second = [], []
    for child in np.random.SeedSequence(3).spawn(8):
        years = compute_all(inputs, simulate(inputs, child)).years
        first.append(years[2007]["interviews_served"])
        second.append(years[2008]["interviews_served"])
    ratio = sum(second) / sum(first)
    # the sum of Poisson counts: relative sd of the ratio ~ sqrt(1/a + 1/b)
    sd = ratio * math.sqrt(1 / sum(first) + 1 / sum(second))
    assert abs(ratio - 2.0) <= stats.norm.ppf(0.995) * sd, f"ratio {ratio:.3f} ± {sd:.3f}"


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["demand"].update(drivers=[_driver(values={2007: 1.0})]), r"demand\.drivers\[0\]\.values .*2006"),
    (lambda d: d["demand"].update(drivers=[_driver(services=["nope"])]), r"demand\.drivers\[0\]\.services\[0\]"),
    (lambda d: d["demand"].update(drivers=[_driver(values={2006: -1.0, 2007: 1.0})]), "multiplier >= 0"),
    (lambda d: d["demand"].update(drivers=[_driver(effect="substitution")]), "substitution_share"),
    (lambda d: d.update(observations=[{"phase": "pilot", "kpi": "happiness", "value": 3, "source": "s"}]),
     r"observations\[0\]\.kpi = 'happiness'"),
    (lambda d: d.update(observations=[{"phase": "nope", "kpi": "user_kiosks", "value": 3, "source": "s"}]),
     r"observations\[0\]\.phase = 'nope'"),
    (lambda d: d.update(observations=[{"phase": "pilot", "kpi": "user_kiosks", "value": -3, "source": "s"}]),
     r"observations\[0\]\.value = -3"),
    (lambda d: d.update(observations=[{"year": 1990, "kpi": "interviews_served", "value": 3, "source": "s"}]),
     r"observations\[0\]\.year = 1990"),
    (lambda d: d.update(observations=[{"phase": "pilot", "departement": "99", "kpi": "interviews_served",
                                       "value": 3, "source": "s"}]), r"observations\[0\]\.departement = '99'"),
])
def test_bad_drivers_and_observations_name_the_field(edit, needle) -> None:
    data = copy.deepcopy(small_scenario_data())
    edit(data)
    from conftest import SMALL_REGION

    with pytest.raises(ScenarioError, match=needle):
        scenario_from_data(data, communes=SMALL_REGION)


def test_bad_observation_in_a_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    data = yaml.safe_load(TINY.read_text())
    data["region"]["communes_file"] = str(TINY.parent / data["region"]["communes_file"])
    data["observations"] = [{"phase": "pilot", "kpi": "unmet_total", "departement": "43", "value": -1,
                             "source": "s"}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(path), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "observations[0].value" in proc.stderr and not (tmp_path / "r").exists()


def _sum_over_user_sites(inputs, sites, phase, kpi) -> float:
    return sum(v[kpi] for site, v in sites[phase].items() if site < 0 or inputs.site_kind[site] == "user")


def test_per_site_and_departement_kpis_sum_to_the_regional_ones(small_scenario) -> None:
    """Per replication: counts summed over user kiosks (and the no-kiosk row) and over departements equal
    the region's, in a scenario whose first phase has no kiosk and whose second has two departements."""
    def edit(data: dict) -> None:
        data["phases"] = [{"name": "before", "start_date": "2006-11-01", "add": ["anpe-le-puy"]},
                          {"name": "pilot", "start_date": "2007-01-01", "add": ["vorey"]}]
        data["simulation"]["end_date"] = "2007-06-30"

    loaded = small_scenario(edit)
    inputs = prepare(loaded, OpinionQualityModel())
    for child in np.random.SeedSequence(5).spawn(3):
        kpis = compute_all(inputs, simulate(inputs, child))
        assert -1 in kpis.sites["before"]  # needs with no kiosk at all
        for phase in ("before", "pilot"):
            for kpi in COUNT_KPIS:
                assert _sum_over_user_sites(inputs, kpis.sites, phase, kpi) == pytest.approx(kpis.phases[phase][kpi])
            for kpi in DEPARTEMENT_KPIS:
                total = sum(d[kpi] for d in kpis.departements[phase].values())
                assert total == pytest.approx(kpis.phases[phase][kpi])


def test_served_unmet_and_pending_add_up_to_the_needs_that_arrived() -> None:
    """An overloaded walk-in-free service (offered load above its agents: unstable) leaves needs
    waiting at the horizon: they are pending, and served + unmet + pending = arrived."""
    loaded = queue_scenario(arrivals_per_min=0.5, mean_service_min=10.0, servers=2, booking="appointment",
                            patience_min=30, days=20)
    inputs = prepare(loaded, OpinionQualityModel())
    kpis = compute_kpis(inputs, simulate(inputs, 11))["only"]
    assert kpis["unstable_svc"] == 1.0 and kpis["offered_load_svc"] == pytest.approx(5.0, rel=0.05)
    assert kpis["pending_at_end"] > 100
    assert kpis["interviews_served"] + kpis["unmet_total"] + kpis["pending_at_end"] == kpis["needs_arrived"]
    stable = prepare(queue_scenario(arrivals_per_min=0.1, mean_service_min=10.0, servers=2,
                                    booking="appointment", patience_min=30, days=20), OpinionQualityModel())
    assert compute_kpis(stable, simulate(stable, 11))["only"]["unstable_svc"] == 0.0


def test_an_interview_is_cut_short_when_a_line_goes_down_during_it() -> None:
    """A kiosk line down from day 5 to day 6: no served interview spans the outage's start, the ones in
    progress then are cut (counted line_down), and none starts during it."""
    from twin.line import OutageSchedule
    from twin.model.replication import Replication

    loaded = queue_scenario(arrivals_per_min=0.2, mean_service_min=30.0, servers=20, booking="appointment",
                            patience_min=30, days=10)
    inputs = prepare(loaded, OpinionQualityModel())
    rep = Replication(inputs, 4)
    day = 24 * 60.0
    down = ((3 + 5) * day, (3 + 6) * day)  # the warm-up is 3 days: minute 0 is 3 days before the phase
    rep.site_up[0] = OutageSchedule([(down[0] * 60, down[1] * 60)])
    records = rep.run()
    served = records.served
    start = served["arrival_min"] + served["wait_min"]
    end = start + served["duration_min"]
    assert not np.any((start < down[0]) & (end > down[0]))
    assert not np.any((start >= down[0]) & (start < down[1]))
    assert records.cut_by_outage[0] >= 1
    assert records.unmet[(0, 0, "line_down")] >= records.cut_by_outage[0]


def test_a_cut_of_agents_lets_running_interviews_finish_and_starts_none_above_the_new_number() -> None:
    """Two stations both busy; the set is cut to one: a waiting citizen gets a station only when the
    kept one is released, not when the dropped one is."""
    import itertools

    import simpy

    from twin.model.resources import AgentPool

    env = simpy.Environment()
    pool = AgentPool(env, itertools.count(1))
    pool.replace((("expert", 7), ("expert", 7)))
    first = pool.acquire(False, math.inf)
    second = pool.acquire(False, math.inf)
    assert isinstance(first, tuple) and isinstance(second, tuple)
    pool.replace((("expert", 7),))  # unit k=1 dropped while busy
    waiting = pool.acquire(False, math.inf)
    assert not isinstance(waiting, tuple)
    dropped, kept = (first, second) if first[3][2] == 1 else (second, first)
    pool.release(dropped)
    env.run()
    assert not waiting.triggered  # the dropped station is retired, not handed over
    pool.release(kept)
    env.run()
    assert waiting.triggered and waiting.value == kept and pool.stations == 1


def test_run_folder_has_sites_departements_years_hindcast_and_records(tmp_path: Path) -> None:
    data = yaml.safe_load(TINY.read_text())
    data["region"]["communes_file"] = str(TINY.parent / data["region"]["communes_file"])
    data["observations"] = [
        {"phase": "pilot", "kpi": "user_kiosks", "value": 2, "source": "an input"},
        {"year": 2007, "kpi": "interviews_served", "value": 1, "relation": "at_least", "source": "test"},
        {"phase": "pilot", "departement": "43", "kpi": "interviews_served", "value": 5, "source": "test"},
    ]
    path = tmp_path / "tiny-obs.yaml"
    path.write_text(yaml.safe_dump(data))
    outcome = run_scenario(path, replications=3, seed=2, jobs=2, out_dir=tmp_path / "run", records=True)
    folder = outcome.folder
    run = read_run(folder)
    # sites.csv: counts over user kiosks equal the region's means
    import csv

    rows = list(csv.DictReader((folder / "sites.csv").open()))
    for phase in run.summary:
        users = [r for r in rows if r["phase"] == phase and (r["kind"] == "user" or r["site_id"] == NO_KIOSK)]
        for kpi in ("interviews_served", "unmet_total", "travel_avoided_km"):
            total = sum(float(r[f"{kpi}_mean"]) for r in users)
            assert total == pytest.approx(run.summary[phase][kpi]["mean"])
            deps = sum(cell[kpi]["mean"] for cell in run.by_departement[phase].values())
            assert deps == pytest.approx(run.summary[phase][kpi]["mean"])
    assert {"site_id", "kind", "commune", "departement_code", "generation", "utilisation_mean"} <= set(rows[0])
    # by year: 2007 holds both phases of tiny (the warm-up is in 2006 and not counted)
    both = sum(run.summary[p]["interviews_served"]["mean"] for p in run.summary)
    assert run.by_year["2007"]["interviews_served"]["mean"] == pytest.approx(both)
    # hindcast
    assert [r.what for r in outcome.hindcast] == ["pilot", "2007", "pilot/43"]
    assert outcome.hindcast[0].in_ci is True and outcome.hindcast[0].ratio == pytest.approx(1.0)
    assert (folder / "hindcast.csv").read_text().count("\n") == 4
    # records: one row per need (served, unmet for every reason, pending)
    for rep in range(3):
        table = pq.read_table(folder / "records" / f"replication-{rep:04d}.parquet").to_pydict()
        phases, outcomes = np.array(table["phase"]), np.array(table["outcome"])
        reps = json.loads((folder / "replications" / f"{rep:04d}.json").read_text())
        for phase, kpis in reps["phases"].items():
            mine = outcomes[phases == phase]
            assert len(mine) == kpis["needs_arrived"]
            assert (mine == "served").sum() == kpis["interviews_served"]
            for reason in UNMET_REASONS:
                assert (mine == reason).sum() == kpis[f"unmet_{reason}"]
            assert (mine == "pending").sum() == kpis["pending_at_end"]


def test_auvergne_2005_2012_is_a_valid_scenario_with_drivers_for_every_year() -> None:
    from twin.scenario.loading import load_scenario

    loaded = load_scenario(ROOT / "scenarios" / "auvergne-2005-2012.yaml")
    spec = loaded.spec
    assert [p.name for p in spec.phases] == ["pilot-vorey", "pilot-cunlhat", *map(str, range(2006, 2013))]
    assert spec.simulation.end_date.isoformat() == "2012-12-31"
    assert all(set(d.values) >= set(spec.simulated_years()) for d in spec.demand.drivers)
    assert all(d.source.strip() for d in spec.demand.drivers)
    assert any(o.kpi == "interviews_served" and o.phase == "2007" for o in spec.observations)
    _ = ALWAYS


def test_until_extends_a_run_as_the_status_quo(tmp_path: Path) -> None:
    """--until: the last phase runs on through the year, drivers hold their last value, earlier phases
    are the same numbers (common random numbers); a year before the scenario's end is refused."""
    base = run_scenario(TINY, replications=2, seed=4, out_dir=tmp_path / "base")
    longer = run_scenario(TINY, replications=2, seed=4, out_dir=tmp_path / "longer", until_year=2008)
    assert set(longer.by_year) == {"2007", "2008"} and set(base.by_year) == {"2007"}
    assert longer.summary["pilot"] == base.summary["pilot"]
    assert json.loads((longer.folder / "manifest.json").read_text())["until_year"] == 2008
    with pytest.raises(ScenarioError, match="--until 2005"):
        run_scenario(TINY, replications=1, out_dir=tmp_path / "never", until_year=2005)
    assert not (tmp_path / "never").exists()
