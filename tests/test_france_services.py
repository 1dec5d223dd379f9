"""The national scenario (scenarios/france-services.yaml, made by scenarios/make_france_services.py):
loads, its communes sum to the census total, its header's p-median figures hold for its sites, and the
communes CSV regenerates to the same bytes."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from planners.national import SparsePMedian
from twin.scenario.loading import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "france-services.yaml"
sys.path.insert(0, str(ROOT / "scenarios"))

import make_france_services as maker


@pytest.fixture(scope="module")
def loaded():
    return load_scenario(SCENARIO)


def test_loads_with_census_total_and_every_mainland_departement(loaded):
    communes = loaded.communes
    assert sum(c.population for c in communes) == maker.MAINLAND_POPULATION_2008 == 61_831_900
    assert len({c.departement_code for c in communes}) == 94
    assert not {"2A", "2B"} & {c.departement_code for c in communes}
    users = [s for s in loaded.spec.sites if s.kind == "user"]
    experts = [s for s in loaded.spec.sites if s.kind == "expert"]
    assert len(users) == maker.USER_SITES
    assert len({(s.services[0], s.place.commune) for s in experts}) == 94 * len(maker.STATIONS_PER_MILLION)
    assert all(s.kiosk_count == 1 for s in experts)  # one expert kiosk per station, each on its own line
    assert all(len(svc.offices) == 94 for svc in loaded.spec.services)
    for svc in loaded.spec.services:  # agents = the service's stations (expert kiosks or rooms)
        stations = sum(s.kiosk_count for s in experts if s.services == [svc.id]) + svc.standard_vc_rooms
        assert svc.agents == stations


def test_header_pmedian_figures_hold_for_the_sites(loaded):
    header = SCENARIO.read_text(encoding="utf-8").split("\nname:")[0]
    found = re.search(r"objective ([\d,]+) resident-km.*?lower bound ([\d,]+), gap ([\d.]+) %", header, re.DOTALL)
    assert found, header
    objective, bound, gap_pct = (float(found.group(k).replace(",", "")) for k in (1, 2, 3))
    assert bound <= objective and gap_pct == pytest.approx(100 * (objective - bound) / objective, abs=0.01)
    communes = loaded.communes
    index = {c.commune_id: k for k, c in enumerate(communes)}
    sites = np.array([index[s.place.commune] for s in loaded.spec.sites if s.kind == "user"])
    latlon = np.array([[c.lat, c.lon] for c in communes])
    problem = SparsePMedian.from_coordinates(latlon, [c.population for c in communes], latlon, circuity=1.3)
    assert problem.cost(sites) == pytest.approx(objective, abs=1.0)


def _pinned_versions_installed() -> bool:
    """The GeoNames packages (the ``data`` extra) are installed at the versions that made the file."""
    try:
        return all(metadata.version(p) == v for p, v in maker.PINNED_VERSIONS.items())
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _pinned_versions_installed(),
                    reason="GeoNames packages (pip install -e '.[data]') absent or not the versions that made the file")
def test_communes_csv_regenerates_to_the_same_bytes():
    text = maker.to_csv(maker.build_communes(maker.load_cities500(), maker.load_rg_labels()))
    assert text == maker.OUT_CSV.read_text(encoding="utf-8")
