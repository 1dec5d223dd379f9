"""Scenarios: the specification (:mod:`twin.scenario.spec`, pydantic models, no I/O) and loading
(:mod:`twin.scenario.loading`: YAML, data files, place resolution, writing YAML).

This package re-exports the specification only, so that importing it reads no YAML; load scenarios
with :func:`twin.scenario.loading.load_scenario` or build them in memory with
:func:`twin.scenario.loading.scenario_from_data`.
"""

from twin.scenario.spec import (
    GEN1_SERVICE_LIMIT,
    Commune,
    CostSpec,
    DemandSpec,
    DurationSpec,
    LineSpec,
    LoadedScenario,
    PhaseSpec,
    Place,
    QualitySpec,
    RegionSpec,
    Scenario,
    ServiceSpec,
    SimulationSpec,
    SiteSpec,
    TimeWindow,
    build_line,
    intersect_weekly,
    scenario_json_schema,
    weekly_intervals_min,
)

__all__ = [
    "GEN1_SERVICE_LIMIT",
    "Commune",
    "CostSpec",
    "DemandSpec",
    "DurationSpec",
    "LineSpec",
    "LoadedScenario",
    "PhaseSpec",
    "Place",
    "QualitySpec",
    "RegionSpec",
    "Scenario",
    "ServiceSpec",
    "SimulationSpec",
    "SiteSpec",
    "TimeWindow",
    "build_line",
    "intersect_weekly",
    "scenario_json_schema",
    "weekly_intervals_min",
]
