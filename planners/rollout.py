"""A scenario's rollout as the planners read it: the sites installed after some phases, and fresh names
for the sites and phases a plan adds. Pure functions over :class:`twin.scenario.spec.Scenario`."""

from __future__ import annotations

from twin.scenario.spec import Scenario

__all__ = ["installed_after", "unique_id"]


def installed_after(spec: Scenario, n_phases: int | None = None) -> list[str]:
    """Site ids installed after applying the first ``n_phases`` phases (default: all), in
    installation order. ``n_phases=0`` (or less) gives no site."""
    installed: dict[str, None] = {}
    for phase in spec.phases[: len(spec.phases) if n_phases is None else max(0, n_phases)]:
        for sid in phase.add:
            installed[sid] = None
        for sid in phase.remove:
            installed.pop(sid, None)
    return list(installed)


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever is not in ``taken``; adds it to ``taken``."""
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}-{k}"
    taken.add(candidate)
    return candidate
