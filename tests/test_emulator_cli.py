"""``twin emulate`` / ``twin calibrate``: bad options exit with status 2 and no traceback, before any call."""

from __future__ import annotations

import pytest

from twin.cli import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["emulate", "--line", "adsl-9000-1"], "unknown line offer"),
        (["emulate", "--profile", "gen9"], "unknown encoder profile"),
        (["emulate", "--duration-s", "-5"], "duration_s"),
        (["emulate", "--duration-s", "0"], "duration_s"),
        (["emulate", "--loss-pct", "150"], "loss_pct"),
        (["emulate", "--loss-pct", "-1"], "loss_pct"),
        (["emulate", "--loop-length-m", "12000", "--family", "adsl"], "eligibility limit"),
        (["emulate", "--loop-length-m", "9000", "--family", "readsl"], "beyond READSL reach"),
        (["emulate", "--family", "vdsl", "--loop-length-m", "1000"], "--family"),
        (["emulate", "--trace-up", "/nonexistent/trace.up"], "not found"),
        (["emulate", "--outage", "10:5"], "outage"),
        (["emulate", "--outage", "abc"], "START_S:END_S"),
        (["emulate", "--burst-length", "0.5", "--loss-pct", "2"], "burst_length"),
        (["emulate", "--burst-length", "1e9", "--loss-pct", "5"], "--outage"),
        (["emulate", "--line", ""], "unknown line offer ''"),
        (["calibrate", "--lines", "", "--out", "/tmp/never.csv"], "at least one line"),
        (["emulate", "--max-video-kbps", "-3"], "video_max_kbps"),
        (["emulate", "--codec", "av1"], "video_codec"),
        (["emulate", "--width", "321"], "even"),
        (["emulate", "--bogus-option"], "No such option"),
        (["calibrate", "--profiles", "gen9", "--out", "/tmp/never.csv"], "unknown encoder profile"),
        (["calibrate", "--lines", "adsl-nope", "--out", "/tmp/never.csv"], "unknown line offer"),
        (["calibrate", "--jobs", "0", "--out", "/tmp/never.csv"], "jobs"),
    ],
)
def test_bad_options_exit_2_without_traceback(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    assert needle in err
    assert "Traceback" not in err + out


def test_help_lists_the_options(capsys):
    code, out, _ = run_cli(["emulate", "--help"], capsys)
    assert code == 0
    for option in ("--line", "--loop-length-m", "--burst-length", "--outage", "--trace-up", "--profile", "--seed"):
        assert option in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["emulate", "--duration-s", "1e9"], "duration_s"),
        (["emulate", "--fps", "1e9"], "fps"),
        (["emulate", "--scan-kb", "1e12"], "scan_kb"),
        (["emulate", "--width", "100000", "--height", "100000"], "1920x1080"),
        (["calibrate", "--duration-s", "1e9", "--out", "/tmp/never.csv"], "--duration-s"),
    ],
)
def test_absurd_sizes_exit_2_before_any_call(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2 and needle in err and "Traceback" not in err + out


def test_outputs_never_overwrite_other_files(tmp_path, capsys):
    """A bad --out is refused before the call or the sweep, and nothing that is not the tool's own output
    is ever overwritten."""
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    code, _, err = run_cli(["emulate", "--clock", "virtual", "--duration-s", "2", "--out", str(precious)], capsys)
    assert code == 2 and "existing file" in err
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "result.json").write_text("{}")
    code, _, err = run_cli(["emulate", "--clock", "virtual", "--duration-s", "2", "--out", str(folder)], capsys)
    assert code == 2 and "not empty" in err
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("name: mine\n")
    code, _, err = run_cli(["calibrate", "--lines", "adsl-512-128", "--profiles", "gen1", "--duration-s", "2",
                            "--out", str(scenario)], capsys)
    assert code == 2
    code, _, err = run_cli(["calibrate", "--lines", "adsl-512-128", "--profiles", "gen1", "--duration-s", "2",
                            "--out", str(tmp_path)], capsys)
    assert code == 2
    assert precious.read_text() == "precious" and scenario.read_text() == "name: mine\n"
    assert (folder / "result.json").read_text() == "{}"


