"""twin compare / twin report: calendar-year alignment, the status-quo extension, statistics, verdicts,
cost, outputs, errors, terminal tables, maps, and the report in a browser."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from twin.cli import main
from twin.presentation.compare import PhaseWindowDates, build_verdict, compare_runs, phase_costs, window_costs
from twin.presentation.figures import departement_borders, network_state, place_labels
from twin.presentation.kpimeta import COST_KPI, kpi_meta
from twin.presentation.plots import write_rollout_plots
from twin.presentation.report import render_html
from twin.presentation.statistics import (
    BETTER,
    SAME,
    UNCERTAIN,
    WORSE,
    adjust_p_values,
    mean_interval,
    paired_difference,
    verdict,
    welch_difference,
)
from twin.run.runner import run_scenario
from twin.scenario.loading import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TINY = SCENARIOS / "tiny.yaml"
REPS = 3


def _cli(args: list[str]) -> int:
    """Run ``twin ARGS`` in this process through the real entry point; returns the exit status."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def _variant(base: Path, name: str, edit) -> Path:
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["name"] = name
    data["region"]["communes_file"] = str(SCENARIOS / data["region"]["communes_file"])
    edit(data)
    path = base / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of tiny.yaml (Jan-Apr 2007), of a variant cut into other phases, of a plan that runs on
    into 2008 with a change in 2008, and of tiny.yaml extended with --until 2008 (all seed 7)."""
    base = tmp_path_factory.mktemp("runs")
    tiny = run_scenario(TINY, replications=REPS, out_dir=base / "tiny", plot=write_rollout_plots).folder

    def recut(data: dict) -> None:
        data["phases"] = [
            {"name": "winter", "start_date": dt.date(2007, 1, 1), "add": ["vorey", "retournac", "anpe-le-puy"]},
            {"name": "spring", "start_date": dt.date(2007, 3, 15), "add": ["cunlhat"], "upgrade": ["vorey"]},
        ]

    def longer(data: dict) -> None:
        data["simulation"]["end_date"] = dt.date(2008, 6, 30)
        data["phases"].append({"name": "2008", "start_date": dt.date(2008, 1, 1), "upgrade": ["retournac"]})

    out = {"tiny": tiny, "base": base}
    out["recut"] = run_scenario(_variant(base, "tiny-recut", recut), replications=REPS, out_dir=base / "recut",
                                plot=write_rollout_plots).folder
    out["plan"] = run_scenario(_variant(base, "tiny-plan", longer), replications=REPS, out_dir=base / "plan",
                               plot=write_rollout_plots).folder
    out["until"] = run_scenario(TINY, replications=REPS, out_dir=base / "until", until_year=2008).folder
    return out


@pytest.fixture(scope="module")
def compare_out(runs: dict[str, Path]) -> Path:
    """``twin compare tiny plan until --out ...`` once for the module."""
    out = runs["base"] / "cmp"
    assert _cli(["compare", str(runs["tiny"]), str(runs["plan"]), str(runs["until"]), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def run_report(runs: dict[str, Path]) -> Path:
    """``twin report RUN`` with the default output, on a copy of the tiny run."""
    run = shutil.copytree(runs["tiny"], runs["base"] / "reported")
    assert _cli(["report", str(run)]) == 0
    return run / "report.html"


def _copy(run: Path, target: Path) -> Path:
    shutil.copytree(run, target)
    return target


# ---------------------------------------------------------------------------------------------- statistics


def test_bootstrap_interval_of_a_nonnegative_kpi_stays_above_zero() -> None:
    x = [0.0, 0.0, 0.0, 0.0, 4.0]
    iv = mean_interval(x, nonnegative=True)
    assert iv.method == "bootstrap" and 0.0 <= iv.low <= iv.mean <= iv.high
    student = mean_interval(x, nonnegative=False)
    assert student.method == "t" and student.low < 0  # what the Student interval would have said
    assert mean_interval([3.0, 3.0, 3.0]).method == "exact"


def test_paired_and_welch_differences_match_scipy() -> None:
    rng = np.random.default_rng(3)
    common = rng.normal(100, 20, 8)  # common random numbers: a shared part dominates
    a, b = common + rng.normal(0, 1, 8), common + 5 + rng.normal(0, 1, 8)
    paired = paired_difference(a, b)
    ref = stats.ttest_rel(b, a)
    assert paired.method == "paired" and paired.p_value == pytest.approx(ref.pvalue)
    assert (paired.low, paired.high) == pytest.approx(tuple(ref.confidence_interval()))
    welch = welch_difference(a, b)
    assert welch.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert welch.high - welch.low > 5 * (paired.high - paired.low)  # pairing removes the shared noise
    same = paired_difference(a, a)
    assert same.method == "exact" and same.diff == 0 and math.isnan(same.p_value)
    assert paired_difference(a, a + 2).diff == pytest.approx(2) and paired_difference(a, a + 2).method == "exact"


def test_benjamini_hochberg_matches_scipy_and_keeps_nan() -> None:
    p = [0.01, float("nan"), 0.04, 0.03, 0.5]
    adjusted = adjust_p_values(p)
    assert math.isnan(adjusted[1])
    expected = stats.false_discovery_control([0.01, 0.04, 0.03, 0.5], method="bh")
    assert [adjusted[i] for i in (0, 2, 3, 4)] == pytest.approx(list(expected))


def test_verdicts_follow_direction_and_practical_threshold() -> None:
    served, wait = kpi_meta("interviews_served"), kpi_meta("wait_mean_min")
    a = np.array([1000.0, 1010, 990, 1005, 995])
    more = paired_difference(a, a + np.array([200.0, 210, 190, 205, 195]))
    assert verdict(served, 1000, more, 0.001) == BETTER
    assert verdict(served, 1000, more.negated(), 0.001) == WORSE
    tiny = paired_difference(a, a + np.array([2.0, 3, 1, 2, 2]))  # significant but below 50 a year
    assert verdict(served, 1000, tiny, 0.001) == SAME
    noisy = paired_difference(a, a + np.array([300.0, -250, 10, 400, -300]))
    assert verdict(served, 1000, noisy, 0.6) == UNCERTAIN
    longer_wait = paired_difference(np.array([1.0, 1.1, 0.9]), np.array([2.0, 2.2, 1.9]))
    assert verdict(wait, 1.0, longer_wait, 0.01) == WORSE  # less is better


# ---------------------------------------------------------------------------------------------- cost


def test_phase_costs_known_answer() -> None:
    loaded = load_scenario(TINY)
    phases = [PhaseWindowDates("pilot", dt.date(2007, 1, 1), dt.date(2007, 3, 1)),
              PhaseWindowDates("extension", dt.date(2007, 3, 1), dt.date(2007, 5, 1))]
    costs = phase_costs(loaded, phases, amortisation_years=5)
    life_days = 5 * 365.25
    month = 365.25 / 12
    pilot, ext = costs["pilot"], costs["extension"]
    # pilot: vorey and retournac (user, 10,000 EUR), anpe-le-puy (expert, 7,000 EUR); 59 days
    assert pilot.capex_spent_eur == 27000
    assert pilot.capex_amortised_eur == pytest.approx(27000 * 59 / life_days)
    assert pilot.line_opex_eur == pytest.approx((20 + 30 + 30) * 59 / month)  # 512k, READSL, 2M/256k
    # extension: cunlhat bought (10,000) and vorey upgraded (3,000); 61 days
    assert ext.capex_spent_eur == 13000
    assert ext.capex_amortised_eur == pytest.approx((27000 + 13000) * 61 / life_days)
    assert ext.line_opex_eur == pytest.approx((20 + 30 + 30 + 25) * 61 / month)
    # a calendar year is the sum of its phases
    year = window_costs(loaded, [PhaseWindowDates("2007", dt.date(2007, 1, 1), dt.date(2007, 5, 1))])["2007"]
    assert year.total_eur == pytest.approx(pilot.total_eur + ext.total_eur)


def test_gen2_variant_upgrades_every_generation1_kiosk_in_2007() -> None:
    hist = load_scenario(SCENARIOS / "auvergne-2008.yaml")
    gen2 = load_scenario(SCENARIOS / "auvergne-gen2-2007.yaml")
    assert [p.name for p in gen2.spec.phases] == [p.name for p in hist.spec.phases]
    before = network_state(gen2, "2006")
    assert any(s["kind"] == "user" and s["generation"] == 1 for s in before.values())
    after = network_state(gen2, "2007")
    users = {sid: s for sid, s in after.items() if s["kind"] == "user"}
    assert users and all(s["generation"] == 2 for s in users.values())
    assert set(after) == set(network_state(hist, "2007"))  # same sites, only generations differ


# ------------------------------------------------------------------------------------------ comparing


def test_common_random_numbers_make_shared_phases_identical(runs: dict[str, Path]) -> None:
    """The plan changes nothing before 2008: with the same seed its 'pilot' phase is the tiny run's, to
    the last digit, although the two scenarios differ (end date, a later phase)."""
    tiny = json.loads((runs["tiny"] / "summary.json").read_text())["summary"]
    plan = json.loads((runs["plan"] / "summary.json").read_text())["summary"]
    assert plan["pilot"] == tiny["pilot"]


def test_compare_writes_figures_and_report(compare_out: Path) -> None:
    for name in ("differences.png", "rollout-A.png", "rollout-B.png", "map-A.png", "map-B.png", "report.html",
                 "comparison.json"):
        path = compare_out / name
        assert path.is_file() and path.stat().st_size > 1000, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((compare_out / "comparison.json").read_text())
    assert [r["scenario_name"] for r in doc["runs"]] == ["tiny", "tiny-plan"]  # the --until run extends A
    assert doc["runs"][0]["extended_years"] == {"2008": "until (--until 2008)"}
    assert doc["unaligned"] == [] and doc["verdict"]


def test_every_year_of_both_runs_is_shown_or_listed(runs: dict[str, Path]) -> None:
    short = compare_runs([runs["tiny"], runs["plan"]])
    assert short.years == [2007, 2008]
    assert short.compared_years(1) == [2007]
    assert len(short.unaligned) == 1 and "2008" in short.unaligned[0] and "--until 2008" in short.unaligned[0]
    assert any("different numbers of days" in n for n in short.notes)  # 120 days against a full 2007
    extended = compare_runs([runs["tiny"], runs["plan"], runs["until"]])
    assert extended.compared_years(1) == [2007, 2008] and extended.extended[0] == {2008: "until (--until 2008)"}
    assert not extended.unaligned and [r.label for r in extended.runs] == ["A: tiny", "B: tiny-plan"]
    assert any("extended with the status quo through 2008" in n for n in extended.notes)
    cell = extended.cell(1, 2008, "interviews_served")
    assert cell is not None and cell.difference.method in ("paired", "exact")


def test_self_comparison_is_identical_and_paired(runs: dict[str, Path]) -> None:
    c = compare_runs([runs["tiny"], runs["tiny"]])
    assert c.paired == [True, True] and c.cells
    assert all(x.difference.method == "exact" and x.difference.diff == 0 for x in c.cells
               if not math.isnan(x.difference.diff))
    assert {x.verdict for x in c.cells} <= {SAME, "n/a"}
    assert any("common random numbers" in n for n in c.notes)


def test_runs_with_other_seeds_use_welch(runs: dict[str, Path], tmp_path: Path) -> None:
    other = run_scenario(TINY, replications=REPS, seed=8, out_dir=tmp_path / "seed8").folder
    c = compare_runs([runs["tiny"], other])
    assert c.paired == [True, False] and any("Welch" in n for n in c.notes)
    assert {x.difference.method for x in c.cells} <= {"welch", "exact", "none"}
    assert any(x.difference.method == "welch" for x in c.cells)


def test_swapping_the_runs_swaps_the_signs_and_nothing_else(runs: dict[str, Path]) -> None:
    ab = compare_runs([runs["tiny"], runs["recut"]])
    ba = compare_runs([runs["recut"], runs["tiny"]])
    flip = {BETTER: WORSE, WORSE: BETTER, "higher": "lower", "lower": "higher"}
    assert len(ab.cells) == len(ba.cells) > 0
    for x in ab.cells:
        y = ba.cell(1, x.year, x.kpi)
        assert y is not None
        if math.isnan(x.difference.diff):
            assert math.isnan(y.difference.diff)
            continue
        assert y.difference.diff == pytest.approx(-x.difference.diff, abs=1e-9)
        if not math.isnan(x.difference.low):
            assert (y.difference.low, y.difference.high) == pytest.approx((-x.difference.high, -x.difference.low))
        assert (x.p_adjusted == pytest.approx(y.p_adjusted)) or (math.isnan(x.p_adjusted) and math.isnan(y.p_adjusted))
        if x.verdict != y.verdict:  # the threshold may be relative to a different reference mean
            assert flip.get(x.verdict) == y.verdict or SAME in (x.verdict, y.verdict) or UNCERTAIN in (x.verdict, y.verdict)
    assert any(x.difference.method == "paired" for x in ab.cells)


def test_counts_are_rates_per_year(runs: dict[str, Path]) -> None:
    c = compare_runs([runs["tiny"]])
    raw = json.loads((runs["tiny"] / "summary.json").read_text())["by_year"]["2007"]
    days = raw["days_simulated"]["mean"]
    assert c.interval(0, 2007, "interviews_served").mean == pytest.approx(raw["interviews_served"]["mean"] * 365 / days)
    assert c.interval(0, 2007, COST_KPI).mean > 0


def test_verdict_names_the_plan_and_the_cost(runs: dict[str, Path]) -> None:
    c = compare_runs([runs["tiny"], runs["plan"], runs["until"]])
    v = build_verdict(c)
    assert v.year == 2008  # no year is full in every run: the last year they all have
    assert len(v.sentences) == 1 and v.sentences[0].startswith("In 2008, B: tiny-plan") and "EUR" in v.sentences[0]


def test_cost_skipped_with_a_note_when_scenario_missing_or_changed(runs: dict[str, Path], tmp_path: Path) -> None:
    gone = _copy(runs["tiny"], tmp_path / "gone")
    (gone / "plots" / "facts.json").unlink()
    manifest = json.loads((gone / "manifest.json").read_text())
    manifest["scenario_file"] = str(tmp_path / "no-such-scenario.yaml")
    manifest["scenario_file_absolute"] = str(tmp_path / "no-such-scenario.yaml")
    (gone / "manifest.json").write_text(json.dumps(manifest))
    comparison = compare_runs([runs["tiny"], gone])
    assert any("not found" in n and "cost" in n for n in comparison.notes)
    assert COST_KPI not in comparison.kpis  # not every run has it

    changed = _copy(runs["tiny"], tmp_path / "changed")
    manifest = json.loads((changed / "manifest.json").read_text())
    manifest["scenario_sha256"] = "0" * 64
    (changed / "manifest.json").write_text(json.dumps(manifest))
    notes = compare_runs([changed, runs["tiny"]]).notes
    assert any("changed since the run" in n for n in notes)


def test_partial_run_is_compared_and_flagged(runs: dict[str, Path], tmp_path: Path) -> None:
    partial = _copy(runs["tiny"], tmp_path / "partial")
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    comparison = compare_runs([runs["tiny"], partial])
    assert comparison.runs[1].partial and any("partial" in n for n in comparison.notes)
    assert "is a partial run (interrupted" in render_html(comparison, {})


def test_bad_input_exits_2_with_a_clear_message(runs: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["compare", str(runs["tiny"]), str(tmp_path / "absent"), "--out", str(tmp_path / "o1")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    broken = _copy(runs["tiny"], tmp_path / "broken")
    (broken / "summary.json").unlink()
    assert _cli(["compare", str(runs["tiny"]), str(broken), "--out", str(tmp_path / "o2")]) == 2
    assert "missing summary.json" in capsys.readouterr().err
    assert _cli(["report", str(broken)]) == 2
    capsys.readouterr()
    assert _cli(["report", str(tmp_path / "mistyped")]) == 2  # a typo: said so, and no folder made for it
    assert "run folder not found" in capsys.readouterr().err and not (tmp_path / "mistyped").exists()
    old = _copy(runs["tiny"], tmp_path / "old")
    (old / "replications_by_year.csv").unlink()
    assert _cli(["compare", str(runs["tiny"]), str(old), "--out", str(tmp_path / "o3")]) == 2
    assert "older version of twin" in capsys.readouterr().err
    elsewhere = _copy(runs["tiny"], tmp_path / "elsewhere")
    facts = json.loads((elsewhere / "plots" / "facts.json").read_text())
    facts["region"] = "bretagne-communes.csv"
    (elsewhere / "plots" / "facts.json").write_text(json.dumps(facts))
    assert _cli(["compare", str(runs["tiny"]), str(elsewhere), "--out", str(tmp_path / "o4")]) == 2
    assert "different regions" in capsys.readouterr().err
    assert _cli(["compare", str(runs["tiny"])]) == 2  # one folder is not a comparison
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_cli_exit_status_2_in_a_real_process(runs: dict[str, Path], tmp_path: Path) -> None:
    old = _copy(runs["tiny"], tmp_path / "old")
    (old / "replications_by_year.csv").unlink()
    for args in ([str(tmp_path / "a"), str(tmp_path / "b")], [str(runs["tiny"]), str(old)]):
        proc = subprocess.run([sys.executable, "-m", "twin.cli", "compare", *args, "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "error" in proc.stderr


# ---------------------------------------------------------------------------------------------- terminal


def test_terminal_tables_wrap_instead_of_cutting_numbers() -> None:
    from rich.console import Console

    from twin.presentation.tables import fitted_tables

    columns = [("year", "left")] + [(f"a long header number {i} (per year)", "right") for i in range(8)]
    rows = [[str(2000 + y)] + [f"+{123_456 + i:,}\n+1,000..+2,000" for i in range(8)] for y in range(3)]
    console = Console(width=80, record=True)
    tables = fitted_tables("t", columns, rows, 80)
    assert len(tables) > 1
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for i in range(8):
        assert f"+{123_456 + i:,}" in text
    assert "…" not in text


def test_run_summary_never_cuts_a_number_on_80_columns(runs: dict[str, Path]) -> None:
    from rich.console import Console

    from twin.presentation.tables import run_summary_table

    doc = json.loads((runs["plan"] / "summary.json").read_text())
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(run_summary_table("summary", doc["phases"], doc["summary"]))
        text = console.export_text()
        assert "…" not in text and all(len(line) <= width for line in text.splitlines())
        served = f"{doc['summary']['2008']['interviews_served']['mean']:,.0f}"
        assert served in text


# ---------------------------------------------------------------------------------------------- maps


def test_departement_borders_and_labels_without_collisions() -> None:
    from matplotlib.figure import Figure

    loaded = load_scenario(SCENARIOS / "auvergne-2008.yaml")
    lon = np.array([c.lon for c in loaded.communes])
    lat = np.array([c.lat for c in loaded.communes])
    segments = departement_borders(lon, lat, [c.departement_code for c in loaded.communes])
    assert len(segments) > 50
    for seg in segments:
        assert lon.min() <= seg[:, 0].min() and seg[:, 0].max() <= lon.max()
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    items = [(5 + 0.05 * i, 5, f"label {i}") for i in range(12)]  # twelve labels on one spot
    drawn = place_labels(ax, items)
    boxes = [t.get_window_extent() for t in drawn]
    assert 1 < len(drawn) < 12
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


# ---------------------------------------------------------------------------------------------- report


def _assert_self_contained(html_text: str) -> None:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?\s*([^"'\s>]+)""", html_text, flags=re.IGNORECASE)
    assert refs, "no image embedded"
    assert all(ref.startswith("data:") for ref in refs), [r[:40] for r in refs if not r.startswith("data:")]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html_text, flags=re.IGNORECASE)
    assert "@import" not in html_text and "<script" not in html_text.lower() and "<link" not in html_text.lower()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_text)
    assert images and all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)


