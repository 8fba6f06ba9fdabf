"""Reconciliation in Dagster, declared in one place: the daily partitioned runs and their breaks."""

import dagster as dg

from assets.recon.assets import RECON_ASSETS

defs = dg.Definitions(assets=RECON_ASSETS)
