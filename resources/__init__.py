"""Dagster resources of the ops-pipeline code location, and the instance storage its dagster.yaml names."""
