"""Groups and agents over REST: `ops` writes, `analyst` reads; answers are camelCase.

Making an agent available (or adding it) hands it the tickets waiting in its groups; making it unavailable
or deleting it hands its open tickets to the other active agents of each ticket's group. Deleting a group
with open tickets is refused (409) unless `moveTo` names the group that takes them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field, StrictBool

from ops_pipeline.api.auth import require_roles
from ops_pipeline.api.deps import WorkspaceDep
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.models import MAX_ID, Body, Id, IdPath, camel, text
from ops_pipeline.auth import Principal
from ops_pipeline.tickets import agents, groups

router = APIRouter(prefix="/api", tags=["tickets"])
Writer = Annotated[Principal, Depends(require_roles("ops"))]
Reader = Annotated[Principal, Depends(require_roles("ops", "analyst"))]
MOVE_TO = Query(alias="moveTo", ge=1, le=MAX_ID, description="The group taking its open tickets")
AgentId = Annotated[str, Path(min_length=1, max_length=64, description="The agent's id.")]
MAX_GROUPS = 100  # groups of one agent
EMAIL = r"^[^@ ]+@[^ ]*\.[^ ]*$"  # what the domain checks: something@domain.tld, no spaces
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)
READ_ERRORS = error_responses(400, 401, 403, 404)


class CreateGroup(Body):
    name: str = text(128)
    active_status: StrictBool = True


class UpdateGroup(Body):
    name: str | None = text(128, default=None)
    active_status: StrictBool | None = None


class CreateAgent(Body):
    agent_id: str = text(64)
    name: str = text(200)
    email: str = text(320, "An email address.", pattern=EMAIL)
    group_ids: list[Id] = Field(min_length=1, max_length=MAX_GROUPS)
    active_status: StrictBool = True


class UpdateAgent(Body):
    name: str | None = text(200, default=None)
    email: str | None = text(320, "An email address.", default=None, pattern=EMAIL)
    active_status: StrictBool | None = None
    group_ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_GROUPS)


@router.post("/groups", status_code=201, summary="Create a group", responses=WRITE_ERRORS)
def create_group(body: CreateGroup, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(groups.create_group(ws, who.sub, body.name, body.active_status))


@router.get("/groups", summary="Groups", responses=READ_ERRORS)
def list_groups(
    ws: WorkspaceDep, _: Reader, active_status: Annotated[bool | None, Query(alias="activeStatus")] = None
) -> dict[str, Any]:
    return {"groups": camel(groups.list_groups(ws, active_status))}


@router.get("/groups/{group_id:int}", summary="One group", responses=READ_ERRORS)
def get_group(group_id: IdPath, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(groups.get_group(ws, group_id))


@router.patch("/groups/{group_id:int}", summary="Rename or (de)activate a group", responses=WRITE_ERRORS)
def update_group(group_id: IdPath, body: UpdateGroup, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(groups.update_group(ws, who.sub, group_id, body.model_dump(exclude_unset=True)))


@router.delete("/groups/{group_id:int}", summary="Delete a group", responses=WRITE_ERRORS)
def delete_group(
    group_id: IdPath,
    ws: WorkspaceDep,
    who: Writer,
    move_to: Annotated[int | None, MOVE_TO] = None,
) -> dict[str, Any]:
    return camel(groups.delete_group(ws, who.sub, group_id, move_to))


@router.post("/agents", status_code=201, summary="Add an agent to groups", responses=WRITE_ERRORS)
def create_agent(body: CreateAgent, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(agents.create_agent(ws, who.sub, body.agent_id, body.name, body.email, body.group_ids,
                                     body.active_status))


@router.get("/agents", summary="Agents with their counters", responses=READ_ERRORS)
def list_agents(
    ws: WorkspaceDep,
    _: Reader,
    group_id: Annotated[int | None, Query(alias="groupId", ge=1, le=MAX_ID)] = None,
    active_status: Annotated[bool | None, Query(alias="activeStatus")] = None,
) -> dict[str, Any]:
    return {"agents": camel(agents.list_agents(ws, group_id, active_status))}


@router.get("/agents/{agent_id}", summary="One agent with its counters", responses=READ_ERRORS)
def get_agent(agent_id: AgentId, ws: WorkspaceDep, _: Reader) -> dict[str, Any]:
    return camel(agents.get_agent(ws, agent_id))


@router.patch("/agents/{agent_id}", summary="Change availability, groups, name or email",
              responses=WRITE_ERRORS)
def update_agent(agent_id: AgentId, body: UpdateAgent, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(agents.update_agent(ws, who.sub, agent_id, body.model_dump(exclude_unset=True)))


@router.delete("/agents/{agent_id}", summary="Delete an agent", responses=WRITE_ERRORS)
def delete_agent(agent_id: AgentId, ws: WorkspaceDep, who: Writer) -> dict[str, Any]:
    return camel(agents.delete_agent(ws, who.sub, agent_id))
