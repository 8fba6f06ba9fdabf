"""Bank statement intake: MT940 and camt.053 files into `bank_statement_entries`, exact and once."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from ops_pipeline.api.app import create_app
from ops_pipeline.audit import history
from ops_pipeline.auth import mint_token
from ops_pipeline.errors import InvalidInput
from ops_pipeline.partners.app import serving
from ops_pipeline.partners.simulator import Simulator
from ops_pipeline.statements.intake import detect, load_statement, parse
from ops_pipeline.statements.landing import landing_dir
from resources.ops import OpsResource
from sensors.statements import statement_landing_sensor

MT940 = """\
:20:STMT-0001
:25:NL91ABNA0417164300
:28C:00001/001
:60F:C261201EUR1000,00
:61:2612011201D12,34NTRFPO-1//BANKREF1
:86:/EREF/payout-0001/REMI/fund-out
:61:2612021202C0,5NTRFNONREF//B2
:86:refund received
:61:2612031203RD12,34NTRFPO-1
:20:STMT-0002
:25:JP-ACCOUNT-1
:28C:00002/001
:60F:C261201JPY0,
:61:261201D1500,NTRFJP-1
:62F:D261201JPY1500,
"""

CAMT = """\
<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <Stmt>
   <Id>CAMT-1</Id>
   <Acct><Id><IBAN>BH67BMAG00001299123456</IBAN></Id></Acct>
   <Ntry>
    <NtryRef>E1</NtryRef><Amt Ccy="BHD">1.234</Amt><CdtDbtInd>DBIT</CdtDbtInd>
    <BookgDt><Dt>2026-12-01</Dt></BookgDt><ValDt><Dt>2026-12-02</Dt></ValDt><AcctSvcrRef>BANK-1</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>payout-0002</EndToEndId></Refs>
     <RmtInf><Ustrd>fund-out</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <NtryRef>E2</NtryRef><Amt Ccy="BHD">1.234</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd>
    <BookgDt><Dt>2026-12-03</Dt></BookgDt><AcctSvcrRef>BANK-2</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>payout-0002</EndToEndId></Refs></TxDtls></NtryDtls>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
