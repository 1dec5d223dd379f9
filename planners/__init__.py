"""Planners: kiosk placement, line sizing and generation upgrades, written as scenarios twin runs."""
