"""Auto fund-out and notifications in Dagster, declared in one place: the slot job, its schedule, the
notification dispatch and its sensor."""

import dagster as dg

from assets.fundout.jobs import FUNDOUT_JOBS
from sensors.fundout import FUNDOUT_SCHEDULES, FUNDOUT_SENSORS

defs = dg.Definitions(jobs=FUNDOUT_JOBS, schedules=FUNDOUT_SCHEDULES, sensors=FUNDOUT_SENSORS)
