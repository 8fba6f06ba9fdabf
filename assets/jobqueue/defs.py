"""The ops job queue in Dagster, in one place: worker, housekeeping and rule jobs, and their triggers."""

import dagster as dg

from assets.jobqueue.jobs import JOBQUEUE_JOBS
from sensors.jobqueue import JOBQUEUE_SCHEDULES, JOBQUEUE_SENSORS

defs = dg.Definitions(jobs=JOBQUEUE_JOBS, schedules=JOBQUEUE_SCHEDULES, sensors=JOBQUEUE_SENSORS)
