"""Dagster objects of the gift-card domain; `defs` in `defs.py` declares them all."""
