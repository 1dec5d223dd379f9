"""twin: a digital twin of a regional network of public-service videoconference kiosks.

The package core (scenario model, line model, quality model, SimPy model, KPIs, runner, results)
is free of terminal output and plotting; the CLI in :mod:`twin.cli` is a thin layer on top.
"""

__version__ = "0.1.0"
