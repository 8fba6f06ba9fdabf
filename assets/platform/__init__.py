"""Dagster objects of the platform domain; `defs` in `defs.py` declares them all."""
