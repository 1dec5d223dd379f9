"""The region: demand points (communes) and road distances between them and kiosks or offices.

Road distance is the great-circle (haversine) distance times a circuity factor. The default factor 1.3
is an assumption in the usual range of measured detour indices for rural road networks (ratios of road
to straight-line distance of about 1.2-1.4; e.g. Ballou, Rahardja & Sakai, "Selected country circuity
factors for road travel distance estimation", Transportation Research A 36 (2002) 843-848). A scenario
can set its own ``region.circuity_factor``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Mean Earth radius, km (IUGG mean radius R1 = 6371.0088 km; Moritz, "Geodetic Reference System 1980").
EARTH_RADIUS_KM = 6371.0088


def great_circle_km(lat1_deg: np.ndarray | float, lon1_deg: np.ndarray | float,
                    lat2_deg: np.ndarray | float, lon2_deg: np.ndarray | float) -> np.ndarray:
    """Great-circle distance by the haversine formula, km; numpy broadcasting over the inputs.

    Args:
        lat1_deg, lon1_deg, lat2_deg, lon2_deg: coordinates in decimal degrees (WGS84), broadcastable.

    Returns:
        Distances in km with the broadcast shape.
    """
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(x, dtype=float)) for x in (lat1_deg, lon1_deg, lat2_deg, lon2_deg))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def road_distance_matrix_km(origins_latlon: np.ndarray | Sequence[tuple[float, float]],
                            destinations_latlon: np.ndarray | Sequence[tuple[float, float]],
                            circuity_factor: float = 1.3) -> np.ndarray:
    """Road distance estimate from each origin to each destination, km.

    Args:
        origins_latlon: shape (n, 2), degrees.
        destinations_latlon: shape (m, 2), degrees.
        circuity_factor: road / great-circle distance ratio (>= 1).

    Returns:
        Array of shape (n, m), km.

    Raises:
        ValueError: a circuity factor below 1, or arrays not of shape (k, 2).
    """
    if circuity_factor < 1.0:
        raise ValueError(f"circuity_factor must be >= 1, got {circuity_factor}")
    origins = np.asarray(origins_latlon, dtype=float).reshape(-1, 2)
    destinations = np.asarray(destinations_latlon, dtype=float).reshape(-1, 2)
    gc = great_circle_km(origins[:, None, 0], origins[:, None, 1], destinations[None, :, 0], destinations[None, :, 1])
    return circuity_factor * gc


def population_within_km(distance_km: np.ndarray, population: np.ndarray, radius_km: float) -> float:
    """Population whose nearest destination is within ``radius_km``.

    Args:
        distance_km: shape (n_communes, m_sites) road distances; m may be 0 (then 0 is returned).
        population: shape (n_communes,).
        radius_km: the radius, km.
    """
    if distance_km.shape[1] == 0:
        return 0.0
    return float(population[distance_km.min(axis=1) <= radius_km].sum())
