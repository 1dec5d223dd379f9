"""Presentation: figures, tables, the comparison of runs and the HTML report. Only the CLI imports it."""
