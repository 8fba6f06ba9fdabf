"""`ops-pipeline dev`: placeholder until the Dagster code location lands."""
