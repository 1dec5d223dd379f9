"""What one replication emits: typed records, as columns (numpy arrays built at the end of a run)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Columns of :attr:`ReplicationRecords.served`, one row per interview served.
SERVED_COLUMNS = ("phase", "year", "service", "site", "station_site", "commune", "arrival_min", "wait_min",
                  "duration_min", "mos", "travel_avoided_km", "speech_mos", "video_mos", "usable")

#: Integer columns of :attr:`ReplicationRecords.served` (the others are floats).
INTEGER_COLUMNS = ("phase", "year", "service", "site", "station_site", "commune")

#: Columns of :attr:`ReplicationRecords.unmet_events`, one row per need unmet during the simulation.
UNMET_EVENT_COLUMNS = ("phase", "year", "service", "site", "commune", "arrival_min", "reason")


@dataclass
class ReplicationRecords:
    """What one replication emits.

    Attributes:
        served: one row per interview served, as columns :data:`SERVED_COLUMNS`: phase index, calendar
            year of arrival, service index, user kiosk index, index of the expert kiosk that answered (-1
            for a standard videoconference room), commune index, arrival time (simulation minutes), wait
            (min), interview duration (min), MOS, travel avoided (round trip to the nearest office, km),
            speech MOS and video MOS (the worse direction), usable (the share of such interviews usable,
            0-1: :class:`twin.quality.UsableCriteria` on the measured calls; 0 or 1 for a model).
        unmet_counts: needs unmet per (phase index, year, site index or -1, service index, reason of
            :data:`twin.vocabulary.UNMET_REASONS`).
        kiosk_busy_min: booth-minutes used per phase and site, shape (n_phases, n_sites) (user kiosks).
        station_busy_min: agent-minutes of interviews per phase and expert kiosk, shape (n_phases, n_sites).
        agent_busy_min: agent-minutes of interviews per phase and service, shape (n_phases, n_services).
        unmet_events: needs unmet during the simulation (``gave_up``, ``line_down``), one row each
            (:data:`UNMET_EVENT_COLUMNS`), when the replication was asked to keep records; else None.
        arrived: citizens who came to a kiosk per (phase, year, site, service) (needs unmet before
            arrival not included): those not served nor unmet by the horizon are pending.
        cut_by_outage: interviews cut short by a line going down, per phase (counted as ``line_down``).
    """

    served: dict[str, np.ndarray]
    unmet_counts: dict[tuple[int, int, int, int, str], int]
    kiosk_busy_min: np.ndarray
    station_busy_min: np.ndarray
    agent_busy_min: np.ndarray
    unmet_events: dict[str, np.ndarray] | None = None
    arrived: dict[tuple[int, int, int, int], int] = field(default_factory=dict)
    cut_by_outage: np.ndarray | None = None

    @property
    def unmet(self) -> dict[tuple[int, int, str], int]:
        """Needs unmet per (phase index, service index, reason)."""
        out: dict[tuple[int, int, str], int] = {}
        for (phase, _year, _site, service, reason), n in self.unmet_counts.items():
            out[(phase, service, reason)] = out.get((phase, service, reason), 0) + n
        return out


class ServedColumns:
    """Appends served interviews row by row, then turns the columns into typed arrays."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def append(self, *values: float) -> None:
        """Record one interview: one value per column of :data:`SERVED_COLUMNS`, in that order (units as
        in :class:`ReplicationRecords`)."""
        self._rows.append(values)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (int64 for :data:`INTEGER_COLUMNS`, float otherwise)."""
        columns = list(zip(*self._rows)) if self._rows else [()] * len(SERVED_COLUMNS)
        return {k: np.asarray(v, dtype=np.int64 if k in INTEGER_COLUMNS else float)
                for k, v in zip(SERVED_COLUMNS, columns, strict=True)}


__all__ = ["INTEGER_COLUMNS", "SERVED_COLUMNS", "UNMET_EVENT_COLUMNS", "ReplicationRecords", "ServedColumns"]
