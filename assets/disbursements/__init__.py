"""Dagster objects of the disbursements domain; `defs` in `defs.py` declares them all."""
