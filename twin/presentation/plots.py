"""The plotter ``twin run`` passes to the runner: a run's figures, drawn once into its ``plots/``
(:func:`twin.presentation.figures.write_run_figures`: headline KPIs per calendar year, the map), and
reused by ``twin compare`` and ``twin report``."""

from __future__ import annotations

from twin.presentation.figures import write_run_figures

#: The run figures' plotter (name kept for ``twin run`` and the tests).
write_rollout_plots = write_run_figures

__all__ = ["write_rollout_plots"]
