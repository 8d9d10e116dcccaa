"""The LMS target contract: every rule of ``LmsTarget`` (sync/connectors/base.py) as a test,
generated for one target kind by ``target_suite(rig)``.

The rules: a create returns the stored account and reads back what was sent; creating the
same account again is a conflict (which the executor resolves by looking the account up),
never a second account; repeating an update changes nothing more; an update touches only
the fields it names, links a new external key, and an empty one is a no-op; deactivating
twice is not an error, and an account comes back when reactivated; lookups by key, login
and email find the account and a missing one is None or an empty list, not an error;
listing returns every account once across page boundaries; the manager's reference
round-trips (an LMS id in ``extra["manager_lms_id"]``, or the HRIS key where the LMS keeps
that); audience additions are idempotent and removing a non-member is not an error; and a
write the LMS refuses is a ``ConnectorError`` of the documented class, one sentence,
without the token.

Each suite class starts one server for all its tests; every test makes accounts of its
own (fresh keys), so the tests neither see nor depend on one another's.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from rostersync.sync.config_audiences import AudienceConfig
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.models import Account, ErrorClass
from tests.contract.target_rigs import TargetRig

T = TypeVar("T")


class Live:
    """A started rig and the numbering that keeps each test's accounts apart."""

    def __init__(self, rig: TargetRig) -> None:
        self.rig = rig
        self._numbers = itertools.count(1)

    def person(self, **changes: Any) -> Account:
        """A new person's account, with a key, login and email nobody has yet."""
        n = next(self._numbers)
        login = f"ada{n:04d}.novak@acme.example"
        account = Account(external_key=f"E{n:05d}", user_name=login, given_name="Ada",
                          family_name="Novak", display_name="Ada Novak", email=login,
                          title="Engineer", department="Sales", employee_number=f"{100000 + n}")
        return replace(account, **changes)

    def run(self, work: Callable[[LmsTarget], Awaitable[T]], **options: Any) -> T:
        async def go() -> T:
            async with self.rig.target(**options) as target:
                return await work(target)
        return asyncio.run(go())

    def create(self, account: Account, manager_lms_id: str | None = None) -> Account:
        return self.run(lambda t: t.create(account, manager_lms_id))

    def get(self, lms_id: str) -> Account | None:
        return self.run(lambda t: t.get(lms_id))

    def held(self, account: Account) -> dict[str, Any]:
        return {name: getattr(account, name) for name in self.rig.holds}

    def skip_unless(self, rule: str) -> None:
        if rule in self.rig.skips:
            pytest.skip(self.rig.skips[rule])


def _one_sentence(error: ConnectorError, token: str) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert token not in text, "the token leaked into an error message"


