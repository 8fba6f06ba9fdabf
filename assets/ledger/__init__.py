"""Dagster objects of the ledger domain; `defs` in `defs.py` declares them all."""