def test_report_html_is_self_contained_and_answer_first(runs: dict[str, Path], run_report: Path,
                                                        compare_out: Path) -> None:
    assert run_report == runs["base"] / "reported" / "report.html"  # default: RUN_DIR/report.html
    text = run_report.read_text(encoding="utf-8")
    _assert_self_contained(text)
    manifest = json.loads((runs["tiny"] / "manifest.json").read_text())
    for fact in ("tiny", str(manifest["seed"]), f"{REPS} of {REPS}", "numpy", "G.1070", "kiosk_uptake",
                 "Detail by year", "Cost by year", "interviews served", "practical threshold"):
        assert fact in text, fact
    assert "agent_utilisation_anpe" not in text  # human names only
    if manifest.get("git_commit"):
        assert manifest["git_commit"][:12] in text
    order = [text.index(s) for s in ("id=\"verdict\"", "id=\"charts\"", "id=\"detail\"", "id=\"assumptions\"")]
    assert order == sorted(order)

    text = (compare_out / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert len(re.findall(r"data:image/png;base64,", text)) >= 5  # differences, rollouts and maps of the runs
    assert "paired: common random numbers" in text and "Benjamini-Hochberg" in text
    assert "status quo" in text


def test_runs_without_figures_get_them_drawn_by_compare(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run made without a plotter (twin run --no-plots, or a sweep point) has no plots/: compare draws its
    rollout and map, and reads its costs from the scenario."""
    from twin.presentation.report import comparison_pngs

    assert not (runs["until"] / "plots" / "rollout.png").exists()
    c = compare_runs([runs["until"], runs["tiny"]])
    assert c.interval(0, 2008, COST_KPI).mean > 0
    steps: list[str] = []
    pngs = comparison_pngs(c, steps.append)
    assert {"differences.png", "rollout-A.png", "map-A.png", "rollout-B.png", "map-B.png"} <= set(pngs)
    assert any("rollout.png of A" in step for step in steps) and not any("of B" in step for step in steps)


def test_report_to_a_chosen_file(runs: dict[str, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import twin.presentation.report

    monkeypatch.setattr(twin.presentation.report, "comparison_pngs", lambda comparison, on_step=None: {})
    assert _cli(["report", str(runs["tiny"]), "--out", str(tmp_path / "r.html")]) == 0
    assert "<h1>twin run report: tiny</h1>" in (tmp_path / "r.html").read_text(encoding="utf-8")


CHROMIUM = Path("/usr/bin/chromium")


def _screenshot(html: Path, tmp_path: Path, size: tuple[int, int]) -> Path:
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}",
         html.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), proc.stderr[-2000:]
    return shot


NO_CHROMIUM = ("chromium not installed: /usr/bin/chromium is absent (apt-get install chromium to run this check; "
               "not part of the required setup)")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
def test_verdict_and_headline_table_fit_the_first_screen(runs: dict[str, Path], tmp_path: Path) -> None:
    """A plan against the status quo over seven years (2007-2013): at 1400x900 the end of the verdict section
    (after the headline table) is on screen: a magenta bar drawn right after it shows in the screenshot."""
    from PIL import Image

    def to_2013(data: dict) -> None:
        data["simulation"]["end_date"] = dt.date(2013, 12, 31)
        data["phases"].append({"name": "2010", "start_date": dt.date(2010, 1, 1), "upgrade": ["retournac"]})

    base = run_scenario(TINY, replications=REPS, out_dir=tmp_path / "base", until_year=2013).folder
    plan = run_scenario(_variant(tmp_path, "tiny-2013", to_2013), replications=REPS, out_dir=tmp_path / "plan").folder
    assert _cli(["compare", str(base), str(plan), "--out", str(tmp_path / "cmp")]) == 0
    text = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert all(f">{year}<" in text or f">{year}<br>" in text for year in range(2007, 2014))
    probe = "#verdict::after { content: ''; display: block; height: 8px; background: rgb(255, 0, 255); }"
    marked = tmp_path / "marked.html"
    marked.write_text(text.replace("</style>", probe + "</style>", 1), encoding="utf-8")
    shot = _screenshot(marked, tmp_path, (1400, 900))
    with Image.open(shot) as image:
        assert image.size == (1400, 900)
        pixels = np.asarray(image.convert("RGB"))
    magenta = (pixels[:, :, 0] > 240) & (pixels[:, :, 1] < 20) & (pixels[:, :, 2] > 240)
    assert magenta.sum() > 1000, "the verdict and headline table do not fit in the first 1400x900 screen"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 16  # not a blank page


def test_the_calibration_table_in_a_report_shows_unmeasured_cells_as_dashes():
    """The shipped table has nan where a call sent no document (scan_s, print_s): the report formats
    them, it does not crash (a new user's twin report of the main job did)."""
    from twin.presentation.report import calibration_rows

    table = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "auvergne-calibration.csv"
    assert "nan" in table.read_text()
    rows = calibration_rows({"calibration_file": str(table), "quality_model": "calibration"}, limit=500)
    assert rows["found"] and rows["total"] > 100
    assert any("–" in row for row in rows["rows"]) and not any("nan" in row for row in rows["rows"])
