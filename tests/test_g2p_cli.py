"""`ops-pipeline disbursements programs|partner-key|envelopes|envelope` as ops run them (embedded default)."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ops_pipeline.disbursements import envelopes
from ops_pipeline.workspace import Workspace
from tests.conftest import make_settings

CLI = str(Path(sys.executable).with_name("ops-pipeline"))


def run(home, *args, code=0):
    env = {**os.environ, "OPS_HOME": str(home)}
    env.pop("OPS_DATABASE_URL", None)
    p = subprocess.run([CLI, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == code, (p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_programs_partner_keys_and_envelopes_from_the_command_line(tmp_path):
    home = tmp_path / "home"
    args = ["disbursements", "programs", "add", "--mnemonic", "CT1", "--name", "Cash transfer", "--sponsor-bank",
            "EXAMPLE_BANK", "--account", "ACC-1", "--currency"]
    assert run(home, *args, "XYZ", code=1).strip() == "error: currency: 'XYZ' is not an ISO 4217 currency"
    run(home, *args, "KES")
    assert "already configured" in run(home, *args, "KES", code=1)
    listed = json.loads(run(home, "disbursements", "programs", "list", "--format", "json"))
    assert listed == [{"mnemonic": "CT1", "name": "Cash transfer", "sponsor_bank_code": "EXAMPLE_BANK",
                       "sponsor_account": "ACC-1", "currency": "KES", "active": True}]

    key = tmp_path / "mis1.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    run(home, "disbursements", "partner-key", "add", "--partner", "mis1", "--alg", "ES256", "--pem", key)
    assert "RS256 needs an RSA public key" in run(home, "disbursements", "partner-key", "add", "--partner", "mis1",
                                                  "--alg", "RS256", "--pem", key, code=1)
    keys = json.loads(run(home, "disbursements", "partner-key", "list", "--format", "json"))
    assert [(k["partner"], k["alg"], len(k["fingerprint"])) for k in keys] == [("mis1", "ES256", 64)]

    ws = Workspace(make_settings(home))
    env = envelopes.create_envelope(ws, program="CT1", frequency="OnDemand", cycle_code="C1", beneficiaries=2,
                                    disbursements=2, total="10.5",
                                    schedule_date=datetime.now(UTC).date() + timedelta(days=1), actor="partner:mis1")
    ws.close()
    shown = json.loads(run(home, "disbursements", "envelopes", "--format", "json"))
    assert [(e["id"], e["declared_amount"], e["received_count"]) for e in shown] == [(env.id, "10.50", 0)]
    assert "funds_check  PENDING" in run(home, "disbursements", "envelope", env.id)
    one = json.loads(run(home, "disbursements", "envelope", env.id, "--format", "json"))
    assert (one["envelope"]["declared_amount"], [s["step"] for s in one["steps"]]) == (
        "10.50", ["funds_check", "funds_block"])
    assert run(home, "disbursements", "envelope", "nope", code=1).strip() == (
        "error: disbursement_envelope_id: 'nope' is not a UUID")
