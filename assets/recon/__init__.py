"""Reconciliation in Dagster."""
