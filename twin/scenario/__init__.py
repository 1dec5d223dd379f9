"""Scenarios: the specification (:mod:`twin.scenario.spec`, pydantic models, no I/O) and loading
(:mod:`twin.scenario.loading`: YAML, data files, place resolution, writing YAML).

This package re-exports the specification only, so that importing it reads no YAML; load scenarios
with :func:`twin.scenario.loading.load_scenario` or build them in memory with
:func:`twin.scenario.loading.scenario_from_data`. The re-exports are resolved on first use, so that
importing :mod:`twin.scenario.yaml12` alone (the command line does, to refuse an oversized file before its
slow imports) does not import the specification, pydantic and numpy.
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    """The specification's names, imported on first use (PEP 562)."""
    if name in __all__:
        from twin.scenario import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
