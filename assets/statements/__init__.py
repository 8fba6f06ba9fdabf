"""Dagster objects of the bank statements domain; `defs` in `defs.py` declares them all."""
