"""Dagster objects of the tickets domain; `defs` in `defs.py` declares them all."""
