"""Manual jobs: work a person does. Workers never claim them; a person completes them through the service
(a ticket will be opened for each once ticketing exists)."""

from __future__ import annotations

from pydantic import Field

from ops_pipeline.jobqueue.jobtypes.base import JobType
from ops_pipeline.jobqueue.jobtypes.fields import Name, Strict, Text


class Manual(Strict):
    title: Name
    description: Text | None = Field(None, description="What to do, with any context the person needs")


MANUAL = JobType(
    name="manual",
    model=Manual,
    example={
        "title": "Call the bank about deposit UTR2026112100001",
        "description": "Not visible yet; ask the branch.",
    },
    description="A special case a person handles, then completes through the API.",
    max_attempts=1,
)
