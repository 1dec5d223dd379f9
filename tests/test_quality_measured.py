"""Measured interview quality (issue 11): the shipped calibration table tells lines apart, refuses what it
did not measure, bad tables and lines exit 2 with the field named, and `twin plan lines` recommends
lines that meet the target it prints when emulated."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twin.datafiles import read_calibration_csv
from twin.errors import TwinInputError
from twin.line import OFFERS, AdslLine
from twin.profiles import get_profile
from twin.quality import CALIBRATION_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
AUVERGNE = ROOT / "scenarios" / "auvergne-2008.yaml"
TABLE = ROOT / "scenarios" / "data" / "auvergne-calibration.csv"


def _twin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def table():
    return read_calibration_csv(TABLE)


def test_shipped_table_covers_every_offer_and_profile_with_seeds(table):
    for profile in ("gen1", "gen2"):
        assert set(table.lines(profile)) == set(OFFERS)
        for point in table.points(get_profile(profile)):
            assert point.seeds >= 2, point  # a CI needs several calls
    lossy = [r for r in table.rows if r.loss_pct > 0]
    assert lossy


def _point(table, offer: str, loop_m: float, profile: str):
    return table.point(AdslLine(offer, loop_m), get_profile(profile))[0]


def _apart(a, b, column: str) -> bool:
    """The two points' means of ``column`` differ by more than the sum of their CI half-widths."""
    ca, cb = a.ci95[column] or 0.0, b.ci95[column] or 0.0
    return abs(a.mean[column] - b.mean[column]) > ca + cb


@pytest.mark.parametrize("profile, lines", [
    ("gen1", [("adsl-128-64", 3500), ("readsl-512-128", 6000), ("adsl-2048-256", 1500)]),
    ("gen2", [("adsl-512-128", 3500), ("adsl-2048-256", 1500)]),
])
def test_quality_differs_where_the_measurements_differ(table, profile, lines):
    points = [_point(table, offer, loop, profile) for offer, loop in lines]
    for i, a in enumerate(points):
        for b in points[i + 1:]:
            measured = [c for c in ("delay_p95_ms_up", "video_fps_up", "audio_loss_pct_up", "pesq_up")
                        if _apart(a, b, c)]
            if measured:
                scores = (a.mean["mos"], a.mean["speech_mos_up"], a.usable_share)
                other = (b.mean["mos"], b.mean["speech_mos_up"], b.usable_share)
                assert scores != other, (a.describe(), b.describe(), measured)


def test_gen1_128_and_256_uplinks_are_not_identical(table):
    slow, fast = _point(table, "adsl-512-128", 3500, "gen1"), _point(table, "adsl-1024-256", 3500, "gen1")
    assert slow.mean != fast.mean


def test_a_line_outside_the_table_is_refused_naming_it(table):
    with pytest.raises(TwinInputError, match=r"line adsl-max at 3500 m, loss 5 %: loss 5 % not measured"):
        table.point(AdslLine("adsl-max", 3500, loss_pct=5.0), get_profile("gen1"))


def _scenario_copy(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "scenarios" / "data" / "auvergne-communes.csv", tmp_path / "data")
    (tmp_path / "data" / "auvergne-calibration.csv").write_text(csv_text)
    target = tmp_path / "auvergne-2008.yaml"
    shutil.copy(AUVERGNE, target)
    return target


def _drop_column(text: str, index: int) -> str:
    return "\n".join(",".join(c for i, c in enumerate(r.split(",")) if i != index) for r in text.splitlines()) + "\n"


def _nan_cell(text: str, index: int) -> str:
    rows = [r.split(",") for r in text.splitlines()]
    rows[1][index] = "nan"
    return "\n".join(",".join(r) for r in rows) + "\n"


@pytest.mark.parametrize("edit, message", [
    (lambda text: _drop_column(text, CALIBRATION_COLUMNS.index("pesq_up")), "missing column(s) pesq_up"),
    (lambda text: _nan_cell(text, CALIBRATION_COLUMNS.index("video_fps_up")), "line 2, column video_fps_up"),
    (lambda text: "\n".join(r for r in text.splitlines() if ",adsl-512-128," not in r) + "\n",
     "offer 'adsl-512-128' not measured for profile"),
])
def test_bad_tables_exit_2_naming_the_field(tmp_path, edit, message):
    scenario = _scenario_copy(tmp_path, edit(TABLE.read_text()))
    proc = _twin("run", str(scenario), "-r", "1", "--jobs", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_offer_exits_2():
    proc = _twin("calibrate", "--lines", "adsl-9999-1", "--profiles", "gen1")
    assert proc.returncode == 2 and "unknown line offer 'adsl-9999-1'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_folder_names_the_source_of_every_score(tmp_path):
    proc = _twin("run", str(AUVERGNE), "-r", "1", "--jobs", "1", "--out", str(tmp_path / "run"), "--no-plots")
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "run" / "quality.csv").read_text().splitlines()
    assert rows[0].endswith(",source") and len(rows) > 20
    assert all("calibration:" in r for r in rows[1:])


