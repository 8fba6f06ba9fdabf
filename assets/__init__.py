"""Dagster assets, asset checks and jobs of the ops-pipeline code location, one module per domain."""
