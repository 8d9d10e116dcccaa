"""The HRIS source contract for every source kind (tests/contract/source_suite.py).
``pytest tests/contract -k bamboohr`` runs one kind."""

from __future__ import annotations

from tests.contract.source_rigs import BambooRig, CsvRig, SuccessFactorsRig, WorkdayRig
from tests.contract.source_suite import source_suite

TestCsvSourceContract = source_suite(CsvRig)
TestBamboohrSourceContract = source_suite(BambooRig)
TestWorkdaySourceContract = source_suite(WorkdayRig)
TestSuccessfactorsSourceContract = source_suite(SuccessFactorsRig)
