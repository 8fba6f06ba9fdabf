"""Bank statements in Dagster, declared in one place: the sensor that loads files from the landing folder."""

import dagster as dg

from sensors.statements import STATEMENTS_SENSORS

defs = dg.Definitions(sensors=STATEMENTS_SENSORS)
