"""The demo's G2P chapter: a benefit program and a partner key, an envelope of today's cash transfers sent
in two batches through the same core functions as the Partner API, every pipeline step run against the
sandbox mapper and sponsor bank (some addresses unresolvable, some payments failed by the bank), then the
bank's statement of the day, with a payment sent back and a line listed twice, reconciled.

Running it again on the same OPS_HOME the same day finds today's envelope and changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from ops_pipeline.db.schema import g2p_disbursements
from ops_pipeline.disbursements import batches, envelopes, partner_keys, programs, recon, statements
from ops_pipeline.disbursements.pipeline import STEPS, run_step
from ops_pipeline.ledger.balances import get_balances
from ops_pipeline.ledger.entries import Entry, post_entries
from ops_pipeline.money import to_major, to_minor
from ops_pipeline.partners.clients import sandbox
from ops_pipeline.workspace import Workspace

PROGRAM, ACCOUNT, CURRENCY = "DEMO-CT", "G2P-SPONSOR-0001", "KES"
PARTNER = "demo-mis"
ACTOR = f"partner:{PARTNER}"
FUNDING = "100000000.00"  # the sponsor account and its ledger mirror, funded once
FAIL_SHARE = 0.02
UNLINKED_EVERY = 97  # the mapper knows no FA for these beneficiaries
BAD_FA_EVERY = 211  # the mapper answers an FA in no known form


def run_disbursements(ws: Workspace, echo: Callable[[str], None], beneficiaries: int = 2_000) -> None:
    """Run the chapter (see the module doc) and print what a program officer looks at."""
    sim = sandbox(ws.settings)
    _setup(ws, sim, echo)
    today = envelopes.today(ws)
    cycle = f"DEMO-{today}"
    env = next((e for e in envelopes.list_envelopes(ws, PROGRAM, limit=1000)
                if e.cycle_code == cycle and not e.cancelled), None)
    if env is None:
        env = _send_envelope(ws, sim, cycle, today, beneficiaries)
        echo(f"  envelope {env.id}: {env.declared_count:,} disbursements of "
             f"{to_major(env.declared_amount_minor, CURRENCY)} {CURRENCY} due {today}, sent in 2 batches")
    else:
        echo(f"  envelope {env.id} of {today} already sent")
    sim.set_fail_share(FAIL_SHARE)
    ran = [run_step(ws, step, worker="demo", limit=100) for step in STEPS]
    echo("  steps: " + ", ".join(f"{r.step} {r.processed}/{r.claimed}" for r in ran))
    shipped = _paid_today(sim, env.id, ws)
    if shipped and not any(p.get("status") == "returned" for p in _payments(sim, shipped)):
        sim.reverse_payment(shipped[0], "ACCOUNT_CLOSED")
        sim.list_twice(shipped[1])
    if shipped:
        data = sim.sponsor_statement(ACCOUNT, booked=date.today()).encode()
        outcome = statements.accept(ws, data, f"{ACCOUNT}-{today}.sta", ACTOR)
        echo(f"  sponsor statement of {today}: {outcome.entries:,} entries, {outcome.remittances:,} "
             f"remittances, {outcome.reversals} reversal, {outcome.exceptions} exception")
        for x in recon.exceptions(ws, outcome.statement_id):
            echo(f"    {x.error_code}: {x.detail}")
    _print_status(ws, env.id, echo)


def _setup(ws: Workspace, sim, echo: Callable[[str], None]) -> None:
    """The program, the partner's key, the sponsor account and its ledger mirror: each made once."""
    if not any(p.mnemonic == PROGRAM for p in programs.list_programs(ws)):
        programs.add_program(ws, mnemonic=PROGRAM, name="Demo cash transfer", sponsor_bank_code="EXB",
                             sponsor_account=ACCOUNT, currency=CURRENCY, actor="demo")
    key_file = ws.settings.home / "demo" / f"{PARTNER}.key.pem"
    if not partner_keys.list_keys(ws, PARTNER):
        key = ec.generate_private_key(ec.SECP256R1())
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        partner_keys.add_key(ws, PARTNER, "ES256", public, "demo")
    if ACCOUNT not in sim.state().get("g2p_accounts", {}):
        sim.open_account(ACCOUNT, CURRENCY, FUNDING)
    post_entries(ws, [Entry("ADJUSTMENT", "demo-g2p-funding", f"g2p:{PROGRAM}", CURRENCY,
                            to_minor(FUNDING, CURRENCY),
                            "g2p_funding", "sponsor account funded")], ingest_id="demo-g2p-funding")
    echo(f"G2P disbursements: program {PROGRAM} (sponsor account {ACCOUNT}, {CURRENCY}), partner {PARTNER} "
         f"(its ES256 signing key: {key_file})")


