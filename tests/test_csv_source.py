"""CsvSource against real files: encodings, line endings, quoting, broken rows."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from pathlib import Path

import pytest

from rostersync.sync.config import CsvSourceConfig
from rostersync.sync.connectors import csv_scan, csv_source
from rostersync.sync.connectors.base import FeedError, RawRecord, RecordError
from rostersync.sync.connectors.csv_source import CsvSource
from rostersync.sync.models import digest_bytes

HEADER = "employee_id,first_name,last_name,status"
COLUMNS = {
    "employee_id": "employee_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "status": "status",
}


def source(path: Path, **overrides) -> CsvSource:
    settings = {"path": path, "columns": COLUMNS} | overrides
    return CsvSource(CsvSourceConfig(**settings))


def write(tmp_path: Path, data: bytes | str, name: str = "employees.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def scan(src: CsvSource) -> list[tuple[str, str]]:
    return [(r.key, r.locator) for r in src.scan_full()]


def test_plain_utf8_records_carry_key_locator_raw_and_digest(tmp_path):
    path = write(tmp_path, f"{HEADER}\nE1,Ana,Smith,active\nE2,José,Müller,leave\n")
    records = list(source(path).scan_full())
    assert [(r.key, r.locator) for r in records] == [
        ("E1", "employees.csv:2"),
        ("E2", "employees.csv:3"),
    ]
    assert records[1].raw == "E2,José,Müller,leave".encode()
    assert all(r.digest == digest_bytes(r.raw) and len(r.digest) == 8 for r in records)


def test_fields_maps_canonical_columns_and_attributes(tmp_path):
    path = write(
        tmp_path,
        "Emp ID,Given,Family,State,Email,Type\n  E1 , Ana ,Smith,active,,contractor\n",
    )
    src = source(
        path,
        columns={
            "employee_id": "Emp ID",
            "first_name": "Given",
            "last_name": "Family",
            "status": "State",
            "email": "Email",
            "department": "Dept",  # not in this export: marked optional
        },
        attributes={"worker_type": "Type"},
        optional_columns=["Dept"],
    )
    (record,) = src.scan_full()
    assert record.key == "E1"
    assert src.fields(record) == {
        "employee_id": "E1",
        "first_name": "Ana",
        "last_name": "Smith",
        "status": "active",
        "email": None,
        "department": None,
        "attributes.worker_type": "contractor",
    }
    assert src.columns_present() == {"employee_id", "first_name", "last_name", "status", "email"}


def test_bom_is_not_part_of_the_first_header(tmp_path):
    body = f"{HEADER}\nE1,Ana,Smith,active\n".encode()
    with_bom = source(write(tmp_path, b"\xef\xbb\xbf" + body, "bom.csv"))
    without = source(write(tmp_path, body, "plain.csv"))
    assert [r.key for r in with_bom.scan_full()] == ["E1"]
    assert [r.digest for r in with_bom.scan_full()] == [r.digest for r in without.scan_full()]


def test_crlf_is_stripped_and_digests_match_lf(tmp_path):
    lf = f"{HEADER}\nE1,Ana,Smith,active\nE2,Bob,Lee,active\n"
    crlf_src = source(write(tmp_path, lf.replace("\n", "\r\n"), "crlf.csv"))
    lf_src = source(write(tmp_path, lf, "lf.csv"))
    crlf = list(crlf_src.scan_full())
    assert [r.raw for r in crlf] == [b"E1,Ana,Smith,active", b"E2,Bob,Lee,active"]
    assert [r.digest for r in crlf] == [r.digest for r in lf_src.scan_full()]
    assert crlf_src.fields(crlf[0])["status"] == "active"


def test_last_line_without_newline_and_with_lone_cr(tmp_path):
    path = write(tmp_path, f"{HEADER}\r\nE1,Ana,Smith,active\r\nE2,Bob,Lee,active\r")
    assert [r.raw for r in source(path).scan_full()][-1] == b"E2,Bob,Lee,active"


def test_quoted_delimiter_doubled_quotes_and_newlines(tmp_path):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        'E1,"Smith, Jr.",Ana,active\n'
        'E2,"Bob ""The Builder""",Lee,active\n'
        'E3,"Multi\nline\nname",Kim,active\n'
        "E4,Dana,Ross,active\n",
    )
    src = source(path)
    records = list(src.scan_full())
    assert [(r.key, r.locator) for r in records] == [
        ("E1", "employees.csv:2"),
        ("E2", "employees.csv:3"),
        ("E3", "employees.csv:4"),
        ("E4", "employees.csv:7"),  # after the three physical lines of E3
    ]
    assert [src.fields(r)["first_name"] for r in records] == [
        "Smith, Jr.",
        'Bob "The Builder"',
        "Multi\nline\nname",
        "Dana",
    ]
    assert records[2].raw == b'E3,"Multi\nline\nname",Kim,active'


