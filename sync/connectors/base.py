"""The seams every connector plugs into.

An HRIS source yields raw records cheaply (key, content digest, locator, raw payload) and
turns one raw payload into canonical field strings only when the engine asks: a full
reconcile of a million people parses only the rows whose digest changed.

An LMS target is asynchronous (httpx) and speaks in ``Account`` objects. Manager
references cross the seam as LMS ids: a target reports the manager's LMS id in
``Account.extra["manager_lms_id"]`` and receives it as ``manager_lms_id`` on writes;
the engine translates between LMS ids and employee ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rostersync.sync.models import Account, ErrorClass


class ConnectorError(Exception):
    """A failed call to an HRIS or LMS, classified for retry and ownership."""

    def __init__(
        self,
        message: str,
        error_class: ErrorClass = ErrorClass.transient,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = ErrorClass(error_class)
        self.status = status
        self.retry_after = retry_after
        self.code = code

    def __str__(self) -> str:
        return self.message


class FeedError(Exception):
    """A whole feed is unusable (missing file, missing required column, bad encoding).

    The message is one sentence naming what and where; the last good snapshot stays
    in force.
    """


class SourceUnavailable(FeedError):
    """The HRIS could not be read at all: it could not be reached (connection refused or
    reset, unknown host, timeout, a server error or a throttle that outlasted the
    retries, a missing export file) or it refused our credentials.

    Unlike a rejected feed this says nothing about the data: nothing was read, so the
    feed gate's verdict on the last feed stands and the run fails (exit 1) with the
    source's own error class. A FeedError too, so that a caller which only needs "the
    HRIS could not be read" (doctor, real-time runs) catches both.
    """

    UNREACHABLE = "source_unreachable"
    AUTH = "source_auth"

    def __init__(self, message: str, error_class: str = UNREACHABLE) -> None:
        super().__init__(message)
        self.error_class = error_class


class RecordError(Exception):
    """One record cannot be read; it becomes ``invalid`` drift naming where and what."""

    def __init__(self, locator: str, field: str | None, value: str | None, message: str):
        super().__init__(message)
        self.locator = locator
        self.field = field
        self.value = value
        self.message = message

    def __str__(self) -> str:
        where = self.locator + (f" field {self.field}" if self.field else "")
        shown = "" if self.value is None else f" (value {self.value!r})"
        return f"{where}: {self.message}{shown}"


@dataclass(slots=True)
class RawRecord:
    key: str  # the HRIS key (employee_id) as read, stripped
    digest: bytes  # 8-byte content digest of the raw payload
    locator: str  # where it came from, e.g. "employees.csv:17"
    raw: Any  # the payload the source can turn into fields()


class HrisSource(ABC):
    """A source of HR records (CSV drop, BambooHR, Workday, SuccessFactors)."""

    name: str = "hris"

    @abstractmethod
    def scan_full(self) -> Iterator[RawRecord]:
        """Every record of the current full export. Blocking: run it in a thread.

        Raises FeedError when the export as a whole is unusable.
        """

    def scan_delta(self, since: datetime | None) -> Iterator[RawRecord]:
        """Records changed since the watermark (only when supports_delta())."""
        raise NotImplementedError

    def supports_delta(self) -> bool:
        return False

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        """One person's current record, for one-off resyncs."""
        for record in self.scan_full():
            if record.key == employee_id:
                return record
        return None

    @abstractmethod
    def fields(self, record: RawRecord) -> dict[str, str | None]:
        """Canonical field name -> raw value string (None when absent).

        Raises RecordError when the record is structurally broken.
        """

    def columns_present(self) -> set[str] | None:
        """Canonical fields the last scan's header offered (None if not knowable)."""
        return None

    def revisit_on(self, record: RawRecord, today: date) -> date | None:
        """The day this person must be read again though no delta will list them: a
        change entered in advance takes effect then without editing the record (None:
        nothing scheduled, or the source's delta reports such changes itself)."""
        return None

    def source_columns(self) -> list[str] | None:
        """The columns the last full scan's export offered, as the source names them (a
        CSV header, BambooHR field ids); None if not knowable. Compared between accepted
        feeds so that a column that appears or disappears is reported."""
        return None

    def watermark(self) -> str | None:
        """The delta watermark to store after a successful pull."""
        return None

    def describe(self) -> str:
        return self.name


class LmsTarget(ABC):
    """An LMS that holds accounts (SCIM 2.0, Moodle, Canvas)."""

    name: str = "lms"

    async def __aenter__(self) -> LmsTarget:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    def list_accounts(self) -> AsyncIterator[Account]:
        """Every account the target holds (paged under the hood)."""

    @abstractmethod
    async def get(self, lms_id: str) -> Account | None: ...

    @abstractmethod
    async def find_by_external_key(self, key: str) -> list[Account]: ...

    @abstractmethod
    async def find_by_user_name(self, user_name: str) -> list[Account]: ...

    @abstractmethod
    async def find_by_email(self, email: str) -> list[Account]: ...

    @abstractmethod
    async def create(self, account: Account, manager_lms_id: str | None) -> Account:
        """Create and return the stored account (with its lms_id)."""

    @abstractmethod
    async def update(
        self,
        lms_id: str,
        changes: dict[str, Any],
        *,
        version: str | None = None,
        manager_lms_id: str | None = None,
    ) -> Account | None:
        """Apply managed-field changes (names as in models.MANAGED_FIELDS, plus
        ``external_key`` to link). ``manager_key`` in changes means: set the manager to
        ``manager_lms_id`` (None clears it). Returns the account when the target sends
        it back, else None."""

    async def set_active(self, lms_id: str, active: bool, *, version: str | None = None) -> None:
        await self.update(lms_id, {"active": active}, version=version)

    async def delete(self, lms_id: str) -> None:
        raise ConnectorError(f"{self.name} does not support deleting accounts",
                             ErrorClass.mapping)

    async def check(self) -> str:
        """A cheap connectivity/credential probe for `doctor`; returns a description."""
        return self.name

    # -- audiences (docs/audiences.md): LMS groups/cohorts; ``audience`` is an
    # AudienceConfig (``audience.group`` names it in the LMS). A target without them
    # says so, as a mapping error: configuration, not something a retry can fix.

    async def audience_members(self, audience: Any) -> set[str]:
        """The LMS ids of the audience's members (empty when it does not exist yet)."""
        raise ConnectorError(f"{self.name} cannot hold audiences (audience "
                             f"{audience.id!r})", ErrorClass.mapping)

    async def add_to_audience(self, audience: Any, lms_id: str) -> None:
        """Add one member (creating the group when the audience allows); idempotent."""
        raise ConnectorError(f"{self.name} cannot hold audiences (audience "
                             f"{audience.id!r})", ErrorClass.mapping)

    async def remove_from_audience(self, audience: Any, lms_id: str) -> None:
        """Remove one member; removing a non-member is not an error."""
        raise ConnectorError(f"{self.name} cannot hold audiences (audience "
                             f"{audience.id!r})", ErrorClass.mapping)
