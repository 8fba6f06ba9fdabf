"""Dagster sensors and schedules of the ops-pipeline code location."""
