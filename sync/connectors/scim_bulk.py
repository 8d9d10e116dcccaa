"""SCIM Bulk (RFC 7644 §3.7): many account writes in one POST /Bulk.

Used where /ServiceProviderConfig says ``bulk.supported`` (and ``[lms] bulk = "auto"``),
within its ``maxOperations`` and ``maxPayloadSize``. Every operation carries its op id as
``bulkId``, so each result maps back to its own outbox row whatever order the server
answers in, and a report created in the same request names its manager as
``bulkId:<the manager's op>`` (§3.7.2). A request the server refuses as a whole (no
/Bulk, 501, an envelope it will not read) applied nothing: ``BatchRefused`` sends those
operations one request each. One that was too large (413) is split and sent again.

The request is built as plain JSON, like single creates (``creation_body``): the test
suite holds it equal to ``bulk_request_reference``, built with scim2-models. The answer
is read as plain JSON too: validating a 1,000-operation BulkResponse with scim2-models
costs ~75 ms, which the client would spend on every request; each failed operation's
Error is read by the connector's own error reader (scim2-models' Error).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import httpx
from pydantic import ValidationError
from scim2_models import (
    BulkOperation,
    BulkRequest,
    Context,
    EnterpriseUser,
    PatchOp,
    ServiceProviderConfig,
    User,
)

from rostersync.sync.bulk import BatchItem, BatchLimits, BatchRefused, Outcome, split
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.scim_errors import refused_before_sending
from rostersync.sync.connectors.scim_payload import (
    TOLERANT,
    account_from_resource,
    creation_body,
    patch_body,
)
from rostersync.sync.models import Account, ErrorClass

if TYPE_CHECKING:
    from rostersync.sync.config import ScimTargetConfig
    from rostersync.sync.connectors.scim_client import ScimClient

log = logging.getLogger(__name__)

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_ID = "bulkId:"
# The length of an LMS id a create's manager reference is sized with before the
# manager exists (ids seen: UUIDs, 32 hex digits, numbers).
ID_ALLOWANCE = 64
# Answers to a whole /Bulk request that mean "not here": nothing was applied.
ABSENT = frozenset({400, 404, 405, 415, 501})


def bulk_operation(item: BatchItem, manager_id: str | None = None) -> dict[str, Any]:
    """One entry of ``Operations`` for an item (``manager_id`` overrides the item's
    manager reference, to size an entry before the manager's id is known)."""
    if item.kind == "create":
        account = item.account
        assert account is not None
        manager = manager_id or (BULK_ID + item.manager_ref if item.manager_ref
                                 else item.manager_lms_id)
        return {"method": "POST", "path": "/Users", "bulkId": item.ref,
                "data": creation_body(account, manager)}
    operation = {"method": "PATCH", "path": "/Users/" + quote(item.lms_id or "", safe=""),
                 "bulkId": item.ref,
                 "data": patch_body(item.changes, manager_id or item.manager_lms_id)}
    if item.version:
        operation["version"] = item.version
    return operation


def bulk_request(operations: list[dict[str, Any]], fail_on_errors: int | None
                 ) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [BULK_REQUEST]}
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    body["Operations"] = operations
    return body


def bulk_request_reference(operations: list[dict[str, Any]], fail_on_errors: int | None
                           ) -> dict[str, Any]:
    """The same request built with scim2-models: the RFC's schema, for the tests."""
    user = User[EnterpriseUser]
    request = BulkRequest[user](fail_on_errors=fail_on_errors, operations=[
        BulkOperation[user](
            method=op["method"], bulk_id=op["bulkId"], path=op["path"],
            version=op.get("version"),
            data=(PatchOp[user].model_validate(op["data"]) if op["method"] == "PATCH"
                  else user.model_validate(op["data"])))
        for op in operations])
    return request.model_dump(scim_ctx=Context.BULK_REQUEST)


