"""Ticketing: work that needs a person, assigned fairly to the available agents of a team, with audit.

`groups`, `agents` and `tickets` hold the operations (workspace first, domain errors of
`ops_pipeline.errors`); `assign` holds the rule and the assignment history; `sources` opens tickets for
failed jobs, manual jobs and failed Dagster runs.
"""
