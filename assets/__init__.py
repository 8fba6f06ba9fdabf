"""Dagster assets, checks and jobs, one folder per domain; its `defs.py` declares all its Dagster objects."""
