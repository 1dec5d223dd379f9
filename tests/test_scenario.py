"""Scenario validation: every class of bad scenario gets a ScenarioError naming file, field and value,
and the command line turns it into exit status 2 with one paragraph and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from twin.errors import ScenarioError
from twin.scenario.loading import load_scenario
from twin.scenario.spec import GEN1_SERVICE_LIMIT, scenario_json_schema

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
TINY = SCENARIOS / "tiny.yaml"


def _mutate(path: Path, change) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message.strip(), message
    return message


BAD_CASES = {
    "unknown top-level key": (lambda d: d.update(colour="blue"), ["colour", "unknown field"]),
    "unknown nested key": (lambda d: d["sites"][0].update(speed=3), ["sites[0].speed", "unknown field"]),
    "wrong type": (lambda d: d["services"][0].update(agents="two"), ["services[0].agents", "'two'"]),
    "negative need": (lambda d: d["services"][1].update(need_per_capita_per_year=-0.1),
                      ["services[1].need_per_capita_per_year", "-0.1"]),
    "negative loop length": (lambda d: d["sites"][0]["line"].update(loop_length_m=-5),
                             ["sites[0].line.loop_length_m", "-5"]),
    "uptake over one": (lambda d: d["demand"].update(kiosk_uptake=1.5), ["demand.kiosk_uptake", "1.5"]),
    "bad time": (lambda d: d["services"][0]["slots"][0].update(start="25:00"), ["services[0].slots[0].start", "25:00"]),
    "end before start": (lambda d: d["services"][0]["slots"][0].update(end="08:00"), ["services[0].slots[0]", "after"]),
    "duplicate site id": (lambda d: d["sites"].append(dict(d["sites"][0])), ["sites[4].id", "'vorey'", "duplicate"]),
    "duplicate service id": (lambda d: d["services"].append(dict(d["services"][0])),
                             ["services[2].id", "'anpe'", "duplicate"]),
    "unknown service in site": (lambda d: d["sites"][0].update(services=["anpe", "tax"]),
                                ["sites[0].services[1]", "'tax'", "unknown service"]),
    "unknown site in phase": (lambda d: d["phases"][0]["add"].append("atlantis"),
                              ["phases[0].add[3]", "'atlantis'", "unknown site"]),
    "gen1 over the service limit": (
        lambda d: d["sites"][0].update(services=[f"s{i}" for i in range(GEN1_SERVICE_LIMIT + 1)]),
        ["sites[0].services"]),
    "upgrade before install": (lambda d: d["phases"][1].update(upgrade=["cunlhat"]),
                               ["phases[1].upgrade[0]", "'cunlhat'"]),
    "phases out of order": (lambda d: d["phases"][1].update(start_date="2006-01-01"),
                            ["phases[1].start_date", "2006-01-01"]),
    "site outside the region": (lambda d: d["sites"][0].update(place={"lat": 48.85, "lon": 2.35}),
                                ["sites[0].place", "48.85", "outside the region"]),
    "unknown commune": (lambda d: d["sites"][0].update(place={"commune": "Gotham"}),
                        ["sites[0].place.commune", "'Gotham'"]),
    "unknown line offer": (lambda d: d["sites"][0]["line"].update(offer="fibre-1g"),
                           ["sites[0].line.offer", "'fibre-1g'"]),
    "loop out of reach": (lambda d: d["sites"][0]["line"].update(loop_length_m=9500),
                          ["sites[0].line.loop_length_m", "9500"]),
    "missing data file": (lambda d: d["region"].update(communes_file="data/nowhere.csv"), ["nowhere.csv", "not found"]),
    "missing calibration file": (lambda d: d.update(quality={"model": "calibration", "calibration_file": "x.csv"}),
                                 ["quality.calibration_file", "x.csv"]),
    "missing required field": (lambda d: d["services"][0].pop("agents"), ["services[0].agents", "required"]),
    "boolean as a number": (lambda d: d["services"][0].update(agents=True), ["services[0].agents", "boolean"]),
    "infinite duration": (lambda d: d["services"][1]["interview_duration"].update(mean_min=float("inf")),
                          ["services[1].interview_duration.mean_min", "finite"]),
    "sd on an exponential": (lambda d: d["services"][1]["interview_duration"].update(sd_min=3),
                             ["services[1].interview_duration", "lognormal"]),
    "horizon of centuries": (lambda d: d["simulation"].update(end_date="2099-12-31"),
                             ["simulation.end_date", "2099-12-31", "60 years"]),
    "year 9999": (lambda d: d["simulation"].update(end_date="9999-12-30"), ["simulation.end_date", "9999-12-30"]),
    "site listed twice in a phase": (lambda d: d["phases"][0]["add"].append("vorey"),
                                     ["phases[0].add[3]", "'vorey'", "twice"]),
    "upgraded twice": (lambda d: d["phases"].append({"name": "again", "start_date": "2007-04-01",
                                                     "upgrade": ["vorey"]}),
                       ["phases[2].upgrade[0]", "already upgraded"]),
    "added and removed at once": (lambda d: d["phases"][1].update(remove=["cunlhat"]),
                                  ["phases[1].remove", "same phase"]),
    "service listed twice on a site": (lambda d: d["sites"][0].update(services=["anpe", "anpe"]),
                                       ["sites[0].services[1]", "twice"]),
    "unknown departement code": (lambda d: d["services"][0].update(departements=["3"]),
                                 ["services[0].departements[0]", "'3'", "departement code"]),
    "empty opening hours": (lambda d: d["sites"][0].update(opening_hours=[]), ["sites[0].opening_hours"]),
    "exchange named without exchanges": (lambda d: d["sites"][0].update(exchange="vorey-nra"),
                                         ["sites[0].exchange", "'vorey-nra'", "unknown exchange", "exchanges section"]),
    "unknown exchange": (lambda d: (_exchange(d), d["sites"][1].update(exchange="retournac-nra")),
                         ["sites[1].exchange", "'retournac-nra'", "unknown exchange", "vorey-nra"]),
    "exchange on an expert kiosk": (lambda d: (_exchange(d), d["sites"][3].update(exchange="vorey-nra")),
                                    ["sites[3].exchange", "'vorey-nra'", "only user kiosks"]),
    "backhaul without its rate": (lambda d: (_exchange(d), d["exchanges"][0]["backhaul"].pop("rate_up_kbps")),
                                  ["exchanges[0].backhaul.rate_up_kbps", "required"]),
    "backhaul rate of zero": (lambda d: (_exchange(d), d["exchanges"][0]["backhaul"].update(rate_down_kbps=0)),
                              ["exchanges[0].backhaul.rate_down_kbps", "= 0", "greater than or equal to 1"]),
    "backhaul rate beyond 10 Gbit/s": (lambda d: (_exchange(d), d["exchanges"][0]["backhaul"].update(rate_up_kbps=2e7)),
                                      ["exchanges[0].backhaul.rate_up_kbps", "20000000"]),
    "duplicate exchange id": (lambda d: (_exchange(d), d["exchanges"].append(dict(d["exchanges"][0]))),
                              ["exchanges[1].id", "'vorey-nra'", "duplicate"]),
    "exchange with the calibration table": (
        lambda d: (_exchange(d), d.update(quality={"model": "calibration",
                                                   "calibration_file": "data/auvergne-calibration.csv"})),
        ["sites[0].exchange", "calibration table", "quality.model: opinion"]),
}


def _exchange(data: dict) -> None:
    """One exchange, Vorey's, with the kiosk at Vorey behind it."""
    data["exchanges"] = [{"id": "vorey-nra", "backhaul": {"rate_up_kbps": 256, "rate_down_kbps": 1024}}]
    data["sites"][0]["exchange"] = "vorey-nra"


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_scenario_names_field_and_value(tiny_copy: Path, case: str) -> None:
    change, expected = BAD_CASES[case]
    if case == "gen1 over the service limit":
        # declare the extra services so that only the limit is wrong
        def change(d):
            for i in range(GEN1_SERVICE_LIMIT + 1):
                svc = dict(d["services"][1])
                svc["id"] = f"s{i}"
                d["services"].append(svc)
            d["sites"][0]["services"] = [f"s{i}" for i in range(GEN1_SERVICE_LIMIT + 1)]
        expected = ["sites[0].services", f"at most {GEN1_SERVICE_LIMIT}"]
    message = _error(_mutate(tiny_copy, change))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in: {message}"