def target_suite(rig_class: type[TargetRig]) -> type:
    """A test class holding the whole target contract for one LMS kind."""

    class Contract:
        @pytest.fixture(scope="class")
        def live(self) -> Iterator[Live]:
            rig = rig_class()
            with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
                patch.setenv(rig.token_env, rig.token)
                rig.serve(stack)
                yield Live(rig)

        # -- writes read back ----------------------------------------------------------

        def test_create_returns_the_stored_account_as_sent(self, live: Live) -> None:
            sent = live.person()
            created = live.create(sent)
            assert created.lms_id
            assert live.held(created) == live.held(sent)
            read = live.get(created.lms_id)
            assert read is not None and read.lms_id == created.lms_id
            assert live.held(read) == live.held(sent)

        def test_creating_the_same_account_again_is_a_conflict_not_a_duplicate(
                self, live: Live) -> None:
            sent = live.person()
            live.create(sent)
            with pytest.raises(ConnectorError) as caught:
                live.create(sent)
            assert caught.value.error_class is ErrorClass.conflict, caught.value
            _one_sentence(caught.value, live.rig.token)
            assert live.rig.stored_keys().count(sent.external_key) == 1

        def test_repeating_an_update_is_idempotent(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id = created.lms_id or ""
            changes = {"given_name": "Adaline", "department": "Finance", "title": "Controller"}
            changes = {k: v for k, v in changes.items() if k in live.rig.holds}
            live.run(lambda t: t.update(lms_id, changes, version=created.version))
            once = live.get(lms_id)
            live.run(lambda t: t.update(lms_id, changes))  # a retry after a lost answer
            twice = live.get(lms_id)
            assert once is not None and twice is not None
            assert live.held(twice) == live.held(once) == \
                live.held(replace(created, **changes))
            assert live.rig.stored_keys().count(created.external_key) == 1

        def test_an_update_changes_only_the_fields_it_names(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id = created.lms_id or ""
            live.run(lambda t: t.update(lms_id, {"family_name": "Lovelace"}))
            read = live.get(lms_id)
            assert read is not None
            expected = live.held(replace(created, family_name="Lovelace"))
            if "display_name" in live.rig.holds:
                # A display name the LMS derives from the names may follow them.
                expected.pop("display_name")
                read_held = {k: v for k, v in live.held(read).items() if k != "display_name"}
            else:
                read_held = live.held(read)
            assert read_held == expected

        def test_an_update_answers_the_changed_account_or_none(self, live: Live) -> None:
            created = live.create(live.person())
            answer = live.run(lambda t: t.update(created.lms_id or "", {"given_name": "Adele"}))
            if answer is not None:  # the target sent it back: it must say what it holds now
                assert answer.lms_id == created.lms_id and answer.given_name == "Adele"

        def test_names_beyond_ascii_round_trip(self, live: Live) -> None:
            sent = live.person(given_name="Zoë", family_name="O'Brien-Łukasiewicz",
                               display_name="Zoë O'Brien-Łukasiewicz")
            created = live.create(sent)
            read = live.get(created.lms_id or "")
            assert read is not None and live.held(read) == live.held(sent)

        def test_a_stale_version_does_not_lose_the_update(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id, first = created.lms_id or "", created.version
            live.run(lambda t: t.update(lms_id, {"given_name": "Adele"}, version=first))
            # Someone else's change made ``first`` stale; HR's change still lands.
            live.run(lambda t: t.update(lms_id, {"given_name": "Adeline"}, version=first))
            read = live.get(lms_id)
            assert read is not None and read.given_name == "Adeline"

        def test_a_field_without_a_home_is_a_mapping_error_after_the_rest_landed(
                self, live: Live) -> None:
            homeless = [f for f in ("title", "department", "display_name", "employee_number")
                        if f not in live.rig.holds]
            if not homeless:
                pytest.skip(f"{live.rig.kind} holds every managed field")
            created = live.create(live.person())
            changes = {homeless[0]: "Somewhere", "given_name": "Adele"}
            with pytest.raises(ConnectorError) as caught:
                live.run(lambda t: t.update(created.lms_id or "", changes))
            assert caught.value.error_class is ErrorClass.mapping, caught.value
            assert homeless[0] in str(caught.value)
            _one_sentence(caught.value, live.rig.token)
            read = live.get(created.lms_id or "")
            assert read is not None and read.given_name == "Adele"

        def test_an_empty_update_is_a_no_op(self, live: Live) -> None:
            created = live.create(live.person())
            assert live.run(lambda t: t.update(created.lms_id or "", {})) is None
            read = live.get(created.lms_id or "")
            assert read is not None and live.held(read) == live.held(created)

        def test_an_update_links_a_new_external_key(self, live: Live) -> None:
            created = live.create(live.person())
            new_key = created.external_key + "-R"
            live.run(lambda t: t.update(created.lms_id or "", {"external_key": new_key}))
            [found] = live.run(lambda t: t.find_by_external_key(new_key))
            assert found.lms_id == created.lms_id
            assert live.run(lambda t: t.find_by_external_key(created.external_key)) == []

        # -- active ---------------------------------------------------------------------

        def test_deactivate_then_reactivate(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id = created.lms_id or ""
            live.run(lambda t: t.set_active(lms_id, False))
            gone = live.get(lms_id)
            assert gone is not None and gone.active is False
            assert live.held(replace(gone, active=True)) == live.held(created)
            live.run(lambda t: t.set_active(lms_id, True))
            back = live.get(lms_id)
            assert back is not None and back.active is True

        def test_deactivating_an_inactive_account_is_not_an_error(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id = created.lms_id or ""
            live.run(lambda t: t.set_active(lms_id, False))
            live.run(lambda t: t.set_active(lms_id, False))
            read = live.get(lms_id)
            assert read is not None and read.active is False

        def test_an_inactive_account_is_still_listed_and_found(self, live: Live) -> None:
            created = live.create(live.person())
            lms_id = created.lms_id or ""
            live.run(lambda t: t.set_active(lms_id, False))

            async def seen(t: LmsTarget) -> tuple[list[Account], list[Account]]:
                return ([a async for a in t.list_accounts() if a.lms_id == lms_id],
                        await t.find_by_external_key(created.external_key or ""))

            listed, found = live.run(seen)
            assert [(a.lms_id, a.active) for a in listed] == [(lms_id, False)]
            assert [(a.lms_id, a.active) for a in found] == [(lms_id, False)]

        def test_an_account_created_inactive_reads_back_inactive(self, live: Live) -> None:
            sent = live.person(active=False)
            created = live.create(sent)
            read = live.get(created.lms_id or "")
            assert created.active is False and read is not None and read.active is False

        # -- lookups ------------------------------------------------------------------

        def test_lookups_find_the_account_by_key_login_and_email(self, live: Live) -> None:
            sent = live.person()
            created = live.create(sent)

            async def lookups(t: LmsTarget) -> list[list[Account]]:
                return [await t.find_by_external_key(sent.external_key or ""),
                        await t.find_by_user_name(sent.user_name),
                        await t.find_by_email(sent.email or "")]

            for found in live.run(lookups):
                assert [a.lms_id for a in found] == [created.lms_id]

        def test_login_and_email_lookups_ignore_case(self, live: Live) -> None:
            sent = live.person()
            created = live.create(sent)

            async def lookups(t: LmsTarget) -> list[list[Account]]:
                return [await t.find_by_user_name(sent.user_name.upper()),
                        await t.find_by_email((sent.email or "").upper())]

            for found in live.run(lookups):
                assert [a.lms_id for a in found] == [created.lms_id]

        def test_a_missing_account_is_none_or_empty_not_an_error(self, live: Live) -> None:
            nobody = live.person()  # never created

            async def lookups(t: LmsTarget) -> list[Any]:
                return [await t.get(live.rig.missing_id),
                        await t.find_by_external_key(nobody.external_key or ""),
                        await t.find_by_user_name(nobody.user_name),
                        await t.find_by_email(nobody.email or "")]

            assert live.run(lookups) == [None, [], [], []]

        # -- listing ------------------------------------------------------------------

        def test_listing_returns_each_account_once_across_pages(self, live: Live) -> None:
            page = 2
            made = [live.create(live.person()) for _ in range(2 * page + 1)]
            options = {live.rig.page_option: page} if live.rig.page_option else {}

            async def listing(t: LmsTarget) -> list[Account]:
                return [a async for a in t.list_accounts()]

            listed = live.run(listing, **options)
            ids = [a.lms_id for a in listed]
            assert len(ids) == len(set(ids)), "an account was listed twice"
            by_id = {a.lms_id: a for a in listed}
            for account in made:
                assert live.held(by_id[account.lms_id]) == live.held(account)
            stored = [k for k in live.rig.stored_keys() if k]
            assert sorted(a.external_key for a in listed if a.external_key) == sorted(stored)
            live.skip_unless("paging")  # the listing held; there were no pages to cross

        # -- manager ------------------------------------------------------------------

        def test_the_manager_reference_is_set_and_cleared(self, live: Live) -> None:
            live.skip_unless("manager")
            boss = live.create(live.person())
            sent = live.person(manager_key=boss.external_key)
            report = live.create(sent, manager_lms_id=boss.lms_id)
            lms_id = report.lms_id or ""

            def manager_of(account: Account | None) -> str | None:
                assert account is not None
                if live.rig.manager == "lms_id":
                    return account.extra.get("manager_lms_id")
                return account.manager_key

            def reference(manager: Account) -> str | None:
                return manager.lms_id if live.rig.manager == "lms_id" else manager.external_key

            assert manager_of(live.get(lms_id)) == reference(boss)
            other = live.create(live.person())
            live.run(lambda t: t.update(lms_id, {"manager_key": other.external_key},
                                        manager_lms_id=other.lms_id))
            assert manager_of(live.get(lms_id)) == reference(other)
            live.run(lambda t: t.update(lms_id, {"manager_key": None}, manager_lms_id=None))
            assert manager_of(live.get(lms_id)) is None

        # -- audiences ----------------------------------------------------------------

        def test_audience_additions_are_idempotent_and_removing_a_non_member_is_not_an_error(
                self, live: Live) -> None:
            member = live.create(live.person())
            outsider = live.create(live.person())
            audience = AudienceConfig(id=f"contract-{member.external_key}",
                                      rule='department == "Sales"')

            async def story(t: LmsTarget) -> list[set[str]]:
                before = await t.audience_members(audience)  # not in the LMS yet
                await t.add_to_audience(audience, member.lms_id or "")
                await t.add_to_audience(audience, member.lms_id or "")
                after_adds = await t.audience_members(audience)
                await t.remove_from_audience(audience, outsider.lms_id or "")
                after_stray = await t.audience_members(audience)
                await t.remove_from_audience(audience, member.lms_id or "")
                await t.remove_from_audience(audience, member.lms_id or "")
                return [before, after_adds, after_stray, await t.audience_members(audience)]

            before, after_adds, after_stray, after = live.run(story)
            assert before == set()
            assert after_adds == after_stray == {member.lms_id}
            assert after == set()

        def test_concurrent_additions_to_one_audience_all_land(self, live: Live) -> None:
            members = [live.create(live.person()) for _ in range(4)]
            audience = AudienceConfig(id=f"contract-{members[0].external_key}-all",
                                      rule='department == "Sales"')

            async def story(t: LmsTarget) -> set[str]:
                await asyncio.gather(*(t.add_to_audience(audience, m.lms_id or "")
                                       for m in members))
                return await t.audience_members(audience)

            assert live.run(story) == {m.lms_id for m in members}

        def test_an_audience_missing_and_not_to_be_created_is_a_mapping_error(
                self, live: Live) -> None:
            member = live.create(live.person())
            audience = AudienceConfig(id=f"contract-{member.external_key}-none",
                                      rule='department == "Sales"', create_missing=False)
            assert live.run(lambda t: t.audience_members(audience)) == set()
            with pytest.raises(ConnectorError) as caught:
                live.run(lambda t: t.add_to_audience(audience, member.lms_id or ""))
            assert caught.value.error_class is ErrorClass.mapping, caught.value
            _one_sentence(caught.value, live.rig.token)
            assert audience.group in str(caught.value)

        # -- refusals -----------------------------------------------------------------

        def test_a_login_taken_by_another_account_is_a_conflict_in_one_sentence(
                self, live: Live) -> None:
            holder = live.create(live.person())
            other = live.person(user_name=holder.user_name)
            with pytest.raises(ConnectorError) as caught:
                live.create(other)
            assert caught.value.error_class is ErrorClass.conflict, caught.value
            _one_sentence(caught.value, live.rig.token)
            assert holder.user_name in str(caught.value)
            assert other.external_key not in live.rig.stored_keys()

        def test_an_update_of_an_account_that_is_gone_is_not_found(self, live: Live) -> None:
            with pytest.raises(ConnectorError) as caught:
                live.run(lambda t: t.update(live.rig.missing_id, {"given_name": "Ada"}))
            assert caught.value.error_class is ErrorClass.not_found, caught.value
            _one_sentence(caught.value, live.rig.token)

        def test_a_deleted_account_is_gone(self, live: Live) -> None:
            created = live.create(live.person())
            live.run(lambda t: t.delete(created.lms_id or ""))
            assert live.get(created.lms_id or "") is None
            assert live.run(lambda t: t.find_by_external_key(created.external_key or "")) == []
            assert created.external_key not in live.rig.stored_keys()

        def test_check_describes_the_lms_it_reached(self, live: Live) -> None:
            text = live.run(lambda t: t.check())
            assert isinstance(text, str) and "\n" not in text
            assert live.rig.section()["base_url"] in text

        def test_a_wrong_token_is_an_auth_error_naming_where_the_token_comes_from(
                self, live: Live) -> None:
            with pytest.MonkeyPatch.context() as patch:
                wrong = "0" * len(live.rig.token)
                patch.setenv(live.rig.token_env, wrong)
                with pytest.raises(ConnectorError) as caught:
                    live.run(lambda t: t.get(live.rig.missing_id))
            assert caught.value.error_class is ErrorClass.auth, caught.value
            _one_sentence(caught.value, wrong)
            assert live.rig.token_env in str(caught.value)

    kind = rig_class.kind
    Contract.__name__ = Contract.__qualname__ = f"Test{kind.capitalize()}TargetContract"
    return Contract
