"""The G2P Bridge Partner API (OpenG2P convention) under `/g2p-bridge/`.

Every endpoint is POST with `{"header": {...}, "message": ...}` and answers 200 with `header.status`
`succ` or `rjct`, `header.status_reason_message` the error code, `message_id` and `action` echoed and
`message_ts` now; a malformed body is a rjct naming the field, never a 500. Security before anything else:
a bearer JWT of role `partner` (401/403) and a detached JWS of the exact body bytes in the `Signature`
header, by a key registered for the token's `sub` (401 `SIGNATURE_REQUIRED` / `INVALID_SIGNATURE`);
`upload_mt940` (a multipart file) needs the token only.
Amounts travel as exact decimal text (numbers are accepted in requests and parsed exactly, never as floats).
A partner sees only the envelopes it created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ops_pipeline.api.auth import Principal, require_roles
from ops_pipeline.api.deps import WorkspaceDep, run_domain
from ops_pipeline.api.errors import error_responses
from ops_pipeline.api.statements import file_part
from ops_pipeline.disbursements import batches, envelopes, recon, statements
from ops_pipeline.disbursements.codes import G2PError
from ops_pipeline.disbursements.partner_keys import verify_body
from ops_pipeline.disbursements.steps import StepState
from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import to_major
from ops_pipeline.workspace import Workspace

PREFIX = "/g2p-bridge"
router = APIRouter(prefix=PREFIX, tags=["g2p-bridge"])
PartnerDep = Annotated[Principal, Depends(require_roles("partner"))]

# Codes of a malformed request (ours; OpenG2P's framework answered those with a 422).
INVALID_REQUEST_BODY = "INVALID_REQUEST_BODY"
INVALID_REQUEST_HEADER = "INVALID_REQUEST_HEADER"
INVALID_MESSAGE_ID = "INVALID_MESSAGE_ID"
INVALID_ACTION = "INVALID_ACTION"
INVALID_REQUEST_MESSAGE = "INVALID_REQUEST_MESSAGE"


class Malformed(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


def _text(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _money(minor: int, currency: str) -> str:
    return str(to_major(minor, currency))


# -- messages out ------------------------------------------------------------------------------------


def envelope_payload(env: envelopes.Envelope) -> dict:
    return {
        "id": env.id,
        "disbursement_envelope_id": env.id,
        "benefit_program_mnemonic": env.program,
        "disbursement_frequency": env.frequency,
        "cycle_code_mnemonic": env.cycle_code,
        "number_of_beneficiaries": env.declared_beneficiaries,
        "number_of_disbursements": env.declared_count,
        "total_disbursement_amount": _money(env.declared_amount_minor, env.currency),
        "disbursement_currency_code": env.currency,
        "disbursement_schedule_date": env.schedule_date.isoformat(),
        "cancellation_status": "Cancelled" if env.cancelled else "Not_Cancelled",
        "cancellation_timestamp": _text(env.cancelled_at),
    }


def step_payload(s: StepState) -> dict:
    return {
        "step": s.step,
        "status": s.status,
        "attempts": s.attempts,
        "latest_error_code": s.latest_error,
        "lease_until": _text(s.lease_until),
        "timestamp": _text(s.updated_at),
        "processed_timestamp": _text(s.processed_at),
    }


def envelope_status_payload(st: envelopes.EnvelopeStatus) -> dict:
    env, by_step = st.envelope, {s.step: s for s in st.steps}
    check, block = by_step["funds_check"], by_step["funds_block"]
    return {
        "disbursement_envelope_id": env.id,
        "cancellation_status": "Cancelled" if env.cancelled else "Not_Cancelled",
        "number_of_disbursements_received": env.received_count,
        "total_disbursement_amount_received": _money(env.received_amount_minor, env.currency),
        "disbursement_currency_code": env.currency,
        "funds_available_with_bank": env.funds_available,
        "funds_available_latest_timestamp": _text(check.updated_at),
        "funds_available_latest_error_code": check.latest_error,
        "funds_available_attempts": check.attempts,
        "funds_blocked_with_bank": env.funds_blocked,
        "funds_blocked_latest_timestamp": _text(block.updated_at),
        "funds_blocked_latest_error_code": block.latest_error,
        "funds_blocked_attempts": block.attempts,
        "funds_blocked_reference_number": env.funds_block_reference,
        "number_of_disbursements_shipped": env.shipped_count,
        "number_of_disbursements_reconciled": env.reconciled_count,
        "number_of_disbursements_reversed": env.reversed_count,
        "steps": [step_payload(s) for s in st.steps],
    }


def recon_payload(d: batches.Disbursement, r: recon.DisbursementRecon) -> dict:
    """OpenG2P's `disbursement_recon_records`: the remittance (and reversal) entry, and the exceptions."""
    entries = [] if r.remittance_statement_id is None else [{
        "disbursement_id": d.id,
        "disbursement_envelope_id": d.envelope_id,
        "bank_disbursement_batch_id": d.batch_id,
        "remittance_reference_number": r.remittance_bank_reference,
        "remittance_statement_id": r.remittance_statement_id,
        "remittance_entry_sequence": r.remittance_entry_sequence,
        "remittance_entry_date": _text(r.remittance_entry_date),
        "remittance_value_date": _text(r.remittance_value_date),
        "reversal_found": r.reversal_statement_id is not None,
        "reversal_statement_id": r.reversal_statement_id,
        "reversal_entry_sequence": r.reversal_entry_sequence,
        "reversal_entry_date": _text(r.reversal_entry_date),
        "reversal_value_date": _text(r.reversal_value_date),
        "reversal_reason": r.reversal_reason,
    }]
    errors = [{
        "statement_id": x.statement_id,
        "entry_sequence": x.entry_sequence,
        "entry_date": _text(x.entry_date),
        "value_date": _text(x.value_date),
        "error_reason": x.error_code,
        "error_detail": x.detail,
        "disbursement_id": x.disbursement_id,
        "bank_reference_number": x.bank_reference,
    } for x in r.exceptions]
    return {"disbursement_recon_payloads": entries, "disbursement_error_recon_payloads": errors}