def test_crlf_inside_quoted_field_is_normalised(tmp_path):
    path = write(tmp_path, f'{HEADER}\r\nE1,"two\r\nlines",Kim,active\r\nE2,A,B,active\r\n')
    src = source(path)
    records = list(src.scan_full())
    assert [(r.key, r.locator) for r in records] == [
        ("E1", "employees.csv:2"),
        ("E2", "employees.csv:4"),
    ]
    assert src.fields(records[0])["first_name"] == "two\nlines"


def test_quoted_key_values(tmp_path):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        '"E1","Ana","Smith","active"\n'
        '"E,2",Bob,Lee,active\n'  # delimiter inside the quoted key
        '"E""3",Cy,Ng,active\n'  # doubled quote inside the quoted key
        '" E4 ",Di,Ro,active\n',
    )
    assert [r.key for r in source(path).scan_full()] == ["E1", "E,2", 'E"3', "E4"]


def test_quote_all_export(tmp_path):
    rows = [f'"E{i}","Ana","Smith, {i}","active"' for i in range(50)]
    path = write(tmp_path, '"employee_id","first_name","last_name","status"\n' + "\n".join(rows))
    src = source(path)
    records = list(src.scan_full())
    assert [r.key for r in records] == [f"E{i}" for i in range(50)]
    assert src.fields(records[7])["last_name"] == "Smith, 7"


def test_key_column_not_first(tmp_path):
    path = write(
        tmp_path,
        "first_name,last_name,status,employee_id\n"
        "Ana,Smith,active,E1\n"
        '"Lee, Bob",x,active,E2\n'  # a quoted delimiter before the key column
        'Cy,Ng,"on leave","E3"\n'
        "Di,Ro,active\n",  # ragged: no key column at all
    )
    src = source(path)
    records = list(src.scan_full())
    assert [(r.key, r.locator) for r in records] == [
        ("E1", "employees.csv:2"),
        ("E2", "employees.csv:3"),
        ("E3", "employees.csv:4"),
        ("", "employees.csv:5"),
    ]
    assert src.fields(records[2])["status"] == "on leave"


def test_literal_quote_inside_unquoted_field_does_not_swallow_lines(tmp_path):
    # csv keeps a quote that does not start a field literally: 5'11" is one field.
    path = write(tmp_path, f"{HEADER},height\nE1,Ana,Smith,active,5'11\"\nE2,Bob,Lee,active,6\n")
    src = source(path)
    records = list(src.scan_full())
    assert [(r.key, r.locator) for r in records] == [
        ("E1", "employees.csv:2"),
        ("E2", "employees.csv:3"),
    ]


def test_ragged_row_is_a_record_error(tmp_path):
    path = write(tmp_path, f"{HEADER}\nE1,Ana,Smith\nE2,Bob,Lee,active,extra\n")
    src = source(path)
    short, long = src.scan_full()
    with pytest.raises(RecordError) as info:
        src.fields(short)
    assert str(info.value) == "employees.csv:2: has 3 fields, the header has 4"
    with pytest.raises(RecordError, match="has 5 fields, the header has 4"):
        src.fields(long)


