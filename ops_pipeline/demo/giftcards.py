"""The demo's gift-card chapter: a brand and a mall with three tenants (UPI VPAs), three programs, three
distributors and a B2B customer with wallets topped up in the ledger and program assignments, then
thousands of vouchers distributed through the `voucher_distribution` job (run by the real worker; one job
refused because the customer's wallet is short), some of them redeemed and some expired.

`run_giftcards` returns what it made (`GiftCardWorld`), so that later chapters can continue the story:
they are the hooks of `LATER_CHAPTERS`, run in that order with the world (see its comment).

Running it again on the same OPS_HOME finds the records and the vouchers and distributes nothing again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ops_pipeline.demo.giftcard_invoices import run_invoices
from ops_pipeline.demo.giftcard_obligations import run_obligations
from ops_pipeline.demo.giftcard_portal import run_portal
from ops_pipeline.errors import NotFound
from ops_pipeline.giftcards import assignments, kinds, records, vouchers
from ops_pipeline.giftcards.kinds import PARTIES, PRINCIPALS, PROGRAMS
from ops_pipeline.jobqueue import service
from ops_pipeline.jobqueue.worker import run_pool
from ops_pipeline.ledger import adjustments
from ops_pipeline.workspace import Workspace

ACTOR = "demo-asha"  # ops, who keeps the records
BRAND, MALL = "BR-KETTLE", "MALL-PHOENIX"
TENANTS = (("T-PHX-BOOKS", "Leaf & Spine Books", "G-04", ("leafspine.g04@okaxis", "leafspine@ybl")),
           ("T-PHX-SHOES", "Stride Shoes", "F-11", ("strideshoes.f11@okhdfc",)),
           ("T-PHX-CAFE", "Roast Republic", "G-19", ("roastrepublic@oksbi", "roast.g19@paytm")))
BANK = {"account_holder": "{name}", "account_number": "{number}", "ifsc": "HDFC0000123"}
PROGRAMS_MADE = (
    ("GC-KETTLE-CLASSIC", "Kettle & Co Classic Card", (BRAND,),
     {"denominations": ["250.00", "500.00", "1000.00"]}, [{"kind": "percent", "percent": "2.5"}]),
    ("GC-PHOENIX-FESTIVE", "Phoenix Mall Festive Card", tuple(t[0] for t in TENANTS),
     {"denominations": ["500.00", "1000.00", "2000.00"]}, [{"kind": "flat", "flat_amount": "15.00"}]),
    ("GC-PHOENIX-FLEX", "Phoenix Mall Any-Value Card", tuple(t[0] for t in TENANTS),
     {"min_value": "100.00", "max_value": "5000.00", "issuance_fee_percent": "1.5"},
     [{"kind": "percent", "percent": "3"}]),
)
# party id, kind, name, wallet top-up (INR), {program: discount percent (None: priced with the fee)}
PARTIES_MADE = (
    ("D-ZENITH", "distributor", "Zenith Gifting Pvt Ltd", "900000.00",
     {"GC-KETTLE-CLASSIC": "4", "GC-PHOENIX-FESTIVE": "3"}),
    ("D-GIFTHUB", "distributor", "GiftHub Retail LLP", "700000.00",
     {"GC-PHOENIX-FESTIVE": "2.5", "GC-PHOENIX-FLEX": None}),
    ("D-CARDKART", "distributor", "CardKart Online", "200000.00", {"GC-KETTLE-CLASSIC": "5"}),
    ("C-ACME", "customer", "Acme Industries (employee rewards)", "450000.00", {"GC-PHOENIX-FLEX": "1"}),
)
# party, program, face value, count: one voucher_distribution job each; the last is refused (wallet short)
DISTRIBUTIONS = (
    ("D-ZENITH", "GC-KETTLE-CLASSIC", "500.00", 1000),
    ("D-ZENITH", "GC-PHOENIX-FESTIVE", "1000.00", 400),
    ("D-GIFTHUB", "GC-PHOENIX-FESTIVE", "500.00", 800),
    ("D-GIFTHUB", "GC-PHOENIX-FLEX", "750.00", 300),
    ("D-CARDKART", "GC-KETTLE-CLASSIC", "250.00", 600),
    ("C-ACME", "GC-PHOENIX-FLEX", "2000.00", 200),
    ("C-ACME", "GC-PHOENIX-FLEX", "5000.00", 100),
)
REDEEM_EVERY, EXPIRE_EVERY = 9, 41  # of each party's vouchers in id order: every 9th redeemed, 41st expired


@dataclass(frozen=True)
class GiftCardWorld:
    """What the chapter made, for the chapters after it."""

    brand_id: str
    mall_id: str
    tenant_ids: tuple[str, ...]
    program_ids: tuple[str, ...]
    party_ids: tuple[str, ...]
    business_month: date  # the first day of the month the vouchers were sold in (OPS_TIMEZONE)
    job_ids: tuple[int, ...]  # the voucher_distribution jobs
    vouchers: dict[str, int]  # the chapter's vouchers by status

    @property
    def principal_ids(self) -> tuple[str, ...]:
        return (self.brand_id, self.mall_id, *self.tenant_ids)


Chapter = Callable[[Workspace, GiftCardWorld, Callable[[str], None]], None]
# Hook points, in story order: the lead plugs each later chapter in here (None: not written yet).
# - portal_export_with_discrepancies: a principal's portal export with a few breaks, reconciled (gcrecon)
# - month_of_commissions_and_invoices: the month's commissions and the distributors' invoices (gcfin)
# - principal_obligations: what is owed to each principal, transferred and confirmed (gcpay)
LATER_CHAPTERS: dict[str, Chapter | None] = {
    "portal_export_with_discrepancies": run_portal,
    "month_of_commissions_and_invoices": run_invoices,
    "principal_obligations": run_obligations,
}


def run_giftcards(ws: Workspace, echo: Callable[[str], None]) -> GiftCardWorld:
    """Run the chapter (see the module doc), print what ops look at, then the later chapters; the world."""
    made = _records(ws)
    echo(f"Gift cards: {made} records made (principals {BRAND}, {MALL} with {len(TENANTS)} tenants; "
         f"{len(PROGRAMS_MADE)} programs; {len(PARTIES_MADE)} distributors and customers, wallets topped up)")
    job_ids, outcome = _distribute(ws)
    for line in outcome:
        echo(line)
    by_status, settled = _redeem_and_expire(ws)
    world = GiftCardWorld(
        brand_id=BRAND, mall_id=MALL, tenant_ids=tuple(t[0] for t in TENANTS),
        program_ids=tuple(p[0] for p in PROGRAMS_MADE), party_ids=tuple(p[0] for p in PARTIES_MADE),
        business_month=datetime.now(ws.settings.tz).date().replace(day=1), job_ids=job_ids,
        vouchers=by_status)
    echo(f"  vouchers: {sum(world.vouchers.values()):,} ("
         + ", ".join(f"{n:,} {s}" for s, n in sorted(world.vouchers.items())) + f"); {settled}")
    for party_id in world.party_ids:
        party = kinds.party_with_wallet(ws, party_id)
        echo(f"  wallet {party_id:<10} {party['wallet_balance']:>12} {party['wallet_currency']}")
    for chapter in LATER_CHAPTERS.values():
        if chapter is not None:
            chapter(ws, world, echo)
    return world


def _create(ws: Workspace, kind: records.Kind, data: dict) -> int:
    """Create the record unless it exists (a second run of the demo); 1 if made."""
    try:
        records.get(ws, kind, data[kind.key])
        return 0
    except NotFound:
        records.create(ws, kind, data, ACTOR, reason="demo: gift-card business set up")
        return 1


def _bank(name: str, number: str) -> dict[str, str]:
    return {k: v.format(name=name, number=number) for k, v in BANK.items()}


def _records(ws: Workspace) -> int:
    made = _create(ws, PRINCIPALS, {
        "principal_id": BRAND, "kind": "brand", "name": "Kettle & Co", "category": "Cafes",
        "upi_vpas": ["kettleco@okicici"], "bank_account": _bank("Kettle & Co Pvt Ltd", "50100200300400"),
        "terms": {"commission_percent": "2", "discount_percent": "1", "settlement_days": 2},
        "marketing": [{"title": "Brand kit", "url": "https://kettle.example/brand-kit.pdf"}]})
    made += _create(ws, PRINCIPALS, {"principal_id": MALL, "kind": "mall", "name": "Phoenix Mall",
                                     "bank_account": _bank("Phoenix Mall Estates", "60200300400500")})
    for i, (tenant_id, name, unit, vpas) in enumerate(TENANTS):
        made += _create(ws, PRINCIPALS, {
            "principal_id": tenant_id, "kind": "tenant", "mall_id": MALL, "name": name, "unit": unit,
            "upi_vpas": list(vpas), "bank_account": _bank(name, f"7030040050{i:04d}"),
            "terms": {"commission_percent": "1.5"}})
    for program_id, name, principal_ids, pricing, rules in PROGRAMS_MADE:
        made += _create(ws, PROGRAMS, {
            "program_id": program_id, "name": name, "principal_ids": list(principal_ids), "pricing": pricing,
            "validity_days": 365, "commission_rules": rules,
            "artworks": [{"title": "Card front", "url": f"https://cards.example/{program_id.lower()}.png"}],
            "email_message": f"Your {name} is here.", "terms_and_conditions": "Not redeemable for cash."})
        kinds.set_restriction(ws, program_id, "pushed", ACTOR, "demo: VPA list accepted by the bank")
    starts_on = datetime.now(ws.settings.tz).date().replace(day=1).isoformat()
    for party_id, kind, name, topup, sells in PARTIES_MADE:
        made += _create(ws, PARTIES, {"party_id": party_id, "kind": kind, "name": name})
        adjustments.adjust(ws, party_id, "INR", int(topup.replace(".", "")), f"wallet top-up {party_id}",
                           actor=ACTOR, entry_id=f"demo-gc-topup-{party_id}", entry_type="wallet_topup")
        assigned = {a["program_id"] for a in assignments.list_assignments(ws, party_id=party_id)[0]}
        for program_id, discount in sells.items():
            if program_id not in assigned:
                terms = {"starts_on": starts_on, "discount_percent": discount or "0",
                         "agreement_reference": f"AGR-{party_id}-{program_id}"}
                assignments.assign(ws, {"party_id": party_id, "program_id": program_id, **terms}, ACTOR)
                made += 1
    return made


def _distribute(ws: Workspace) -> tuple[tuple[int, ...], list[str]]:
    """One voucher_distribution job per line of DISTRIBUTIONS, run by two workers; the jobs and what to say.
    On a second run (the parties hold vouchers already) no job is made."""
    if vouchers.list_vouchers(ws, holder_id=PARTIES_MADE[0][0], limit=1)[0]:
        return (), ["  vouchers distributed already (an earlier run): no new job"]
    jobs = []
    for party_id, program_id, face_value, count in DISTRIBUTIONS:
        job, _ = service.create_job(
            ws, type="voucher_distribution", actor=ACTOR,
            attributes={"distributor_id": party_id, "program_id": program_id, "face_value": face_value,
                        "count": count},
            idempotency_key=f"demo:gc:{party_id}:{program_id}:{face_value}")
        jobs.append(job)
    total = run_pool(ws, 2, threading.Event(), 0.2, until_idle=True, types=["voucher_distribution"],
                     name="demo-gc-worker")
    lines = [f"  {len(jobs)} voucher_distribution jobs: {total.completed} completed, {total.failed} failed"]
    for job in jobs:
        done = service.get_job(ws, job.id)
        a = done.attributes
        line = f"  job {done.id:>3}  {a['count']:>5} x {a['face_value']:>8} {a['program_id']:<19} " \
               f"-> {a['distributor_id']:<10} {done.state}"
        lines.append(line + (f": {done.last_error}" if done.last_error else ""))
    return tuple(j.id for j in jobs), lines


def _redeem_and_expire(ws: Workspace) -> tuple[dict[str, int], str]:
    """Every REDEEM_EVERY-th voucher of each party (in id order) redeemed, every EXPIRE_EVERY-th expired
    (those still distributed: a second run moves none); the chapter's vouchers by status after."""
    chosen: dict[str, list[str]] = {"redeemed": [], "expired": []}
    statuses: Counter[str] = Counter()
    for party_id, *_ in PARTIES_MADE:
        after, n = None, 0
        while True:
            found, after = vouchers.list_vouchers(ws, holder_id=party_id, after=after, limit=records.MAX_PAGE)
            for v in found:
                n += 1
                status = "redeemed" if n % REDEEM_EVERY == 0 else "expired" if n % EXPIRE_EVERY == 0 else None
                if status and v["status"] == "distributed":
                    chosen[status].append(v["voucher_id"])
                    statuses[status] += 1
                else:
                    statuses[v["status"]] += 1
            if after is None:
                break
    for status, ids in chosen.items():
        for start in range(0, len(ids), vouchers.MAX_ISSUE):
            vouchers.transition_many(ws, ids[start:start + vouchers.MAX_ISSUE], status, ACTOR,
                                     reason=f"demo: {status} at the principal")
    return dict(statuses), f"{len(chosen['redeemed'])} redeemed and {len(chosen['expired'])} expired now"