def _amount(n: int) -> Decimal:
    return Decimal("1500.00") + Decimal("250.50") * (n % 7)


def fa_of(n: int) -> str:
    """The FA the sandbox mapper answers for beneficiary n, one kind in three (also the benchmark's)."""
    kind = n % 3
    if kind == 0:
        return f"bank_7700{n:06d}_EXB_BR{n % 40:02d}_savings"
    if kind == 1:
        return f"mobile_2547{n:08d}_mpesa"
    return f"email_ben{n}@example.org_gmail"


def _send_envelope(ws: Workspace, sim, cycle: str, today: date, count: int) -> envelopes.Envelope:
    """The envelope and its two batches, as the partner's MIS sends them; the mapper linked first."""
    ids = [f"DEMO-BEN-{n:06d}" for n in range(count)]
    sim.link_fas({b: ("bank_12_x" if n % BAD_FA_EVERY == 5 else fa_of(n), f"Beneficiary {n}")
                  for n, b in enumerate(ids) if n % UNLINKED_EVERY != 3})
    total = sum(_amount(n) for n in range(count))
    env = envelopes.create_envelope(ws, program=PROGRAM, frequency="Monthly", cycle_code=cycle,
                                    beneficiaries=count, disbursements=count, total=str(total),
                                    schedule_date=today, actor=ACTOR)
    half = count // 2
    for part, (lo, hi) in enumerate(((0, half), (half, count)), 1):
        items = [batches.Item(env.id, ids[n], f"Beneficiary {n}", str(_amount(n)), f"{cycle} transfer")
                 for n in range(lo, hi)]
        batches.create_disbursements(ws, items, actor=ACTOR, message_id=f"{cycle}-batch-{part}")
    return envelopes.envelope_status(ws, env.id).envelope


def _payments(sim, references: list[str]) -> list[dict]:
    payments = sim.state().get("g2p_payments", {})
    return [payments[r] for r in references if r in payments]


def _paid_today(sim, envelope_id: str, ws: Workspace) -> list[str]:
    """The envelope's disbursements the bank paid (or paid and sent back), in id order."""
    d = g2p_disbursements.c
    with ws.read_engine.connect() as conn:
        ids = conn.execute(select(d.id).where(d.envelope_id == envelope_id).order_by(d.id)).scalars().all()
    payments = sim.state().get("g2p_payments", {})
    return [i for i in ids if payments.get(i, {}).get("status") in ("paid", "returned")]


def _print_status(ws: Workspace, envelope_id: str, echo: Callable[[str], None]) -> None:
    d = g2p_disbursements.c
    with ws.read_engine.connect() as conn:
        found = conn.execute(select(d.status, func.count(), func.sum(d.amount_minor))
                             .where(d.envelope_id == envelope_id).group_by(d.status).order_by(d.status)).all()
        reasons = Counter(dict(conn.execute(
            select(d.latest_error, func.count()).where(d.envelope_id == envelope_id, d.status == "FAILED")
            .group_by(d.latest_error)).all()))
    echo("  disbursements by status: " + ", ".join(
        f"{s} {n:,} ({to_major(int(m), CURRENCY)} {CURRENCY})" for s, n, m in found))
    if reasons:
        echo("  failed by the bank: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
    env = envelopes.envelope_status(ws, envelope_id).envelope
    (balance,) = get_balances(ws, f"g2p:{PROGRAM}", CURRENCY)
    pending = env.shipped_count - env.reconciled_count - env.reversed_count
    echo(f"  envelope counters: shipped {env.shipped_count:,} = reconciled {env.reconciled_count:,} + "
         f"reversed {env.reversed_count} + pending {pending}; "
         f"ledger g2p:{PROGRAM} settled {to_major(balance.settled_minor, CURRENCY)} {CURRENCY}")
    echo(f"  .venv/bin/ops-pipeline disbursements envelope {envelope_id}")