def test_bad_encoding_in_one_row_leaves_the_others_readable(tmp_path):
    path = write(
        tmp_path,
        f"{HEADER}\nE1,Ana,Smith,active\n".encode() + b"E2,B\xffb,Lee,active\nE3,Cy,Ng,active\n",
    )
    src = source(path)
    records = list(src.scan_full())
    assert [r.key for r in records] == ["E1", "E2", "E3"]
    with pytest.raises(RecordError) as info:
        src.fields(records[1])
    assert info.value.locator == "employees.csv:3"
    assert "is not valid utf-8-sig" in str(info.value) and "ff" in str(info.value)
    assert src.fields(records[2])["first_name"] == "Cy"


def test_other_encodings(tmp_path):
    path = write(tmp_path, f"{HEADER}\nE1,José,Müller,active\n".encode("cp1252"))
    src = source(path, encoding="cp1252")
    (record,) = src.scan_full()
    assert src.fields(record)["last_name"] == "Müller"
    with pytest.raises(FeedError, match="not supported"):
        list(source(path, encoding="utf-16").scan_full())


def test_semicolon_delimiter(tmp_path):
    path = write(tmp_path, 'employee_id;first_name;last_name;status\nE1;"A;B";C;active\n')
    src = source(path, delimiter=";")
    (record,) = src.scan_full()
    assert src.fields(record)["first_name"] == "A;B"


def test_missing_required_column(tmp_path):
    path = write(tmp_path, "Given,Family,status\nAna,Smith,active\n")
    src = source(path, columns=COLUMNS | {"employee_id": "Employee ID", "first_name": "Given"})
    with pytest.raises(FeedError) as info:
        list(src.scan_full())
    assert str(info.value) == (
        "employees.csv:1: required columns 'Employee ID' (employee_id), "
        "'last_name' (last_name) are missing from the header"
    )
    only_id = source(path, columns={"employee_id": "Employee ID", "first_name": "Given"})
    with pytest.raises(FeedError) as info:
        list(only_id.scan_full())
    assert str(info.value) == (
        "employees.csv:1: required column 'Employee ID' (employee_id) is missing from the header"
    )


def test_duplicate_header_is_a_feed_error(tmp_path):
    path = write(tmp_path, "employee_id,first_name,last_name,status,first_name\n")
    with pytest.raises(FeedError, match="names column 'first_name' twice"):
        list(source(path).scan_full())


def test_empty_and_missing_files(tmp_path):
    for data in (b"", b"\xef\xbb\xbf", b"\n\n"):
        path = write(tmp_path, data)
        with pytest.raises(FeedError, match="is empty"):
            list(source(path).scan_full())
    missing = tmp_path / "nope.csv"
    with pytest.raises(FeedError) as info:
        list(source(missing).scan_full())
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


def test_undecodable_header(tmp_path):
    path = write(tmp_path, b"employee_id,first\xe9name,last_name,status\n")
    with pytest.raises(FeedError) as info:
        list(source(path, encoding="utf-8").scan_full())
    assert str(info.value).startswith("employees.csv:1: the header is not valid utf-8")


def test_header_only_file_has_no_records(tmp_path):
    src = source(write(tmp_path, HEADER + "\n"))
    assert list(src.scan_full()) == []
    assert src.columns_present() == set(COLUMNS)


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = write(
        tmp_path,
        f"\n{HEADER}\n\nE1,Ana,Smith,active\n   \n,,,\n,Bob,Lee,active\r\n\r\nE2,Cy,Ng,active\n\n",
    )
    assert scan(source(path)) == [
        ("E1", "employees.csv:4"),
        ("", "employees.csv:7"),  # a row without a key is kept: validation reports it
        ("E2", "employees.csv:9"),
    ]


def test_unterminated_quote_at_end_of_file(tmp_path):
    path = write(tmp_path, f'{HEADER}\nE1,Ana,Smith,active\nE2,"Bob,Lee,active\nE3,A,B,active\n')
    with pytest.raises(FeedError) as info:
        list(source(path).scan_full())
    assert str(info.value).startswith("employees.csv:3: a quoted field opened in this record")


def test_runaway_quote_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_source, "CHUNK_BYTES", 64)
    monkeypatch.setattr(csv_source, "MAX_RECORD_BYTES", 200)
    monkeypatch.setattr(csv_scan, "MAX_RECORD_BYTES", 200)
    rows = "".join(f"E{i},A,B,active\n" for i in range(100))
    path = write(tmp_path, f'{HEADER}\nE0,"oops,B,active\n{rows}')
    with pytest.raises(FeedError, match=r"employees\.csv:2: .* still open after"):
        list(source(path).scan_full())


