"""Demand-to-candidate distance matrices for the placement planners (kilometres).

Three ways to get an (n_demand, n_candidates) cost matrix for :class:`planners.placement.PlacementProblem`:

* :func:`great_circle_km` - haversine distance on a sphere of the mean Earth radius;
* :func:`distance_matrix_km` - great-circle distance times a road circuity factor (an assumption);
  this is :func:`twin.region.road_distance_matrix_km` with input validation, so the planners and the twin
  measure the same kilometres;
* :func:`road_graph_distance_km` - shortest paths on a road graph (networkx, Dijkstra).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np

from twin.errors import TwinInputError
from twin.region import EARTH_RADIUS_KM, road_distance_matrix_km
from twin.region import great_circle_km as _region_great_circle_km

__all__ = [
    "DEFAULT_CIRCUITY",
    "EARTH_MEAN_RADIUS_KM",
    "distance_matrix_km",
    "great_circle_km",
    "road_graph_distance_km",
]

#: IUGG mean Earth radius R1 = (2a + b) / 3 of the GRS80 ellipsoid, km: the twin's own constant
#: (:data:`twin.region.EARTH_RADIUS_KM`), re-exported under the planners' historical name.
#: Source: H. Moritz, "Geodetic Reference System 1980", Journal of Geodesy 74 (2000) 128-133.
EARTH_MEAN_RADIUS_KM = EARTH_RADIUS_KM

#: Road distance / great-circle distance. ASSUMPTION, not measured for Auvergne: detour indices of
#: road networks are typically 1.2-1.4 (Ballou, Rahardja & Sakai, "Selected country circuity factors for
#: road travel distance estimation", Transportation Research Part A 36 (2002) 843-848); 1.3 is taken for a
#: hilly rural region. Replace by road-graph distances (:func:`road_graph_distance_km`) when available.
DEFAULT_CIRCUITY = 1.3


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle (haversine) distance in km between points given in decimal degrees.

    The validating front of :func:`twin.region.great_circle_km` (the one haversine of the project):
    checks the coordinates, then delegates. Vectorised: arguments broadcast with numpy rules (e.g.
    ``lat1[:, None]`` against ``lat2[None, :]`` gives a matrix). Uses the mean Earth radius
    :data:`EARTH_MEAN_RADIUS_KM`; the spherical model errs by up to about 0.5 % against the ellipsoid,
    which is far below the road circuity uncertainty.

    Args:
        lat1, lon1, lat2, lon2: latitudes in [-90, 90] and longitudes in degrees (array-like).

    Returns:
        Float array of the broadcast shape, km.

    Raises:
        TwinInputError: NaN/infinite coordinates or a latitude outside [-90, 90].
    """
    arrays = [np.asarray(a, dtype=float) for a in (lat1, lon1, lat2, lon2)]
    _check_coordinates("lat1", arrays[0], "lon1", arrays[1])
    _check_coordinates("lat2", arrays[2], "lon2", arrays[3])
    # one haversine for the whole project: the twin's (twin.region), so planners and twin agree exactly
    return _region_great_circle_km(*arrays)


def _check_coordinates(lat_name: str, lat: np.ndarray, lon_name: str, lon: np.ndarray) -> None:
    """Raise TwinInputError on NaN/inf coordinates or a latitude outside [-90, 90] degrees."""
    for name, a in ((lat_name, lat), (lon_name, lon)):
        if not np.all(np.isfinite(a)):
            raise TwinInputError(f"{name}: coordinates must be finite numbers (got NaN or inf)")
    if np.any(np.abs(lat) > 90.0):
        bad = lat[np.abs(lat) > 90.0].flat[0]
        raise TwinInputError(f"{lat_name}: latitude {bad} outside [-90, 90] degrees")


def _latlon(name: str, a) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise TwinInputError(f"{name}: expected an (n, 2) array of (lat, lon) degrees, got shape {arr.shape}")
    return arr


def distance_matrix_km(demand_latlon, site_latlon, circuity: float = DEFAULT_CIRCUITY) -> np.ndarray:
    """Estimated road distance matrix: great-circle km times a circuity factor.

    Args:
        demand_latlon: (n_demand, 2) array of (latitude, longitude) in degrees.
        site_latlon: (n_candidates, 2) array of (latitude, longitude) in degrees.
        circuity: road distance / crow-flight distance, >= 1 (default :data:`DEFAULT_CIRCUITY` = 1.3,
            an assumption; see its note).

    Returns:
        (n_demand, n_candidates) float array, km.

    Raises:
        TwinInputError: bad shapes, NaN coordinates, or circuity < 1 / not finite.
    """
    if not np.isfinite(circuity) or circuity < 1.0:
        raise TwinInputError(f"circuity must be a finite number >= 1, got {circuity}")
    d = _latlon("demand_latlon", demand_latlon)
    s = _latlon("site_latlon", site_latlon)
    _check_coordinates("demand_latlon latitude", d[:, 0], "demand_latlon longitude", d[:, 1])
    _check_coordinates("site_latlon latitude", s[:, 0], "site_latlon longitude", s[:, 1])
    return road_distance_matrix_km(d, s, circuity)


def road_graph_distance_km(
    graph: nx.Graph,
    demand_nodes: Sequence[Hashable],
    site_nodes: Sequence[Hashable],
    weight: str = "length_km",
) -> np.ndarray:
    """Shortest-path distances on a road graph from each demand node to each candidate site node.

    One Dijkstra per candidate site (``networkx.single_source_dijkstra_path_length``; on a directed graph
    it runs on the reversed graph so that entry ``[i, j]`` is the length of the path demand i -> site j).
    Cost O(m (E + V log V)) for m sites.

    Args:
        graph: networkx graph or digraph whose edges carry ``weight`` (km, finite and >= 0).
        demand_nodes: n demand node keys (must be in the graph).
        site_nodes: m candidate site node keys (must be in the graph).
        weight: the edge attribute holding the length, km.

    Returns:
        (n_demand, n_candidates) float array, km; ``inf`` where a site cannot be reached from a demand
        node (the placement problem rejects such matrices: drop the unreachable nodes first).

    Raises:
        TwinInputError: a node missing from the graph, or an edge whose ``weight`` is missing, NaN or
            negative.
    """
    for role, nodes in (("demand", demand_nodes), ("site", site_nodes)):
        for v in nodes:
            if v not in graph:
                raise TwinInputError(f"{role} node {v!r} is not in the road graph")
    for u, v, data in graph.edges(data=True):
        length = data.get(weight)
        if length is None:
            raise TwinInputError(f"road graph edge ({u!r}, {v!r}) has no {weight!r} attribute")
        try:
            length = float(length)
        except (TypeError, ValueError):
            raise TwinInputError(f"road graph edge ({u!r}, {v!r}): {weight}={length!r} is not a number") from None
        if not length >= 0.0:  # also catches NaN
            raise TwinInputError(f"road graph edge ({u!r}, {v!r}): {weight}={length} must be >= 0")
    g = graph.reverse(copy=False) if graph.is_directed() else graph
    demand_index: dict[Hashable, list[int]] = {}
    for i, v in enumerate(demand_nodes):
        demand_index.setdefault(v, []).append(i)
    out = np.full((len(demand_nodes), len(site_nodes)), np.inf)
    for j, s in enumerate(site_nodes):
        lengths = nx.single_source_dijkstra_path_length(g, s, weight=weight)
        for v, rows in demand_index.items():
            if v in lengths:
                out[rows, j] = lengths[v]
    return out
