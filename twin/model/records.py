"""What one replication emits: typed records, as columns (numpy arrays built at the end of a run)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Columns of :attr:`ReplicationRecords.served`, one row per interview served.
SERVED_COLUMNS = ("phase", "service", "site", "arrival_min", "wait_min", "duration_min", "mos", "travel_avoided_km")

#: Integer columns of :attr:`ReplicationRecords.served` (the others are floats).
INTEGER_COLUMNS = ("phase", "service", "site")


@dataclass
class ReplicationRecords:
    """What one replication emits.

    Attributes:
        served: one row per interview served, as columns :data:`SERVED_COLUMNS`: phase index, service
            index, site index, arrival time (simulation minutes), wait (min), interview duration (min),
            MOS, travel avoided (round trip to the nearest office, km).
        unmet: counts per (phase index, service index, reason of :data:`twin.vocabulary.UNMET_REASONS`).
        kiosk_busy_min: booth-minutes used per phase, shape (n_phases,).
        agent_busy_min: agent-minutes of interviews per phase and service, shape (n_phases, n_services).
    """

    served: dict[str, np.ndarray]
    unmet: dict[tuple[int, int, str], int]
    kiosk_busy_min: np.ndarray
    agent_busy_min: np.ndarray


class ServedColumns:
    """Appends served interviews row by row, then turns the columns into typed arrays."""

    def __init__(self) -> None:
        self._cols: dict[str, list] = {k: [] for k in SERVED_COLUMNS}

    def append(self, phase: int, service: int, site: int, arrival_min: float, wait_min: float,
               duration_min: float, mos: float, travel_avoided_km: float) -> None:
        """Record one interview (units as in :class:`ReplicationRecords`)."""
        cols = self._cols
        cols["phase"].append(phase)
        cols["service"].append(service)
        cols["site"].append(site)
        cols["arrival_min"].append(arrival_min)
        cols["wait_min"].append(wait_min)
        cols["duration_min"].append(duration_min)
        cols["mos"].append(mos)
        cols["travel_avoided_km"].append(travel_avoided_km)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (int64 for :data:`INTEGER_COLUMNS`, float otherwise)."""
        return {k: np.asarray(v, dtype=np.int64 if k in INTEGER_COLUMNS else float) for k, v in self._cols.items()}


__all__ = ["INTEGER_COLUMNS", "SERVED_COLUMNS", "ReplicationRecords", "ServedColumns"]
