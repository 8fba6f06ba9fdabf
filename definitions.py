"""The one Dagster code location of ops-pipeline: each domain's `defs`, merged, with the shared resources.

A new domain adds its folder `assets/<domain>/` (with `defs.py`) and one line below.
"""

import dagster as dg

from assets.disbursements import defs as disbursements
from assets.fundout import defs as fundout
from assets.giftcards import defs as giftcards
from assets.jobqueue import defs as jobqueue
from assets.ledger import defs as ledger
from assets.platform import defs as platform
from assets.recon import defs as recon
from assets.reports import defs as reports
from assets.statements import defs as statements
from assets.tickets import defs as tickets
from resources.lake_duckdb import LakeDuckDBResource
from resources.ops import OpsResource

DOMAINS = [
    ledger,
    jobqueue,
    fundout,
    tickets,
    statements,
    recon,
    reports,
    disbursements,
    platform,
    giftcards,
]

ops = OpsResource()

defs = dg.Definitions.merge(
    *(domain.defs for domain in DOMAINS),
    dg.Definitions(
        resources={"ops": ops, "duckdb": LakeDuckDBResource(ops=ops)},
        # Steps are short and mostly sequential: one process per run starts faster than one per step.
        executor=dg.in_process_executor,
    ),
)
