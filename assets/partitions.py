"""The partitions every domain shares: one per business date (and month) in OPS_TIMEZONE.

The current day and month are included (`end_offset=1`): their runs are partial and re-runnable, as every
partitioned step is idempotent.
"""

import dagster as dg

from ops_pipeline.settings import Settings

FIRST_DAY = "2025-01-01"
_TIMEZONE = Settings.from_env().timezone

DAILY = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone=_TIMEZONE, end_offset=1)
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=FIRST_DAY, timezone=_TIMEZONE, end_offset=1)