def test_line_numbers_are_given(tiny_copy: Path) -> None:
    text = tiny_copy.read_text().replace("agents: 1\n", "agents: many\n", 1)
    tiny_copy.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "agents: many" in t)
    assert f"line {line}" in _error(tiny_copy)


@pytest.mark.parametrize("content, fragment", [
    ("", "empty"),
    ("   \n# only a comment\n", "empty"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- a list\n- not a mapping\n", "mapping"),
    ("name: x\nname: y\n", "duplicate key"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
])
def test_unreadable_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert fragment in _error(path)


def test_impossible_unquoted_date_names_the_field(tiny_copy: Path) -> None:
    tiny_copy.write_text(tiny_copy.read_text().replace("end_date: 2007-04-30", "end_date: 2007-02-30"))
    message = _error(tiny_copy)
    assert "simulation.end_date" in message and "2007-02-30" in message


def test_nested_aliases_are_refused_quickly(tmp_path: Path) -> None:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    assert "expands to" in _error(path)
    path.write_text("a: &a [*a]\n")  # a self-referential value is loaded, reported and printed, not recursed into
    assert "field a = [[...]]" in _error(path)
    path.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nests too deeply" in _error(path)


def test_merge_keys_work(tiny_copy: Path) -> None:
    text = tiny_copy.read_text().replace(
        "interview_duration: {distribution: exponential, mean_min: 15}",
        "interview_duration: {<<: {distribution: exponential}, mean_min: 15}")
    tiny_copy.write_text(text)
    assert load_scenario(tiny_copy).spec.services[1].interview_duration.distribution == "exponential"


def test_communes_csv_with_byte_order_mark(tiny_copy: Path) -> None:
    csv_path = tiny_copy.parent / "data" / "auvergne-communes.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    assert load_scenario(tiny_copy).communes


def test_pipes_and_devices_are_not_scenarios(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "regular file" in _error(fifo)
    assert "regular file" in _error(Path("/dev/zero"))


def test_missing_and_binary_files(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    assert "UTF-8" in _error(binary)


def test_every_shipped_scenario_loads() -> None:
    paths = sorted(SCENARIOS.glob("*.yaml"))
    assert TINY in paths
    for path in paths:
        loaded = load_scenario(path)
        assert loaded.communes and loaded.spec.phases


def test_json_schema_documents_fields() -> None:
    schema = scenario_json_schema()
    site = schema["$defs"]["SiteSpec"]["properties"]
    assert "description" in site["kiosk_count"]
    line = schema["$defs"]["LineSpec"]["properties"]
    assert "metres" in line["loop_length_m"]["description"]
    json.dumps(schema)


def test_cli_bad_scenario_exit_status_2(tiny_copy: Path) -> None:
    path = _mutate(tiny_copy, lambda d: d["services"][0].update(agents=-3))
    proc = subprocess.run([sys.executable, "-m", "twin.cli", "run", str(path), "--out", str(tiny_copy.parent / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "services[0].agents" in proc.stderr and "-3" in proc.stderr
    assert not (tiny_copy.parent / "o").exists()


def test_a_misspelt_required_field_is_named(tiny_copy: Path) -> None:
    tiny_copy.write_text(tiny_copy.read_text().replace("kiosk_uptake:", "kiosk_uptak:"))
    message = _error(tiny_copy)
    assert "demand.kiosk_uptak" in message and "unknown field" in message and "1 more error" in message


def test_a_scenario_built_in_memory_equals_the_same_scenario_loaded_from_a_file(small_scenario, tmp_path) -> None:
    """scenario_from_data (in memory, no file) and load_scenario (YAML) resolve the same scenario."""
    import yaml
    from conftest import SMALL_REGION, small_scenario_data

    from twin.scenario.loading import load_scenario, scenario_from_data

    built = small_scenario()
    (tmp_path / "in-memory.csv").write_text(
        "commune_id,name,departement_code,departement,lat,lon,population\n"
        + "".join(f"{c.commune_id},{c.name},{c.departement_code},X,{c.lat},{c.lon},{c.population}\n"
                  for c in SMALL_REGION))
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small_scenario_data()))
    loaded = load_scenario(tmp_path / "small.yaml")
    assert built.spec == loaded.spec and built.site_latlon == loaded.site_latlon
    assert built.office_latlon == loaded.office_latlon and built.communes == loaded.communes
    assert built.path is None and loaded.path == tmp_path / "small.yaml"
    for place, needle in (({"commune": "Atlantis"}, r"sites\[0\]\.place\.commune = 'Atlantis'"),
                          ({"lat": 48.85, "lon": 2.35}, r"sites\[0\]\.place .*outside the region")):
        data = small_scenario_data()
        data["sites"][0]["place"] = place
        with pytest.raises(ScenarioError, match=needle):
            scenario_from_data(data, communes=SMALL_REGION)
