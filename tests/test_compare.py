"""twin compare / twin report: alignment, statistics, cost, outputs, errors, and the report in a browser."""

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

from twin.cli import main
from twin.presentation.compare import (
    COST_KPI,
    PhaseWindowDates,
    align_phases,
    compare_runs,
    phase_costs,
    welch_test,
)
from twin.presentation.report import network_state, render_html
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders: tiny.yaml, and a variant of it cut into differently named and dated phases."""
    base = tmp_path_factory.mktemp("runs")
    tiny = run_scenario(TINY, replications=REPS, out_dir=base / "tiny").folder
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["name"] = "tiny-recut"
    data["region"]["communes_file"] = str(SCENARIOS / data["region"]["communes_file"])
    data["phases"] = [
        {"name": "winter", "start_date": dt.date(2007, 1, 1), "add": ["vorey", "retournac", "anpe-le-puy"]},
        {"name": "spring", "start_date": dt.date(2007, 3, 15), "add": ["cunlhat"], "upgrade": ["vorey"]},
    ]
    recut_yaml = base / "tiny-recut.yaml"
    recut_yaml.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    recut = run_scenario(recut_yaml, replications=REPS, out_dir=base / "recut").folder
    return {"tiny": tiny, "recut": recut, "base": base}


@pytest.fixture(scope="module")
def compare_out(runs: dict[str, Path]) -> Path:
    """``twin compare tiny recut --out ...`` once for the module (rendering dominates the test time)."""
    out = runs["base"] / "cmp"
    assert _cli(["compare", str(runs["tiny"]), str(runs["recut"]), "--out", str(out)]) == 0
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


# ---------------------------------------------------------------------------------------------- units


def test_welch_identical_samples_not_significant() -> None:
    x = [10.0, 12.0, 11.0, 13.0]
    res = welch_test(x, x)
    assert res.diff == 0 and res.p_value == pytest.approx(1.0) and not res.significant
    constant = welch_test([5.0, 5.0, 5.0], [5.0, 5.0, 5.0])
    assert constant.deterministic and not constant.significant


def test_welch_detects_a_clear_difference_and_matches_scipy() -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    a, b = rng.normal(100, 5, 10), rng.normal(130, 5, 10)
    res = welch_test(a, b)
    assert res.significant and res.ci_low < res.diff < res.ci_high
    assert res.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert res.ci_low > 0  # the CI of the difference excludes 0 when p < 0.05
    deterministic = welch_test([1.0, 1.0], [2.0, 2.0])
    assert deterministic.deterministic and deterministic.significant and deterministic.diff == 1.0


def test_align_phases_by_midpoint() -> None:
    d = dt.date
    ref = [PhaseWindowDates("pilot", d(2005, 7, 1), d(2006, 1, 1)), PhaseWindowDates("2006", d(2006, 1, 1), d(2007, 1, 1)),
           PhaseWindowDates("2007", d(2007, 1, 1), d(2008, 1, 1)), PhaseWindowDates("2010", d(2010, 1, 1), d(2011, 1, 1))]
    other = [PhaseWindowDates("year-1", d(2006, 1, 1), d(2007, 1, 1)),
             PhaseWindowDates("year-2", d(2007, 1, 1), d(2008, 1, 1))]
    assert align_phases(ref, other) == [None, "year-1", "year-2", None]
    assert align_phases(ref, ref) == ["pilot", "2006", "2007", "2010"]


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
    sites = {s.id: s for s in gen2.spec.sites}
    for sid in users:
        assert sites[sid].line.offer in ("adsl-1024-256", "readsl-512-128")


# ------------------------------------------------------------------------------------------ comparing


def test_compare_writes_plots_maps_and_report(compare_out: Path) -> None:
    out = compare_out
    for name in ("overview.png", "interviews_served.png", "unmet_by_reason.png", "waiting_time.png",
                 "quality_mos_below_3.png", "coverage.png", "travel_avoided.png", "utilisation.png",
                 "cost_per_interview.png", "map-A.png", "map-B.png", "report.html", "comparison.json"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "comparison.json").read_text())
    assert [r["scenario_name"] for r in doc["runs"]] == ["tiny", "tiny-recut"]


def test_self_comparison_shows_no_significant_difference(runs: dict[str, Path]) -> None:
    comparison = compare_runs([runs["tiny"], runs["tiny"]])
    assert comparison.differences
    assert not [d for d in comparison.differences if d.test.significant]
    assert all(d.test.diff == 0 or math.isnan(d.test.diff) for d in comparison.differences)
    assert not comparison.per_year and not comparison.notes


def test_phases_with_other_names_align_by_date(runs: dict[str, Path]) -> None:
    comparison = compare_runs([runs["tiny"], runs["recut"]])
    matches = {a.label: a.matches for a in comparison.phases}
    # pilot = Jan-Feb 2007 (midpoint 30 Jan, in "winter"); extension = Mar-Apr (midpoint 31 Mar, in "spring")
    assert matches == {"pilot": ("pilot", "winter"), "extension": ("extension", "spring")}
    assert comparison.per_year  # the windows differ: counts become yearly rates
    assert any("aligned by date" in n for n in comparison.notes)
    # the yearly rate of the reference equals the per-phase count scaled by 365 / 59 days
    raw = compare_runs([runs["tiny"]])
    assert comparison.stats(0, "pilot", "interviews_served").mean == pytest.approx(
        raw.stats(0, "pilot", "interviews_served").mean * 365 / 59)
    # the recut run's winter includes Vorey's generation-1 period beyond 1 March: something differs
    assert comparison.difference(1, "pilot", "interviews_served") is not None


def test_cost_skipped_with_a_note_when_scenario_missing_or_changed(runs: dict[str, Path], tmp_path: Path) -> None:
    gone = _copy(runs["tiny"], tmp_path / "gone")
    manifest = json.loads((gone / "manifest.json").read_text())
    manifest["scenario_file"] = str(tmp_path / "no-such-scenario.yaml")
    manifest["scenario_file_absolute"] = str(tmp_path / "no-such-scenario.yaml")
    (gone / "manifest.json").write_text(json.dumps(manifest))
    comparison = compare_runs([runs["tiny"], gone])
    assert any("not found" in n and "cost" in n for n in comparison.notes)
    assert np.isnan(comparison.stats(1, "pilot", COST_KPI).mean)
    assert not np.isnan(comparison.stats(0, "pilot", COST_KPI).mean)

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


def test_missing_or_incomplete_run_folders_exit_2(runs: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["compare", str(runs["tiny"]), str(tmp_path / "absent"), "--out", str(tmp_path / "o1")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    broken = _copy(runs["tiny"], tmp_path / "broken")
    (broken / "summary.json").unlink()
    assert _cli(["compare", str(runs["tiny"]), str(broken), "--out", str(tmp_path / "o2")]) == 2
    assert "missing summary.json" in capsys.readouterr().err
    assert _cli(["report", str(broken)]) == 2
    assert _cli(["compare", str(runs["tiny"])]) == 2  # one folder is not a comparison
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_cli_exit_status_2_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "compare", str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "run folder not found" in proc.stderr


# ---------------------------------------------------------------------------------------------- report


def _assert_self_contained(html_text: str) -> None:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?\s*([^"'\s>]+)""", html_text, flags=re.IGNORECASE)
    assert refs, "no image embedded"
    assert all(ref.startswith("data:") for ref in refs), [r[:40] for r in refs if not r.startswith("data:")]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html_text, flags=re.IGNORECASE)
    assert "@import" not in html_text and "<script" not in html_text.lower() and "<link" not in html_text.lower()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html_text)
    assert images and all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)