def disbursement_payload(d: batches.Disbursement, currency: str) -> dict:
    return {
        "disbursement_id": d.id,
        "disbursement_envelope_id": d.envelope_id,
        "disbursement_batch_control_id": d.batch_id,
        "beneficiary_id": d.beneficiary_id,
        "beneficiary_name": d.beneficiary_name,
        "disbursement_amount": _money(d.amount_minor, currency),
        "narrative": d.narrative,
        "mis_reference_number": d.mis_reference,
        "receipt_time_stamp": _text(d.received_at),
        "cancellation_status": "CANCELLED" if d.cancelled else "NOT_CANCELLED",
        "cancellation_time_stamp": _text(d.cancelled_at),
        "status": d.status,
        "latest_error_code": d.latest_error,
        "shipped_time_stamp": _text(d.shipped_at),
        "reconciled_time_stamp": _text(d.reconciled_at),
        "reversal_found": d.reversed_at is not None,
        "reversal_time_stamp": _text(d.reversed_at),
        "reversal_reason": d.reversal_reason,
    }


# -- the endpoints' work (each: workspace, message, actor -> response message) ------------------------


def _object(message: Any) -> dict:
    if not isinstance(message, dict):
        raise Malformed(INVALID_REQUEST_MESSAGE, "message: must be an object")
    return message


def _list(message: Any) -> list:
    if not isinstance(message, list):
        raise Malformed(INVALID_REQUEST_MESSAGE, "message: must be a list")
    return message


def _envelope_id(message: Any) -> Any:
    """The envelope id of a message that is the id itself or an object holding it."""
    return message.get("disbursement_envelope_id") if isinstance(message, dict) else message


def create_envelope(ws: Workspace, message: Any, actor: str, _message_id: str) -> dict:
    m = _object(message)
    return envelope_payload(
        envelopes.create_envelope(
            ws,
            program=m.get("benefit_program_mnemonic"),
            frequency=m.get("disbursement_frequency"),
            cycle_code=m.get("cycle_code_mnemonic"),
            beneficiaries=m.get("number_of_beneficiaries"),
            disbursements=m.get("number_of_disbursements"),
            total=m.get("total_disbursement_amount"),
            schedule_date=m.get("disbursement_schedule_date"),
            currency=m.get("disbursement_currency_code"),
            actor=actor,
        )
    )


def cancel_envelope(ws: Workspace, message: Any, actor: str, _message_id: str) -> dict:
    return envelope_payload(
        envelopes.cancel_envelope(ws, _envelope_id(_object(message)), actor=actor, owner=actor)
    )


def amend_envelope(ws: Workspace, message: Any, actor: str, _message_id: str) -> dict:
    m = _object(message)
    return envelope_payload(
        envelopes.amend_envelope(
            ws,
            m.get("disbursement_envelope_id"),
            beneficiaries=m.get("number_of_beneficiaries"),
            disbursements=m.get("number_of_disbursements"),
            total=m.get("total_disbursement_amount"),
            schedule_date=m.get("disbursement_schedule_date"),
            actor=actor,
            owner=actor,
        )
    )


