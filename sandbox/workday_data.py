"""The workers behind the Workday sandbox report, and how one row reads as of a day.

Workers are stored with Python values (booleans as bool, no date -> None) under the
report's aliases (docs/workday.md §2.1, the proposed alias contract); ``row_as_of``
renders one as the report would show it on a given day, in either boolean encoding.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from html import escape
from typing import Any, Literal

from rostersync.sandbox.world import DEPARTMENTS, FIRST, LAST

Booleans = Literal["text", "json"]  # "1"/"0" or true/false (§2.1: both occur)
FLAGS = ("Active", "On_Leave", "Terminated")


def worker_wid(i: int) -> str:
    """A stable 32-hex Workday ID for generated worker i."""
    return hashlib.blake2b(f"worker-{i}".encode(), digest_size=16).hexdigest()


def employee_id(i: int) -> str:
    return str(21000 + i)


def generate(n: int) -> list[dict[str, Any]]:
    """A small organisation: worker 1 at the top, five reports per manager."""
    out = []
    for i in range(1, n + 1):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        department = DEPARTMENTS[i % len(DEPARTMENTS)]
        out.append({
            "Worker_WID": worker_wid(i), "Employee_ID": employee_id(i),
            "Legal_First_Name": first, "Legal_Last_Name": last, "Preferred_First_Name": None,
            "Work_Email": f"{first.lower()}.{last.lower()}.{i}@acme.example",
            "Supervisory_Organization": department,
            "Cost_Center": f"CC-{4000 + DEPARTMENTS.index(department)} {department}",
            "Business_Title": "Specialist", "Location": "Berlin",
            "Manager_Employee_ID": None if i == 1 else employee_id((i - 2) // 5 + 1),
            "Active": True, "On_Leave": False, "Worker_Status": "Active",
            "Hire_Date": "2020-03-01", "Termination_Date": None, "Worker_Type": "Employee",
        })
    return out


def row_as_of(worker: dict[str, Any], today: date, booleans: Booleans,
              omit_empty: bool) -> dict[str, Any]:
    """One report row evaluated as of ``today`` (RaaS runs "as of now", §2.1).

    A termination date still ahead leaves the worker active (a future-dated termination);
    once it has passed the worker is terminated. Before the hire date the active flag is
    cleared, as Workday does for future-dated hires (§2.2).
    """
    row = dict(worker)
    ends, starts = row.get("Termination_Date"), row.get("Hire_Date")
    # A rehire keeps the old termination date; it only counts when after the hire date.
    gone = bool(ends) and ends < today.isoformat() and not (starts and starts > ends)
    pre_hire = bool(starts) and starts > today.isoformat()
    if gone:
        row.update(Active=False, On_Leave=False, Worker_Status="Terminated")
    elif pre_hire:
        row["Active"] = False
    row["Terminated"] = gone
    for name in FLAGS:
        value = bool(row.get(name))
        row[name] = value if booleans == "json" else ("1" if value else "0")
    if omit_empty:
        # Empty cells are left out of a row (inferred), so a reader must not insist on them.
        row = {k: v for k, v in row.items() if v not in (None, "")}
    return row


class WorkerStore:
    """The tenant's workers by WID; safe to mutate from any thread."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._workers: dict[str, dict[str, Any]] = {}

    def put(self, worker: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace one worker; stamps Last_Updated (a calculated field)."""
        stored = {**worker, "Last_Updated": self.clock().astimezone(UTC).isoformat(
            timespec="milliseconds")}
        with self._lock:
            self._workers[str(worker["Worker_WID"])] = stored
        return dict(stored)

    def update(self, wid: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            current = dict(self._workers[wid])
        return self.put({**current, **fields})

    def remove(self, wid: str) -> None:
        with self._lock:
            del self._workers[wid]

    def get(self, wid: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._workers.get(wid)
            return dict(found) if found is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            workers = [dict(w) for w in self._workers.values()]
        return sorted(workers, key=lambda w: (len(str(w.get("Employee_ID"))),
                                              str(w.get("Employee_ID"))))


# The report's columns in report order, with the XML Schema type of each: what the
# report definition declares, whether or not a row has a value (rows leave empty cells
# out). Flags are booleans, dates dates, the change marker a dateTime.
REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Worker_WID", "string"), ("Employee_ID", "string"), ("Legal_First_Name", "string"),
    ("Legal_Last_Name", "string"), ("Preferred_First_Name", "string"),
    ("Work_Email", "string"), ("Supervisory_Organization", "string"),
    ("Cost_Center", "string"), ("Business_Title", "string"), ("Location", "string"),
    ("Manager_Employee_ID", "string"), ("Active", "boolean"), ("On_Leave", "boolean"),
    ("Terminated", "boolean"), ("Worker_Status", "string"), ("Hire_Date", "date"),
    ("Termination_Date", "date"), ("Worker_Type", "string"), ("Last_Updated", "dateTime"),
)


def report_xsd(report_name: str, columns: list[tuple[str, str]]) -> bytes:
    """The report's XML Schema as RaaS serves it at ``?xsds``.

    Shaped on the schema in singer-io/tap-workday-raas
    ``tests/unittests/test_discovery.py`` (a real tenant's answer): target namespace
    ``urn:com.workday.report/{report}``, a ``Report_Data`` element of ``Report_DataType``
    holding ``Report_Entry`` elements of ``Report_EntryType``, whose sequence lists one
    optional element per column alias.
    """
    ns = f"urn:com.workday.report/{escape(report_name)}"
    elements = "".join(
        f'\n            <xsd:element name="{escape(alias)}" type="xsd:{kind}" '
        'minOccurs="0"/>' for alias, kind in columns)
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wd="{ns}" elementFormDefault="qualified" attributeFormDefault="qualified" targetNamespace="{ns}">
    <xsd:element name="Report_Data" type="wd:Report_DataType"/>
    <xsd:simpleType name="RichText">
        <xsd:restriction base="xsd:string"/>
    </xsd:simpleType>
    <xsd:complexType name="Report_EntryType">
        <xsd:sequence>{elements}
        </xsd:sequence>
    </xsd:complexType>
    <xsd:complexType name="Report_DataType">
        <xsd:sequence>
            <xsd:element name="Report_Entry" type="wd:Report_EntryType" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence>
    </xsd:complexType>
</xsd:schema>
'''.encode()