def test_report_html_is_self_contained(runs: dict[str, Path], run_report: Path, compare_out: Path) -> None:
    assert run_report == runs["base"] / "reported" / "report.html"  # default: RUN_DIR/report.html
    text = run_report.read_text(encoding="utf-8")
    _assert_self_contained(text)
    manifest = json.loads((runs["tiny"] / "manifest.json").read_text())
    for fact in ("tiny", str(manifest["seed"]), f"{REPS} of {REPS}", "numpy", "G.1070", "kiosk_uptake",
                 "Summary tables", "Cost by phase"):
        assert fact in text, fact
    if manifest.get("git_commit"):
        assert manifest["git_commit"][:12] in text

    text = (compare_out / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert len(re.findall(r"data:image/png;base64,", text)) >= 10  # plots and both maps
    assert "Headline differences" in text and "aligned by date" in text


def test_report_to_a_chosen_file(runs: dict[str, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import twin.presentation.report

    monkeypatch.setattr(twin.presentation.report, "comparison_figures", lambda comparison: {})  # skip the rendering
    assert _cli(["report", str(runs["tiny"]), "--out", str(tmp_path / "r.html")]) == 0
    assert "<h1>twin run report: tiny</h1>" in (tmp_path / "r.html").read_text(encoding="utf-8")


CHROMIUM = Path("/usr/bin/chromium")


def test_report_renders_in_a_headless_browser(run_report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: /usr/bin/chromium is absent (apt-get install chromium to run "
                    "this check; not part of the required setup)")
    report = run_report
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        colours = image.convert("L").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 16  # not a blank page