"""

COLUMNS = ("statement_ref", "account", "sequence", "entry_date", "value_date", "amount_minor", "currency",
           "direction", "customer_reference", "bank_reference", "entry_reference", "details")


def rows(ws, where: str = "true") -> list[tuple]:
    con = duckdb.connect()
    try:
        view = ws.lake.relation(con, "bank_statement_entries")
        return con.sql(f"SELECT {', '.join(COLUMNS)} FROM {view} WHERE {where} "
                       "ORDER BY statement_id, sequence").fetchall()
    finally:
        con.close()


def refused(data: str | bytes) -> str:
    with pytest.raises(InvalidInput) as exc:
        raw = data.encode() if isinstance(data, str) else data
        parse(raw, detect(raw))
    return str(exc.value)


def test_mt940_entries_land_exact_with_direction_references_and_the_86_information(ws):
    r = load_statement(ws, MT940.encode(), "stmt.sta", "tester")
    assert (r.format, r.entries, r.already_loaded) == ("mt940", 4, False)
    d = date
    assert rows(ws) == [
        ("STMT-0001", "NL91ABNA0417164300", 1, d(2026, 12, 1), d(2026, 12, 1), 1234, "EUR", "D", "payout-0001",
         "BANKREF1", None, "/EREF/payout-0001/REMI/fund-out"),
        ("STMT-0001", "NL91ABNA0417164300", 2, d(2026, 12, 2), d(2026, 12, 2), 50, "EUR", "C", None, "B2", None,
         "refund received"),
        ("STMT-0001", "NL91ABNA0417164300", 3, d(2026, 12, 3), d(2026, 12, 3), 1234, "EUR", "RD", "PO-1", None,
         None, None),
        ("STMT-0002", "JP-ACCOUNT-1", 4, d(2026, 12, 1), d(2026, 12, 1), 1500, "JPY", "D", "JP-1", None, None,
         None),
    ]
    with ws.engine.connect() as conn:
        audit = history(conn, "bank_statement", r.statement_id)
    assert [(a["actor"], a["action"], a["after"]["entries"]) for a in audit] == [("tester", "load", 4)]


def test_camt053_entries_with_a_reversal_and_three_decimal_amounts(ws):
    r = load_statement(ws, CAMT.encode(), "camt.xml", "tester")
    assert (r.format, r.entries) == ("camt053", 2)
    d = date
    assert rows(ws) == [
        ("CAMT-1", "BH67BMAG00001299123456", 1, d(2026, 12, 1), d(2026, 12, 2), 1234, "BHD", "D", "payout-0002",
         "BANK-1", "E1", "fund-out"),
        ("CAMT-1", "BH67BMAG00001299123456", 2, d(2026, 12, 3), d(2026, 12, 3), 1234, "BHD", "RD",
         "payout-0002", "BANK-2", "E2", None),
    ]


def test_the_same_statement_loaded_twice_is_a_no_op(ws):
    first = load_statement(ws, CAMT.encode(), "camt.xml", "tester")
    again = load_statement(ws, CAMT.encode(), "renamed.xml", "tester")
    assert (again.statement_id, again.already_loaded, again.entries) == (first.statement_id, True, 0)
    assert len(rows(ws)) == 2
    with ws.engine.connect() as conn:
        assert len(history(conn, "bank_statement", first.statement_id)) == 1


@pytest.mark.parametrize(("old", "new", "message"), [
    ("D12,34NTRF", "D12,3,4NTRF", "line 5: :61: amount: '12,3,4NTRFPO-1//' is not valid"),
    ("D12,34NTRF", "X12,34NTRF", "line 5: :61: debit/credit mark: 'X12,34NTRFPO-1//' is not valid"),
    ("D12,34NTRF", "D12,345NTRF", "line 5: :61: amount: '12.345' has 3 decimals, EUR allows 2"),
    (":60F:C261201EUR", ":60F:C26120XEUR", "line 4: :60F: 'C26120XEUR1000,00' is not valid"),
    (":61:261201D1500,", ":61:261201D1500,5", "line 14: :61: amount: '1500.5' has 1 decimals, JPY allows 0"),
])
def test_a_malformed_mt940_is_refused_naming_the_line_and_field(old, new, message):
    assert refused(MT940.replace(old, new, 1)) == message


@pytest.mark.parametrize(("old", "new", "message"), [
    ('<Amt Ccy="BHD">1.234</Amt>', "", "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/Amt: is missing"),
    ('<Amt Ccy="BHD">1.234</Amt>', '<Amt Ccy="BHD">1.2345</Amt>',
     "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/Amt: '1.2345' has 4 decimals, BHD allows 3"),
    ('<Amt Ccy="BHD">1.234</Amt>', '<Amt Ccy="XXY">1</Amt>',
     "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/Amt@Ccy: 'XXY' is not an ISO 4217 currency"),
    ("<CdtDbtInd>DBIT</CdtDbtInd>", "<CdtDbtInd>OUT</CdtDbtInd>",
     "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/CdtDbtInd: 'OUT' is not DBIT or CRDT"),
    ("<Dt>2026-12-01</Dt>", "<Dt>2026-13-01</Dt>",
     "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/BookgDt/Dt: '2026-13-01' is not a date"),
    ("<Id>CAMT-1</Id>", "", "Document/BkToCstmrStmt/Stmt[1]/Id: is missing"),
    ("camt.053.001.08", "camt.052.001.08", "Document: root element "
     "'{urn:iso:std:iso:20022:tech:xsd:camt.052.001.08}Document' is not a camt.053 Document"),
    ("</Document>", "</Documen>", "line 20: not well-formed XML (mismatched tag)"),
])
def test_a_malformed_camt053_is_refused_naming_the_element(old, new, message):
    assert refused(CAMT.replace(old, new, 1)) == message


def test_xml_with_a_doctype_or_entity_is_refused_before_any_expansion():
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&lol2;</Document>')
    assert refused(bomb) == "line 2: DOCTYPE and ENTITY declarations are refused"


def test_anything_else_is_refused():
    assert refused(b"id,amount\n1,2\n").startswith("file: neither MT940")
    assert refused(":21:X\n") == "line 1: :20: no statement found (an MT940 statement starts with :20:)"
    assert refused(b":20:X\n:86:\xff\n") == "line 2: not UTF-8 text"


@pytest.mark.parametrize("fmt", ["mt940", "camt053"])
def test_the_bank_simulator_statement_of_its_payouts_loads_back_equal_to_the_payouts(ws, fmt):
    sim = Simulator()
    items = [{"business_id": "b1", "reference": "8a0c3c1e-5b7e-4d4e-9f61-1f0d2b7a9c01", "amount": "12.30",
              "currency": "EUR"},
             {"business_id": "b2", "reference": "payout-jpy", "amount": "1500", "currency": "JPY"},
             {"business_id": "b3", "reference": "payout-bhd", "amount": "7.005", "currency": "BHD"}]
    with serving(sim) as url:
        paid = httpx.post(f"{url}/payouts/batch", json={"items": items}).json()["items"]
        reply = httpx.get(f"{url}/statements/{fmt}")
        assert httpx.get(f"{url}/statements/pdf").status_code == 404
    assert reply.status_code == 200
    r = load_statement(ws, reply.json()["content"].encode(), f"sim.{fmt}", "tester")
    assert (r.format, r.entries) == (fmt, 3)
    got = {(row[6], row[5], row[7], row[8], row[9]) for row in rows(ws)}
    assert got == {("EUR", 1230, "D", items[0]["reference"], paid[0]["payout_id"]),
                   ("JPY", 1500, "D", "payout-jpy", paid[1]["payout_id"]),
                   ("BHD", 7005, "D", "payout-bhd", paid[2]["payout_id"])}
    assert sim.statement(fmt) == reply.json()["content"]


def test_cli_loads_a_file_once_and_refuses_a_malformed_one_in_one_line(tmp_path, db_url):
    cli = str(Path(sys.executable).with_name("ops-pipeline"))
    env = {**os.environ, "OPS_HOME": str(tmp_path / "home"), "OPS_DATABASE_URL": db_url}
    good, bad = tmp_path / "good.sta", tmp_path / "bad.sta"
    good.write_text(MT940)
    bad.write_text(MT940.replace("D12,34NTRF", "D12,3,4NTRF"))

    def run(path, code):
        p = subprocess.run([cli, "statements", "load", str(path)], env=env, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == code, (p.stdout, p.stderr)
        return p.stdout + p.stderr

    assert run(good, 0).endswith(", 4 entries loaded\n")
    assert run(good, 0).endswith("already loaded, nothing to do\n")
    assert run(bad, 1) == "error: line 5: :61: amount: '12,3,4NTRFPO-1//' is not valid\n"
    assert run(tmp_path / "missing.sta", 1) == (
        f"error: file: {str(tmp_path / 'missing.sta')!r} cannot be read (No such file or directory)\n")


def test_the_landing_sensor_loads_and_archives_files_and_sets_a_refused_one_aside(sqlite_ws):
    folder = landing_dir(sqlite_ws.settings)
    assert folder.is_dir()  # made by Workspace.init
    (folder / "a.sta").write_text(MT940)
    (folder / "b.xml").write_text(CAMT)
    (folder / "c.sta").write_text(MT940.replace("D12,34NTRF", "D12,3,4NTRF"))
    (folder / ".partial").write_text("being written")
    ops = OpsResource(ops_home=str(sqlite_ws.home))
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance,
                                                                     resources={"ops": ops}) as context:
        result = statement_landing_sensor(context)
        assert result.skip_message == "loaded 2 statement file(s) (6 entries), 0 already loaded, 1 refused"
        assert statement_landing_sensor(context).skip_message == (
            "loaded 0 statement file(s) (0 entries), 0 already loaded, 0 refused")
    assert sorted(p.name for p in folder.iterdir()) == [".partial"]
    archive = sqlite_ws.settings.landing_dir / "archive" / "statements"
    assert sorted(p.name for p in archive.iterdir()) == ["a.sta", "b.xml", "rejected"]
    assert (archive / "rejected" / "c.sta.error.txt").read_text() == (
        "line 5: :61: amount: '12,3,4NTRFPO-1//' is not valid\n")
    assert len(rows(sqlite_ws)) == 6
    with sqlite_ws.engine.connect() as conn:
        assert history(conn, "bank_statement", load_statement(sqlite_ws, CAMT.encode(), "x", "t").statement_id
                       )[0]["actor"] == "dagster:statement_landing_sensor"


def test_api_upload_answers_201_then_200_and_400_naming_the_line(ws):
    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(ws.settings, role, 'alice')}"}

    def upload(body: str, role: str = "finance"):
        return client.post("/api/statements", files={"file": ("stmt.sta", body.encode())}, headers=auth(role))

    with TestClient(create_app(ws.settings)) as client:
        first = upload(MT940)
        assert first.status_code == 201, first.text
        assert first.json() | {"statementId": None} == {"statementId": None, "fileName": "stmt.sta",
                                                        "format": "mt940", "entries": 4, "alreadyLoaded": False}
        again = upload(MT940, "ops")
        assert (again.status_code, again.json()["entries"], again.json()["alreadyLoaded"]) == (200, 0, True)
        bad = upload(MT940.replace("D12,34NTRF", "D12,3,4NTRF"))
        assert (bad.status_code, bad.json()["error"]) == (400, "line 5: :61: amount: '12,3,4NTRFPO-1//' is not valid")
        assert upload(MT940, "merchant").status_code == 403
        missing = client.post("/api/statements", files={"other": ("x", b"1")}, headers=auth("ops"))
        assert (missing.status_code, missing.json()["error"]) == (
            400, "file: a multipart/form-data field named 'file' is required")
        plain = client.post("/api/statements", content=MT940, headers={**auth("ops"), "Content-Type": "text/plain"})
        assert plain.status_code == 415
        elsewhere = client.post("/api/jobs", files={"file": ("x", b"1")}, headers=auth("ops"))
        assert elsewhere.status_code == 415
        big = client.post("/api/statements", files={"file": ("x", b"x" * (4 * 1024 * 1024 + 1))}, headers=auth("ops"))
        assert big.status_code == 413
    assert len(rows(ws)) == 4
    with ws.engine.connect() as conn:
        assert history(conn, "bank_statement", first.json()["statementId"])[0]["actor"] == "finance:alice"
