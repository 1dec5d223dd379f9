"""Per-need records of a replication, as a table for analysts (``twin run --records``), like Ciw's
``get_all_records()``: one row per citizen need, served or not.

Columns: ``replication``, ``outcome`` (``served`` or the reason it went unmet, twin.vocabulary.UNMET_REASONS),
``phase``, ``year``, ``time`` (arrival, local time as simulated), ``commune_id``, ``commune``,
``departement_code``, ``service``, ``site_id`` (the user kiosk; ``(no kiosk)`` when none is installed),
``station_site_id`` (the expert kiosk that answered; empty for a videoconference room or unmet need),
``wait_min``, ``duration_min``, ``mos``, ``travel_avoided_km`` (NaN for unmet needs). Needs unmet before
arrival (too far, generation-1 limit, no agent) are drawn as individual needs at uniform times within
their calendar-year segment, from communes in proportion to where they arise.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from twin.model.inputs import ModelInputs
from twin.model.records import ReplicationRecords
from twin.scenario.spec import Commune
from twin.vocabulary import NO_KIOSK


def _names(values: np.ndarray, names: tuple[str, ...] | list[str], missing: str = "") -> list[str]:
    return [names[i] if i >= 0 else missing for i in values.tolist()]


def records_table(inputs: ModelInputs, communes: tuple[Commune, ...], records: ReplicationRecords,
                  replication: int) -> pa.Table:
    """One row per citizen need of ``records`` (which must have been simulated with ``keep_records``).

    Raises:
        ValueError: the replication kept no records of unmet needs.
    """
    if records.unmet_events is None:
        raise ValueError("records need a replication simulated with keep_records=True")
    served, unmet = records.served, records.unmet_events
    n_served, n_unmet = len(served["phase"]), len(unmet["phase"])
    phase_names = [cfg.window.name for cfg in inputs.phases]
    origin = np.datetime64(dt.datetime.combine(inputs.sim_start_date, dt.time()), "ms")

    def both(served_values: np.ndarray, unmet_values: np.ndarray) -> np.ndarray:
        return np.concatenate([served_values, unmet_values])

    arrival = both(served["arrival_min"], unmet["arrival_min"].astype(float))
    commune = both(served["commune"], unmet["commune"].astype(np.int64))
    nan = np.full(n_unmet, np.nan)
    order = np.lexsort((np.arange(len(arrival)), arrival))
    columns = {
        "replication": np.full(len(arrival), replication, dtype=np.int32),
        "outcome": np.array(["served"] * n_served + [str(r) for r in unmet["reason"].tolist()], dtype=object),
        "phase": np.array(_names(both(served["phase"], unmet["phase"].astype(np.int64)), phase_names), dtype=object),
        "year": both(served["year"], unmet["year"].astype(np.int64)).astype(np.int32),
        "time": origin + (arrival * 60_000).astype("timedelta64[ms]"),
        "commune_id": np.array([communes[i].commune_id for i in commune.tolist()], dtype=object),
        "commune": np.array([communes[i].name for i in commune.tolist()], dtype=object),
        "departement_code": np.array([communes[i].departement_code for i in commune.tolist()], dtype=object),
        "service": np.array(_names(both(served["service"], unmet["service"].astype(np.int64)), inputs.service_ids),
                            dtype=object),
        "site_id": np.array(_names(both(served["site"], unmet["site"].astype(np.int64)), inputs.site_ids, NO_KIOSK),
                            dtype=object),
        "station_site_id": np.array(_names(served["station_site"], inputs.site_ids) + [""] * n_unmet, dtype=object),
        "wait_min": both(served["wait_min"], nan),
        "duration_min": both(served["duration_min"], nan),
        "mos": both(served["mos"], nan),
        "travel_avoided_km": both(served["travel_avoided_km"], nan),
    }
    return pa.table({name: values[order] for name, values in columns.items()})


__all__ = ["records_table"]
