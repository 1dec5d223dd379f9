"""Planners: kiosk placement, line sizing and generation upgrades, written as scenarios twin runs.

Imports run one way, from the top of this list to the bottom (none back up, no circle):

* :mod:`planners.plans` - each planner end to end on a scenario (what ``twin plan`` calls);
* :mod:`planners.scenarios` - the one module between scenarios and problems or plans: a scenario as a
  placement problem, plans as scenario data, what-ifs in memory, plan files written;
* computations over the core's objects: :mod:`planners.upgrades` (upgrade gains and order),
  :mod:`planners.lines` (line sizing);
* solvers, importing only the core: :mod:`planners.placement` (p-median, MCLP, LSCP, p-center on a cost
  matrix), :mod:`planners.orlib` (OR-Library instances), :mod:`planners.distances` (cost matrices);
* shared helpers: :mod:`planners.rollout` (installed sites, fresh ids), :mod:`planners.dates`.
"""
