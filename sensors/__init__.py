"""Dagster sensors and schedules, one module per domain; `assets/<domain>/defs.py` declares them."""
