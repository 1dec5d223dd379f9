"""Issue 17's reliability suite, inputs: a Hypothesis-driven scenario mutator. Each mutant of
scenarios/tiny.yaml (a value of another type or out of range, a key removed or unknown, an ambiguous
YAML scalar, a duplicate key) goes through the ``twin`` entry point in this process with
``--replications 0``: a mutant the schema refuses ends with exit status 2 and one paragraph naming the
scenario file (and, for the mutations that are wrong by construction, the field); a mutant that is still
a valid scenario is loaded and compiled in full, then refused for its replications. Never a traceback.
A few hundred mutants take well under a minute."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin.scenario.yaml12 import format_loc, parse_yaml_text

TINY = ROOT / "scenarios" / "tiny.yaml"
BASE, _ = parse_yaml_text(TINY.read_text(), TINY)
AMBIGUOUS = ["010", "08", "-007", "1:30", "14:00", "yes", "No", "on", "OFF", "1_000", "0b101"]
SENTINEL = "@@mutant@@"
#: Mutants per run: 300 in CI (the same ones every time); TWIN_MUTANTS=5000 hunts with fresh ones.
MUTANTS = int(os.environ.get("TWIN_MUTANTS", "300"))


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path into the data (mappings by key, lists by index), the root excluded."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(path + (key,))
            out += _paths(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(path + (i,))
            out += _paths(value, path + (i,))
    return out


PATHS = _paths(BASE)


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data



NASTY = st.one_of(
    st.integers(min_value=-10**20, max_value=10**20),
    st.sampled_from([0, -1, 10**9, 10**12, 2**63, 2**70]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "nan", "-inf", "9999-99-99", "2007-02-30", "../" * 5, "/dev/zero", "x" * 200_001]),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def mutants(draw) -> tuple[str, str, tuple]:
    """(kind, YAML text, the path mutated)."""
    data = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["replace", "retype", "delete", "unknown key", "ambiguous", "duplicate key",
                                 "scale"]))
    path = draw(st.sampled_from(PATHS))
    parent, last = _at(data, path[:-1]), path[-1]
    if kind == "replace":
        parent[last] = draw(NASTY)
    elif kind == "retype":  # a mapping or list where a value is expected, or the other way round
        value = parent[last]
        parent[last] = draw(st.sampled_from(["text", 3])) if isinstance(value, (dict, list)) else [value]
    elif kind == "delete":
        del parent[last]
    elif kind == "unknown key":
        target = _at(data, path) if isinstance(_at(data, path), dict) else data
        target[draw(st.sampled_from(["colour", "agent", "kiosk_counts", "Name"]))] = 1
        path = path if isinstance(_at(BASE, path), dict) else ()
    elif kind == "scale":
        value = parent[last]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[last] = value * draw(st.sampled_from([-1, 10**3, 10**9, 10**15]))
    elif kind == "ambiguous":
        parent[last] = SENTINEL
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    if kind == "ambiguous":
        text = re.sub(rf"'{SENTINEL}'|\"{SENTINEL}\"|{SENTINEL}", draw(st.sampled_from(AMBIGUOUS)), text)
    elif kind == "duplicate key":
        key = draw(st.sampled_from(list(data)))
        text += f"{key}: 1\n"
        path = (key,)
    return kind, text, path


@pytest.fixture(scope="module")
def mutant_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mutants")
    shutil.copytree(ROOT / "scenarios" / "data", folder / "data")
    return folder


@settings(max_examples=MUTANTS, deadline=None, derandomize="TWIN_MUTANTS" not in os.environ, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(mutant=mutants())
def test_a_mutant_scenario_ends_in_exit_2_with_a_named_cause_and_no_traceback(mutant, mutant_dir, twin_cli):
    kind, text, path = mutant
    scenario = mutant_dir / "mutant.yaml"
    scenario.write_text(text, encoding="utf-8")
    code, _, stderr = twin_cli("run", scenario, "--replications", "0", "--out", mutant_dir / "never")
    assert code == 2, (kind, path, stderr)
    assert "Traceback" not in stderr and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    valid = "--replications must be >= 1" in stderr
    event(f"{kind}: {'still valid, compiled' if valid else 'refused'}")
    assert valid or str(scenario) in stderr, stderr
    if kind in ("retype", "unknown key", "ambiguous", "duplicate key") and path:
        assert not valid, (kind, path)
        named = format_loc(path) if kind != "duplicate key" else f"duplicate key {path[0]!r}"
        assert named in stderr or kind == "retype" and "line " in stderr, (kind, path, stderr)
    assert not (mutant_dir / "never").exists()