def _item(raw: Any) -> batches.Item:
    m = raw if isinstance(raw, dict) else {}
    return batches.Item(
        m.get("disbursement_envelope_id"),
        m.get("beneficiary_id"),
        m.get("beneficiary_name"),
        m.get("disbursement_amount"),
        m.get("narrative"),
        m.get("mis_reference_number"),
    )


def create_disbursements(ws: Workspace, message: Any, actor: str, message_id: str) -> list:
    items = _list(message)
    batch = batches.create_disbursements(
        ws, [_item(i) for i in items], actor=actor, owner=actor, message_id=message_id
    )
    return [
        {
            **item,
            "disbursement_id": d,
            "disbursement_envelope_id": batch.envelope_id,
            "disbursement_batch_control_id": batch.id,
            "response_error_codes": [],
        }
        for item, d in zip(items, batch.disbursement_ids, strict=True)
    ]


def _disbursement_id(raw: Any) -> Any:
    return raw.get("disbursement_id") if isinstance(raw, dict) else raw


def cancel_disbursements(ws: Workspace, message: Any, actor: str, _message_id: str) -> list:
    items = _list(message)
    batches.cancel_disbursements(ws, [_disbursement_id(i) for i in items], actor=actor, owner=actor)
    return [
        {
            **(i if isinstance(i, dict) else {"disbursement_id": i}),
            "cancellation_status": "CANCELLED",
            "response_error_codes": [],
        }
        for i in items
    ]


def disbursement_status(ws: Workspace, message: Any, actor: str, _message_id: str) -> list:
    found = batches.disbursement_status(ws, [_disbursement_id(i) for i in _list(message)], owner=actor)
    currencies = {
        e: envelopes.envelope_status(ws, e).envelope.currency for e in {d.envelope_id for d in found}
    }
    recons = recon.disbursement_recons(ws, [d.id for d in found])
    return [{**disbursement_payload(d, currencies[d.envelope_id]),
             "disbursement_recon_records": recon_payload(d, recons[d.id])} for d in found]


def batch_control(ws: Workspace, message: Any, actor: str, _message_id: str) -> dict:
    batch_id = message.get("disbursement_batch_control_id") if isinstance(message, dict) else message
    bc = batches.batch_control(ws, batch_id, owner=actor)
    currency = envelopes.envelope_status(ws, bc.envelope_id).envelope.currency
    return {
        "disbursement_batch_control_id": bc.batch_id,
        "disbursement_envelope_id": bc.envelope_id,
        "number_of_disbursements": bc.count,
        "total_disbursement_amount": _money(bc.amount_minor, currency),
        "created_time_stamp": _text(bc.created_at),
        "steps": [step_payload(s) for s in bc.steps],
    }


def envelope_status(ws: Workspace, message: Any, actor: str, _message_id: str) -> dict:
    return envelope_status_payload(envelopes.envelope_status(ws, _envelope_id(message), owner=actor))


# -- the convention ----------------------------------------------------------------------------------


def _rejected_message(message: Any, exc: G2PError) -> Any:
    """On rjct: `{}` for an object message; a list message echoed with each item's error codes."""
    if not isinstance(message, list):
        return {}
    codes = exc.item_codes or [[] for _ in message]
    return [
        {**(i if isinstance(i, dict) else {"value": i}), "response_error_codes": c}
        for i, c in zip(message, codes, strict=False)
    ]


def _answer(
    header: dict, status: str, code: str | None = None, detail: str | None = None, message: Any = None
) -> Response:
    out = {
        "message_id": header.get("message_id"),
        "message_ts": datetime.now(UTC).isoformat(),
        "action": header.get("action"),
        "status": status,
        "status_reason_message": code,
    }
    if detail:
        out["status_reason_detail"] = detail
    content = {"header": out, "message": {} if message is None else message}
    return Response(json.dumps(content, default=_exact), media_type="application/json")


def _exact(value: Any) -> str:
    """Decimals of an echoed request as exact text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _parse(body: bytes) -> tuple[dict, Any]:
    """(header, message) of a request body, or Malformed naming what is wrong."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise Malformed(INVALID_REQUEST_BODY, "body: not JSON") from None
    if not isinstance(data, dict):
        raise Malformed(INVALID_REQUEST_BODY, "body: must be an object with header and message")
    header = data.get("header")
    if not isinstance(header, dict):
        raise Malformed(INVALID_REQUEST_HEADER, "header: must be an object")
    message_id, action = header.get("message_id"), header.get("action")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > 128:
        raise Malformed(
            INVALID_MESSAGE_ID, "header.message_id: must be a non-empty text of at most 128 characters"
        )
    if action is not None and (not isinstance(action, str) or len(action) > 64):
        raise Malformed(INVALID_ACTION, "header.action: must be a text of at most 64 characters")
    if "message" not in data:
        raise Malformed(INVALID_REQUEST_MESSAGE, "message: is required")
    return header, data["message"]


