"""The reconciliations `recon run --name` knows: each runs one business date (actor, dry run) and returns
its `RunSummary`."""

from __future__ import annotations

from ops_pipeline.recon import payouts, settlement

RECONS = {"settlement": settlement.run, "payouts": payouts.run}
