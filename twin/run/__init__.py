"""Running scenarios: replications on an engine (in this process or on Dask), run folders written
atomically and resumably, the output-folder policy, and the signal policy shared by every command.

Layer: above the core (model, scenario, KPIs), below the presentation and the CLI; imports no
presentation (figures are drawn through a callback the CLI passes in).
"""