def _id_from_location(location: Any) -> str | None:
    # Plain string work, not urlsplit: a thousand of these per answer add up.
    if not isinstance(location, str) or "/Users/" not in location:
        return None
    tail = location.rsplit("/Users/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    return (unquote(tail) if "%" in tail else tail) or None


def _status(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def results_by_ref(data: Any, items: list[BatchItem]) -> dict[str, dict[str, Any]]:
    """Each item's entry of a BulkResponse: by bulkId, else (a PATCH answered without it)
    by the id in its location. An item with no entry has an unknown outcome."""
    entries = data.get("Operations") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return {}
    refs = {item.ref for item in items}
    patch_refs = {item.lms_id: item.ref for item in items if item.kind == "update"}
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        ref = entry.get("bulkId")
        if ref not in refs and str(entry.get("method", "")).upper() == "PATCH":
            ref = patch_refs.get(_id_from_location(entry.get("location")))
        if isinstance(ref, str) and ref in refs and ref not in out:
            out[ref] = entry
    return out


class ScimBulkWriter:
    """SCIM Bulk for ``ScimTarget`` (which owns one), over the target's transport."""

    def __init__(self, client: ScimClient, config: ScimTargetConfig) -> None:
        self.client = client
        self.config = config
        # What /ServiceProviderConfig allows, read once (None: no bulk here).
        self._limits: BatchLimits | None = None
        self._limits_known = False

    batch_envelope = 96  # the request's own bytes beside its operations

    async def batch_limits(self) -> BatchLimits | None:
        """What /ServiceProviderConfig allows, read once; None: no bulk here."""
        if self.config.bulk == "off":
            return None
        if not self._limits_known:
            self._limits = await self._read_bulk_limits()
            self._limits_known = True
        return self._limits

    async def _read_bulk_limits(self) -> BatchLimits | None:
        what = "read of /ServiceProviderConfig"
        response = await self.client.read("/ServiceProviderConfig", what)
        if response.status_code != 200:
            log.info("SCIM bulk not used: %s", self.client.error(response, what).message)
            return None
        try:
            spc = ServiceProviderConfig.model_validate(
                self.client.json_object(response, what), scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                scim_policy=TOLERANT)
        except (ValidationError, ConnectorError) as exc:
            log.info("SCIM bulk not used: the ServiceProviderConfig is unreadable (%s)", exc)
            return None
        bulk = spc.bulk
        if bulk is None or not bulk.supported or (bulk.max_operations or 0) < 2:
            return None
        return BatchLimits(max_items=bulk.max_operations or 0,
                           max_bytes=bulk.max_payload_size or None, references=True)

    def batch_cost(self, item: BatchItem) -> int:
        """The bytes an item adds to a request, its manager's id sized generously. A
        create without a manager is built here once and sent as built."""
        try:
            manager = "x" * ID_ALLOWANCE if (item.manager_ref or item.manager_lms_id or (
                item.account and item.account.manager_key)) else None
            operation = bulk_operation(item, manager)
        except (ValueError, ValidationError):
            return 0  # refused when sent, alone
        if manager is None and item.kind == "create":
            item.prepared = operation
        return len(json.dumps(operation, ensure_ascii=False).encode())

    async def apply_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        """Send ``items`` as one or more /Bulk requests; each item's outcome by ref."""
        outcomes: dict[str, Outcome] = {}
        operations: list[dict[str, Any]] = []
        sent: list[BatchItem] = []
        for item in items:
            what = self._bulk_what(item)
            if item.kind == "create" and not (item.account and item.account.user_name.strip()):
                outcomes[item.ref] = ConnectorError(f"SCIM {what} failed: the account has no "
                                                    "userName", ErrorClass.data)
                continue
            try:
                operations.append(item.prepared or bulk_operation(item))
            except ValidationError as exc:
                outcomes[item.ref] = refused_before_sending(exc, what)
                continue
            sent.append(item)
        if sent:
            outcomes.update(await self._bulk(sent, operations))
        return outcomes

    async def _bulk(self, items: list[BatchItem], operations: list[dict[str, Any]]
                    ) -> dict[str, Outcome]:
        what = f"bulk request of {len(items)} operation{'s' if len(items) != 1 else ''}"
        body = bulk_request(operations, self.config.bulk_fail_on_errors)
        response = await self.client.send("POST", "/Bulk", what, body=body)
        status = response.status_code
        if status == 413 and len(items) > 1:  # larger than the server takes: halves
            first, second = split(items)
            outcomes = await self._bulk(first, operations[:len(first)])
            for item in second:  # a manager the first half created is now an id
                if item.manager_ref in outcomes:
                    made = outcomes[item.manager_ref]
                    item.manager_ref = None
                    item.manager_lms_id = made.lms_id if isinstance(made, Account) else None
            return outcomes | await self._bulk(second, [bulk_operation(i) for i in second])
        if status in ABSENT:
            # Not offered after all: single requests from now on.
            self._limits, self._limits_known = None, True
            raise BatchRefused(self.client.error(response, what).message)
        if status != 200:
            raise self.client.error(response, what)  # the outcome of every operation is unknown
        entries = results_by_ref(self.client.json_object(response, what), items)
        stopped = self._stopped(entries)
        outcomes = {}
        for item in items:
            entry = entries.get(item.ref)
            if entry is None:
                if stopped:  # not run: the server stopped at failOnErrors (§3.7.3)
                    outcomes[item.ref] = ConnectorError(
                        f"SCIM {self._bulk_what(item)} was not run: the bulk request stopped "
                        f"after {stopped} failed operations (lms.bulk_fail_on_errors)",
                        ErrorClass.transient)
                continue  # no word of it: unknown, read before it is sent again
            outcomes[item.ref] = self._bulk_outcome(item, entry)
        return outcomes

    def _stopped(self, entries: dict[str, dict[str, Any]]) -> int:
        """The number of failures, when they reached failOnErrors (0 otherwise)."""
        limit = self.config.bulk_fail_on_errors
        failed = sum(1 for e in entries.values() if (_status(e.get("status")) or 0) >= 400)
        return failed if limit is not None and failed >= limit else 0

    def _bulk_outcome(self, item: BatchItem, entry: dict[str, Any]) -> Outcome:
        status = _status(entry.get("status"))
        answer = entry.get("response")
        if status is None:
            return ConnectorError(f"SCIM {self._bulk_what(item)}: the bulk answer has no "
                                  "status", ErrorClass.transient)
        if status >= 400:
            error = httpx.Response(status, json=answer if isinstance(answer, dict) else {})
            return self.client.error(error, self._bulk_what(item))
        resource = answer if isinstance(answer, dict) and isinstance(answer.get("id"), str) \
            else None
        if item.kind == "update":
            return None if resource is None else account_from_resource(resource)
        if resource is not None:
            return account_from_resource(resource)
        lms_id = _id_from_location(entry.get("location"))
        if lms_id is None:
            return ConnectorError(f"SCIM {self._bulk_what(item)}: the bulk answer gives no "
                                  "location for the new account", ErrorClass.transient,
                                  status=status)
        # The server sent no body: the account is what was sent (the item's own copy),
        # under its new id.
        created = item.account
        assert created is not None
        created.lms_id = lms_id
        created.version = entry.get("version") if isinstance(entry.get("version"), str) \
            else None
        return created

    @staticmethod
    def _bulk_what(item: BatchItem) -> str:
        if item.kind == "create" and item.account is not None:
            return (f"bulk create of userName {json.dumps(item.account.user_name)} "
                    f"(externalId {json.dumps(item.account.external_key)})")
        return f"bulk update of id {json.dumps(item.lms_id)}"