def test_recommended_lines_meet_the_target_when_emulated():
    """A sample of what `twin plan lines` recommends on auvergne-2008 (one line per generation), emulated
    for 20 s in virtual time without documents, meets the target the planner printed."""
    from emulators.calibrate import verify_line
    from planners.lines import size_lines
    from twin.quality import CalibrationRow, CalibrationTable
    from twin.scenario.loading import load_scenario

    sizing = size_lines(load_scenario(AUVERGNE))
    for c in sizing.impossible:  # e.g. a loop longer than any measured for the offers that would do
        assert "not measured" in c.reason
    sample = {}
    for c in sizing.choices:
        if c.offer is not None:
            sample.setdefault(c.generation, c)
    assert set(sample) == {1, 2}
    for choice in sample.values():
        assert choice.operating_point and "calls" in choice.operating_point
        profile = get_profile("gen1" if choice.generation == 1 else "gen2")
        rows = verify_line(choice.offer, choice.loop_length_m, profile.name, documents=False, seed=11)
        measured = CalibrationTable([CalibrationRow(**r) for r in rows])
        line = AdslLine(choice.offer, choice.loop_length_m)
        q = measured.score_kiosk_side(line, profile)
        assert sizing.target.shortfall(q, profile) is None, (choice, q)


def test_operating_point_rule_and_profile_for_line():
    from emulators.operating_points import operating_points
    from twin.profiles import profile_for_line

    def row(cap, docs, fps, delay):
        return {"line": "x", "loop_length_m": 1.0, "cap_kbps": cap, "documents": docs, "video_fps_up": fps,
                "video_fps_down": 15.0, "delay_p95_ms_up": delay, "delay_p95_ms_down": 100.0, "pauses_up": 0,
                "pauses_down": 0}

    rows = [row(32, 0, 15, 150), row(32, 1, 14, 1500), row(48, 0, 15, 200), row(48, 1, 11, 3000),
            row(64, 0, 15, 300), row(64, 1, 13, 2000)]
    assert operating_points(rows, 15.0) == {("x", 1.0): 32}  # 64 passes above a failing 48: noise
    gen1 = get_profile("gen1")
    assert profile_for_line(gen1, 128).video_max_kbps == 32 and profile_for_line(gen1, 256).video_max_kbps == 96
    assert profile_for_line(gen1, 64) == gen1 and profile_for_line(get_profile("gen2"), 800) == get_profile("gen2")
    assert profile_for_line(get_profile("gen2"), 256) == get_profile("gen2")  # swept, not capped


def test_twin_emulate_sends_at_the_measured_operating_point():
    """``twin emulate --profile gen1`` on a line uses the cap measured for its uplink (as twin calibrate
    does), unless --max-video-kbps says otherwise; other overrides keep the measured cap."""
    from emulators.config import CallConfig

    def cap(**kw):
        return CallConfig.from_options(profile_name="gen1", **kw).profile.video_max_kbps

    assert cap(line_name="adsl-512-128") == 32 and cap(line_name="adsl-1024-256") == 96
    assert CallConfig.from_options(line_name="adsl-1024-256", profile_name="gen1").profile.name == "gen1"
    assert cap(line_name="adsl-1024-256", max_video_kbps=40) == 40
    assert cap(line_name="adsl-1024-256", fps=10) == 96


def test_calibrate_measures_n_concurrent_calls_through_one_line(tmp_path):
    """``OFFER@LOOP_M/N``: N calls at once through the one line, one row each (share N, the line's own
    rates, seeds apart), worse than the line carries one call; the table scores the line as N calls share
    it from them; a bad share exits 2 naming it."""
    out = tmp_path / "cal"
    proc = _twin("calibrate", "--lines", "adsl-512-128@3000,adsl-512-128@3000/2", "--profiles", "gen1",
                 "--seeds", "1", "--duration-s", "4", "--jobs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = read_calibration_csv(out / "calibration.csv")
    alone = [r for r in table.rows if r.share == 1]
    shared = [r for r in table.rows if r.share == 2]
    whole = AdslLine("adsl-512-128", 3000)
    assert len(alone) == 1 and len(shared) == 2 and len({r.seed for r in table.rows}) == 3  # no seed twice
    assert all(r.up_kbps == pytest.approx(whole.sync_rate_up_kbps, rel=1e-5) for r in table.rows)
    # two generation-1 calls do not fit a 128 kbit/s uplink that carries one: the kiosks' video suffers
    assert max(r.delay_p95_ms_up for r in shared) > alone[0].delay_p95_ms_up
    _, how = table.point(whole.shared_by(2), get_profile("gen1"))
    assert "one of 2 calls" in how
    with pytest.raises(TwinInputError, match=r"as one of 3 concurrent calls: not measured .*shares measured on "
                                             r"adsl-512-128: 1, 2"):
        table.point(whole.shared_by(3), get_profile("gen1"))
    for bad in ("adsl-2048-256@1500/0", "adsl-2048-256/x", "adsl-2048-256/2_0", "adsl-2048-256/65"):
        proc = _twin("calibrate", "--lines", bad, "--profiles", "gen1", "--out", str(tmp_path / "bad"))
        assert proc.returncode == 2 and f"line {bad!r}: expected OFFER@LOOP_M/SHARE" in proc.stderr
        assert "Traceback" not in proc.stderr
