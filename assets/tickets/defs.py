"""Ticketing in Dagster, declared in one place: the sensor that opens and resolves tickets for queue jobs."""

import dagster as dg

from sensors.tickets import TICKETS_SENSORS

defs = dg.Definitions(sensors=TICKETS_SENSORS)
