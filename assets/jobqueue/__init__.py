"""Dagster objects of the jobqueue domain; `defs` in `defs.py` declares them all."""
