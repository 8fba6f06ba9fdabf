"""Dagster objects of the fundout domain; `defs` in `defs.py` declares them all."""