def _echoable(body: bytes) -> dict:
    """What of the request header can be echoed on a rjct of a malformed body."""
    try:
        header = json.loads(body).get("header")
        return {k: header[k] for k in ("message_id", "action") if isinstance(header.get(k), str)}
    except (ValueError, RecursionError, AttributeError, TypeError):
        return {}


async def _handle(request: Request, ws: Workspace, who: Principal, work: Callable[..., Any]) -> Response:
    body = await request.body()
    await run_domain(request, verify_body, ws, who.sub, request.headers.get("signature"), body)
    try:
        header, message = _parse(body)
    except Malformed as exc:
        return _answer(_echoable(body), "rjct", exc.code, str(exc))
    actor = f"partner:{who.sub}"
    try:
        result = await run_domain(request, work, ws, message, actor, header["message_id"])
    except Malformed as exc:
        return _answer(header, "rjct", exc.code, str(exc))
    except G2PError as exc:
        return _answer(header, "rjct", exc.code, str(exc), _rejected_message(message, exc))
    return _answer(header, "succ", message=result)


_OPENAPI = {
    "parameters": [
        {
            "name": "Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Detached JWS (RFC 7797, b64=false; RS256 or ES256) of the exact body bytes, "
            "`<protected header>..<signature>`.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["header", "message"],
                    "properties": {
                        "header": {
                            "type": "object",
                            "required": ["message_id"],
                            "properties": {
                                "message_id": {"type": "string", "maxLength": 128},
                                "message_ts": {"type": "string"},
                                "action": {"type": "string", "maxLength": 64},
                            },
                        },
                        "message": {},
                    },
                }
            }
        },
    },
}


def _route(path: str, work: Callable[..., Any], summary: str) -> None:
    async def endpoint(request: Request, ws: WorkspaceDep, who: PartnerDep) -> Response:
        return await _handle(request, ws, who, work)

    endpoint.__name__ = path
    endpoint.__doc__ = summary + ". Answers 200 with header.status succ or rjct (see docs/g2p.md)."
    router.add_api_route(
        f"/{path}",
        endpoint,
        methods=["POST"],
        summary=summary,
        responses=error_responses(401, 403, 413, 415),
        openapi_extra=_OPENAPI,
    )


_route("create_disbursement_envelope", create_envelope, "Create a disbursement envelope")
_route("cancel_disbursement_envelope", cancel_envelope, "Cancel a disbursement envelope")
_route("amend_disbursement_envelope", amend_envelope, "Amend an envelope before its schedule date")
_route("create_disbursements", create_disbursements, "Add disbursements to an envelope (one batch)")
_route("cancel_disbursements", cancel_disbursements, "Cancel disbursements before the schedule date")
_route("get_disbursement_status", disbursement_status, "Status of disbursements")
_route("get_disbursement_batch_control", batch_control, "Status of a batch's steps")
_route("get_disbursement_envelope_status", envelope_status, "Status of an envelope")


@router.post(
    "/upload_mt940",
    summary="Upload a sponsor account statement (MT940 or camt.053)",
    responses=error_responses(401, 403, 413, 415),
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["statement_file"],
        "properties": {"statement_file": {"type": "string", "format": "binary"}}}}}}},
)
async def upload_mt940(request: Request, ws: WorkspaceDep, who: PartnerDep) -> Response:
    """Load and reconcile a statement of a program's sponsor account (multipart field `statement_file`;
    the bearer token only, no body signature). succ with the statement id and its recon counts; rjct
    INVALID_ACCOUNT_NUMBER (nothing written) or STATEMENT_UPLOAD_ERROR naming the line or element at fault."""
    header = {"action": "upload_mt940"}
    try:
        content_type = request.headers.get("content-type", "")
        name, data = file_part(content_type, await request.body(), "statement_file")
        r = await run_domain(request, statements.accept, ws, data, name, f"partner:{who.sub}")
    except (G2PError, InvalidInput) as exc:
        code = exc.code if isinstance(exc, G2PError) else statements.STATEMENT_UPLOAD_ERROR
        return _answer(header, "rjct", code, str(exc), {"statement_id": None, "response_error_code": code})
    return _answer(header, "succ", message={
        "statement_id": r.statement_id, "response_error_code": None, "number_of_entries": r.entries,
        "number_of_remittances": r.remittances, "number_of_reversals": r.reversals,
        "number_of_exceptions": r.exceptions})