def test_help_lists_every_command_with_its_own_summary_without_importing_it(capsys):
    """``twin --help`` is instant: it lists the commands from a static table. Each listed summary must
    be the command's own (first docstring line), or the table has drifted."""
    import subprocess
    import sys

    from twin.cli import _LAZY_COMMANDS, _LazyGroup

    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for name, (_, summary) in _LAZY_COMMANDS.items():
        command = _LazyGroup._load(name)
        assert command is not None and name in out
        assert command.get_short_help_str(limit=1000) == summary, name
    probe = "import sys, twin.cli as c; c.cli.main(['--help'], standalone_mode=False); " \
            "print(sorted(m for m in ('aiortc', 'scipy', 'matplotlib', 'twin.cli.emulate') if m in sys.modules))"
    listed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert listed.strip().endswith("[]"), listed


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_on_stdout_is_one_line_and_status_2(tmp_path):
    """Printing to a full device (ENOSPC) is bad output, not a crash: one line, no traceback, exit 2;
    a run's folder, written before its table is printed, is complete."""
    import subprocess
    import sys

    for args in (["schema"], ["run", "scenarios/tiny.yaml", "--out", str(tmp_path / "run")]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "twin.cli", *args], stdout=full, stderr=subprocess.PIPE,
                                  text=True, check=False, cwd=__import__("pathlib").Path(__file__).parents[1])
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "No space left on device" in done.stderr
    assert (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["emulate", "--delay-ms", "sideways:5"], "unknown direction 'sideways'"),
        (["emulate", "--delay-ms", "up:abc"], "--delay-ms 'up:abc'"),
        (["emulate", "--delay-ms", "-5"], "--delay-ms up:-5.0"),
        (["emulate", "--delay-ms", "1e9"], "--delay-ms"),
        (["emulate", "--jitter-ms", "10"], "--reorder"),
        (["emulate", "--jitter-ms", "10", "--keep-order", "--jitter-dist", "cauchy"], "unknown jitter distribution"),
        (["emulate", "--loss-pct", "down:120"], "--loss-pct down:120.0"),
        (["emulate", "--gemodel", "up:1,2,3,4,5"], "P[,R[,1-H[,1-K]]]"),
        (["emulate", "--gemodel", "1,0"], "absorb"),
        (["emulate", "--gemodel", "up:1,20", "--loss-pct", "up:3"], "choose one loss model"),
        (["emulate", "--queue-packets", "down:2.5"], "--queue-packets down:2.5"),
        (["emulate", "--queue-bytes", "0"], "--queue-bytes"),
        (["emulate", "--queue-ms", "up:nan"], "--queue-ms"),
        (["emulate", "--aqm", "red"], "--aqm"),
        (["emulate", "--aqm", "codel", "--codel-target-ms", "200"], "--codel-target-ms"),
    ],
)
def test_impossible_link_options_exit_2_naming_the_option(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    assert needle in err, err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"1\n2\n\n3\n", "line 3: invalid empty line"),
        (b"10\r\n20\r\n", "line 1: invalid integer '10\\r'"),
        (b"5\n3\n", "line 2: timestamp 3 is earlier"),
        (b"0\n", "line 1: trace must last for a nonzero amount of time"),
        (b"", "no valid timestamps"),
        (b"\x89PNG\r\n\x1a\n", "line 1: invalid integer"),
    ],
)
def test_bad_traces_exit_2_naming_the_file_and_line_before_any_folder(content, needle, tmp_path, capsys):
    trace = tmp_path / "bad.trace"
    trace.write_bytes(content)
    out_dir = tmp_path / "never"
    code, out, err = run_cli(["emulate", "--clock", "virtual", "--trace-up", str(trace), "--out", str(out_dir)], capsys)
    assert code == 2, (out, err)
    assert str(trace) in err and needle in err, err
    assert "Traceback" not in err + out
    assert not out_dir.exists()
