"""Data-quality checks of the ledger, run hourly and on demand; failures carry examples as metadata."""

from collections.abc import Callable

import dagster as dg

from assets.ledger.assets import BALANCE_CACHE, BALANCE_OPERATIONS
from assets.metadata import json_value
from ops_pipeline.ledger import snapshots
from ops_pipeline.workspace import Workspace
from resources.ops import OpsResource

REPLAY_EQUALS_CACHE = "replay_equals_cache"
UNIQUE_OPERATION_KEYS = "unique_operation_keys"
FEE_RULE_PRESENT = "fee_rule_present"


def ledger_check(
    name: str, asset: dg.AssetKey, run: Callable[[Workspace], snapshots.CheckResult],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetChecksDefinition:
    """An asset check that runs a domain check of `ops_pipeline.ledger.snapshots`."""

    @dg.asset_check(asset=asset, name=name, description=run.__doc__)
    def _check(ops: OpsResource) -> dg.AssetCheckResult:
        with ops.workspace() as ws:
            result = run(ws)
        return dg.AssetCheckResult(
            passed=result.passed, severity=severity, description=result.description,
            metadata={"count": result.count, "examples": json_value(result.examples)},
        )

    return _check


LEDGER_CHECKS = [
    ledger_check(REPLAY_EQUALS_CACHE, BALANCE_CACHE, snapshots.check_replay),
    ledger_check(UNIQUE_OPERATION_KEYS, BALANCE_OPERATIONS, snapshots.check_unique_keys),
    # Entries already booked stay valid if their context row is later removed: a warning, not an error.
    ledger_check(FEE_RULE_PRESENT, BALANCE_OPERATIONS, snapshots.check_fee_rules, dg.AssetCheckSeverity.WARN),
]
