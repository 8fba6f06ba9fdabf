"""Ticket files (`tickets create --file`): one core function reads CSV and JSON lines; every bad row ends
with one message naming the file, the row and the field or problem."""

import pytest

from ops_pipeline.errors import InvalidInput, NotFound
from ops_pipeline.tickets import groups
from ops_pipeline.tickets.files import read_tickets, resolve_group


@pytest.fixture
def kyc(sqlite_ws):
    return groups.create_group(sqlite_ws, "test", "KYC")["group_id"]


def test_csv_and_json_lines_give_validated_tickets_with_defaults(sqlite_ws, kyc, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\ufeffgroup,user_id,priority,reference\nKYC,U1,1,R1\n\n1,U2,,\n", encoding="utf-8")
    batch = read_tickets(sqlite_ws, path)
    assert [(t.group_id, t.user_id, t.priority, t.source, t.reference) for t in batch] == [
        (kyc, "U1", 1, "manual", "R1"), (kyc, "U2", 3, "manual", None)]
    path = tmp_path / "t.jsonl"
    path.write_text('{"group_id": 1, "priority": 5, "description": "call back"}\n\n{"group": "KYC"}\n')
    assert [(t.group_id, t.priority, t.description) for t in read_tickets(sqlite_ws, path)] == [
        (kyc, 5, "call back"), (kyc, 3, None)]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("t.csv", 'group,user_id\nKYC,"U1\n', "t.csv: row 1: is not valid CSV (unexpected end of data)"),
    ("t.csv", "group,user_id\nKYC,U1\nKYC,U2,extra\n", "t.csv: row 2: has 3 cells, the header 2"),
    ("t.csv", "group,priorty\nKYC,2\n", "t.csv: row 1: priorty: is not a column; allowed: description, group"),
    ("t.csv", "group,priority\nKYC,\u0663\n", "t.csv: row 1: priority: '\u0663' is not an integer from 1 to 5"),
    ("t.csv", "group,priority\nKYC,9\n", "t.csv: row 1: priority: 9 is not an integer from 1 to 5"),
    ("t.csv", "user_id\nU1\n", "t.csv: row 1: group: is required"),
    ("t.csv", "group\nRisk\n", "t.csv: row 1: group 'Risk': not found"),
    ("t.csv", "group\n99999999999999999999999\n", "t.csv: row 1: group '99999999999999999999999': not found"),
    ("t.csv", "group\n\u0661\n", "t.csv: row 1: group '\u0661': not found"),
    ("t.csv", f"group,user_id\nKYC,{'u' * 129}\n", "t.csv: row 1: userId: is longer than 128 characters"),
    ("t.jsonl", '{"group": "KYC"}\n{"group": "KYC",}\n', "t.jsonl: row 2: is not valid JSON"),
    ("t.jsonl", '["KYC"]\n', "t.jsonl: row 1: is not a JSON object"),
    ("t.jsonl", '{"group": "KYC", "priority": true}\n', "t.jsonl: row 1: priority: True is not an integer"),
])
def test_a_bad_row_is_refused_naming_file_row_and_problem(sqlite_ws, kyc, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        read_tickets(sqlite_ws, path)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_a_file_that_is_not_utf8_is_refused(sqlite_ws, tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"group\n\xff\xfe\n")
    with pytest.raises(InvalidInput, match=r"^t.csv: is not UTF-8 text \(byte 6\)$"):
        read_tickets(sqlite_ws, path)


def test_groups_resolve_by_ascii_id_or_by_name(sqlite_ws, kyc):
    assert resolve_group(sqlite_ws, "KYC") == kyc
    assert resolve_group(sqlite_ws, str(kyc)) == kyc
    with pytest.raises(NotFound, match="group '0': not found"):
        resolve_group(sqlite_ws, "0")