def test_cr_only_line_endings_are_explained(tmp_path):
    path = write(tmp_path, f"{HEADER}\rE1,Ana,Smith,active\r")
    with pytest.raises(FeedError, match="CR-only line endings"):
        list(source(path).scan_full())


def test_tuples_match_records_and_fetch_one(tmp_path):
    path = write(tmp_path, f'{HEADER}\nE1,Ana,Smith,active\nE2,"B\nb",Lee,active\nE3,C,D,active\n')
    src = source(path)
    records = list(src.scan_full())
    tuples = list(src.scan_full_tuples())
    assert [RawRecord(k, d, f"employees.csv:{n}", raw) for k, d, n, raw in tuples] == records
    assert [src.to_record(t) for t in tuples] == records
    assert src.fetch_one("E3") == records[2]
    assert src.fetch_one("E9") is None


def test_delta_scan_and_metadata(tmp_path):
    full = write(tmp_path, f"{HEADER}\nE1,Ana,Smith,active\nE2,Bob,Lee,active\n")
    delta = write(tmp_path, f"{HEADER}\nE2,Bob,Lee,terminated\n", "changes.csv")
    src = source(full, delta_path=delta)
    (record,) = src.scan_delta(None)
    assert (record.key, record.locator) == ("E2", "changes.csv:2")
    assert src.fields(record)["status"] == "terminated"
    assert src.describe() == f"CSV {full}"
    assert datetime.fromisoformat(src.watermark()).tzinfo is not None
    with pytest.raises(NotImplementedError):
        source(full).scan_delta(None)


def test_fields_before_any_scan_reads_the_header(tmp_path):
    path = write(tmp_path, "status,employee_id,first_name,last_name\nactive,E1,Ana,Smith\n")
    record = RawRecord("E1", b"", "employees.csv:2", b"active,E1,Ana,Smith")
    assert source(path).fields(record)["first_name"] == "Ana"


def _random_csv(rnd: random.Random, rows: int, special_rate: float) -> str:
    """Rows with every CSV feature, written by the csv module itself.

    A low ``special_rate`` gives mostly plain rows with rare quoted ones, a high one
    quotes nearly every row; the scanner takes different paths for the two.
    """
    plain = ["a", "b c", "é", " pad ", ""]
    special = ["x,y", 'q"q', "multi\nline", '"', ",", "\n"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rnd.choice(["\n", "\r\n"]))
    writer.writerow(["first_name", "employee_id", "last_name", "status"])
    for i in range(rows):
        pieces = plain + special if rnd.random() < special_rate else plain
        cells = ["".join(rnd.choices(pieces, k=rnd.randint(0, 3))) for _ in range(4)]
        cells[1] = f"E{i}" + rnd.choice(["", " "] if pieces is plain else [",x", '"', " "])
        writer.writerow(cells)
        if rnd.random() < 0.05:
            out.write("\n")  # a blank line
    return out.getvalue()


@pytest.mark.parametrize("special_rate", [0.01, 0.5, 1.0])
@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_agrees_with_the_csv_module_at_any_chunk_size(tmp_path, monkeypatch, chunk, special_rate):
    monkeypatch.setattr(csv_source, "CHUNK_BYTES", chunk)
    rnd = random.Random(chunk)
    for attempt in range(5):
        text = _random_csv(rnd, 300, special_rate)
        path = write(tmp_path, text)
        src = source(path)
        expected = []
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader)
        start = reader.line_num + 1
        for row in reader:
            if row:
                expected.append((row[1].strip(), f"employees.csv:{start}", row))
            start = reader.line_num + 1
        records = list(src.scan_full())
        assert [(r.key, r.locator) for r in records] == [e[:2] for e in expected], attempt
        for record, (_, _, row) in zip(records, expected, strict=True):
            got = src.fields(record)
            assert got["first_name"] == (row[0].strip() or None)
            assert got["status"] == (row[3].strip() or None)
