"""Dagster objects of the finance reports; `defs` in `defs.py` declares them."""
