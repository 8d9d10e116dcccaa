"""The HRIS source contract: the rules of ``HrisSource`` (sync/connectors/base.py) as tests,
generated for one source kind by ``source_suite(rig)``.

The rules: a full pull returns every record once, keyed as read, with an 8-byte digest, a
locator and the mapped canonical fields; pages join without gaps or repeats; an empty
export is reported as empty (the feed gate decides what that means; the source neither
refuses nor invents); a delta returns exactly the people changed since the watermark; a
terminated person carries the termination date; a field nobody configured changes
nothing; digests stay put until the person changes; ``fetch_one`` agrees with the full
pull and a missing person is None; a source that cannot be reached, or refuses the
credentials, is ``SourceUnavailable`` of that class, in one sentence without the secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rostersync.sync.clock import FrozenClock
from rostersync.sync.connectors.base import (
    FeedError,
    HrisSource,
    RawRecord,
    RecordError,
    SourceUnavailable,
)
from tests.contract.source_rigs import COMPARED, SourceRig

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LAST_DAY = date(2026, 11, 20)  # behind NOW: the termination has taken effect
PEOPLE = 5  # two pages of two and one of one where the rig pages by two
NOBODY = "99999"


def pull(source: HrisSource) -> list[RawRecord]:
    return list(source.scan_full())


def compared(source: HrisSource, record: RawRecord) -> dict[str, str | None]:
    fields = source.fields(record)
    return {name: fields.get(name) for name in COMPARED}


def _one_sentence(error: Exception, secret: str) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert not secret or secret not in text, "the secret leaked into an error message"


def source_suite(rig_class: type[SourceRig]) -> type:
    """A test class holding the whole source contract for one HRIS kind."""

    class Contract:
        @pytest.fixture
        def rig(self, tmp_path: Path) -> Iterator[SourceRig]:
            with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
                if rig_class.secret_env:
                    patch.setenv(rig_class.secret_env, rig_class.secret)
                yield rig_class(FrozenClock(NOW), tmp_path, stack)

        @staticmethod
        def skip_unless(rig: SourceRig, rule: str) -> None:
            if rule in rig.skips:
                pytest.skip(rig.skips[rule])

        def test_the_factory_builds_this_kind_from_its_config(self, rig: SourceRig) -> None:
            rig.seed(1)
            assert type(rig.built_by_factory()) is rig.source_class

        def test_a_full_pull_returns_every_record_once_with_its_fields(
                self, rig: SourceRig) -> None:
            keys = rig.seed(PEOPLE)
            source = rig.source()
            records = pull(source)
            assert sorted(r.key for r in records) == sorted(keys)
            for record in records:
                assert isinstance(record.digest, bytes) and len(record.digest) == 8
                assert record.locator and record.key == record.key.strip()
                assert compared(source, record) == rig.sent(record.key)
            assert rig.slept == []  # a healthy tenant never makes the source wait

        def test_pages_join_without_gaps_or_repeats(self, rig: SourceRig) -> None:
            self.skip_unless(rig, "paging")
            keys = rig.seed(PEOPLE)
            source = rig.source(**(rig.page_option or {}))
            records = pull(source)
            assert sorted(r.key for r in records) == sorted(keys)
            for record in records:
                assert compared(source, record) == rig.sent(record.key)

        def test_an_empty_export_is_empty_not_refused_nor_invented(self, rig: SourceRig) -> None:
            rig.seed(0)
            assert pull(rig.source()) == []

        def test_a_delta_returns_exactly_the_changed_records(self, rig: SourceRig) -> None:
            self.skip_unless(rig, "delta")
            keys = rig.seed(PEOPLE)
            rig.clock.advance(hours=2)  # the seeding lies well behind the full pull
            source = rig.source()
            assert source.supports_delta()
            pull(source)
            watermark = source.watermark()
            assert watermark is not None
            rig.clock.advance(hours=1)
            rig.retitle(keys[2], "Controller")
            rig.clock.advance(hours=1)
            changed = list(source.scan_delta(datetime.fromisoformat(watermark)))
            assert [r.key for r in changed] == [keys[2]]
            assert source.fields(changed[0])["job_title"] == "Controller"

        def test_a_delta_before_any_full_pull_asks_for_one(self, rig: SourceRig) -> None:
            self.skip_unless(rig, "delta")
            if not rig.needs_watermark:
                pytest.skip(f"a {rig.kind} delta needs no watermark")
            rig.seed(1)
            with pytest.raises(FeedError) as caught:
                list(rig.source().scan_delta(None))
            _one_sentence(caught.value, rig.secret)
            assert "full" in str(caught.value)

        def test_a_broken_record_is_a_record_error_and_the_rest_still_read(
                self, rig: SourceRig) -> None:
            self.skip_unless(rig, "broken record")
            keys = rig.seed(PEOPLE)
            rig.break_record(keys[1])
            source = rig.source()
            broken = []
            for record in pull(source):
                try:
                    fields = source.fields(record)
                except RecordError as exc:
                    broken.append((record, exc))
                    continue
                assert {n: fields.get(n) for n in COMPARED} == rig.sent(record.key)
            [(record, error)] = broken
            assert str(error).startswith(record.locator) and error.locator == record.locator
            _one_sentence(error, rig.secret)

        def test_a_change_entered_in_advance_is_read_again_on_its_day(
                self, rig: SourceRig) -> None:
            self.skip_unless(rig, "future-dated")
            keys = rig.seed(PEOPLE)
            day = (NOW + timedelta(days=3)).date()
            rig.retitle_from(keys[2], "Controller", day)
            rig.clock.advance(hours=2)
            source = rig.source()
            records = {r.key: r for r in pull(source)}
            before = source.fields(records[keys[2]])["job_title"]
            assert before != "Controller"  # not yet in effect
            revisit = source.revisit_on(records[keys[2]], NOW.date())
            assert revisit in (None, day)  # None: the source's delta reports it itself
            watermark = source.watermark()
            assert watermark is not None
            rig.clock.advance(days=4)
            changed = {r.key: r for r in source.scan_delta(datetime.fromisoformat(watermark))}
            assert keys[2] in changed
            assert source.fields(changed[keys[2]])["job_title"] == "Controller"

        def test_a_terminated_person_carries_the_termination_date(self, rig: SourceRig) -> None:
            keys = rig.seed(PEOPLE)
            rig.terminate(keys[3], LAST_DAY)
            source = rig.source()
            dates = {r.key: source.fields(r).get("termination_date") for r in pull(source)}
            assert dates.pop(keys[3]) == LAST_DAY.isoformat()
            assert set(dates.values()) == {None}

        def test_a_field_nobody_configured_changes_nothing(self, rig: SourceRig) -> None:
            keys = rig.seed(PEOPLE)
            rig.add_unknown_field(keys[1])
            source = rig.source()
            records = pull(source)
            assert sorted(r.key for r in records) == sorted(keys)
            for record in records:
                assert compared(source, record) == rig.sent(record.key)

        def test_digests_stay_put_until_the_person_changes(self, rig: SourceRig) -> None:
            keys = rig.seed(PEOPLE)
            first = {r.key: r.digest for r in pull(rig.source())}
            rig.clock.advance(hours=1)
            again = {r.key: r.digest for r in pull(rig.source())}
            assert again == first
            rig.retitle(keys[0], "Controller")
            after = {r.key: r.digest for r in pull(rig.source())}
            assert [k for k in keys if after[k] != first[k]] == [keys[0]]

        def test_fetch_one_agrees_with_the_full_pull_and_a_missing_person_is_none(
                self, rig: SourceRig) -> None:
            keys = rig.seed(PEOPLE)
            source = rig.source()
            full = {r.key: compared(source, r) for r in pull(source)}
            one = source.fetch_one(keys[1])
            assert one is not None and one.key == keys[1]
            assert compared(source, one) == full[keys[1]]
            assert source.fetch_one(NOBODY) is None

        def test_an_unreachable_source_is_unavailable_in_one_sentence(
                self, rig: SourceRig) -> None:
            rig.seed(1)
            source = rig.source(**rig.unreachable())
            with pytest.raises(SourceUnavailable) as caught:
                pull(source)
            assert caught.value.error_class == SourceUnavailable.UNREACHABLE
            _one_sentence(caught.value, rig.secret)

        def test_refused_credentials_are_an_auth_failure_in_one_sentence(
                self, rig: SourceRig, monkeypatch: pytest.MonkeyPatch) -> None:
            rig.seed(1)
            wrong = rig.wrong_secret()
            if wrong is None:
                pytest.skip(f"a {rig.kind} source needs no credentials")
            monkeypatch.setenv("ROSTERSYNC_CONTRACT_WRONG_SECRET", "not-the-secret")
            with pytest.raises(FeedError) as caught:
                pull(rig.source(**wrong))
            assert isinstance(caught.value, SourceUnavailable), caught.value
            assert caught.value.error_class == SourceUnavailable.AUTH
            _one_sentence(caught.value, "not-the-secret")

    Contract.__name__ = Contract.__qualname__ = \
        f"Test{rig_class.kind.capitalize()}SourceContract"
    return Contract
