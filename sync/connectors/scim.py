"""SCIM 2.0 LMS target (RFC 7643 / RFC 7644).

Payload mapping lives in ``scim_payload``, the transport (the shared httpx client, the
bearer token, retried reads, error classification) in ``scim_client`` and SCIM Bulk in
``scim_bulk``; this module is paging, searching with verification, optimistic
concurrency (ETags), Groups and the doctor's checks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from scim2_models import Context, ServiceProviderConfig

from rostersync.sync.bulk import BatchItem, BatchLimits, Outcome
from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.connectors.coalesce import GroupChanges
from rostersync.sync.connectors.http_limits import too_many_pages
from rostersync.sync.connectors.scim_bulk import ScimBulkWriter
from rostersync.sync.connectors.scim_client import ScimClient
from rostersync.sync.connectors.scim_errors import (  # noqa: F401 - tests import it from here
    parse_retry_after,
    refused_before_sending,
)
from rostersync.sync.connectors.scim_payload import (
    TOLERANT,
    account_from_resource,
    creation_body,
    patch_body,
    resource_matches,
)
from rostersync.sync.connectors.wire_types import other_person
from rostersync.sync.mapping_targets import schema_attribute_names, unknown_attributes
from rostersync.sync.models import Account, ErrorClass

log = logging.getLogger(__name__)


def _q(value: str) -> str:
    """Quote a value for a message the way SCIM filters quote it (JSON string)."""
    return json.dumps(value, ensure_ascii=False)


class ScimTarget(LmsTarget):
    name = "scim"

    def __init__(self, config: ScimTargetConfig, token: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.config = config
        # The target attributes [mapping.attributes] names beyond the built-in fields:
        # read back from every User so that they are compared like the rest.
        self._mapped: tuple[str, ...] = config.mapped_attributes
        self._group_ids: dict[str, str] = {}  # audience group displayName -> Group id
        # One members PATCH at a time per Group (servers that apply a PATCH as read-modify-
        # write of the whole Group, scim2-server among them, lose concurrent additions);
        # the changes that wait meanwhile go together in the next one.
        self._member_changes: GroupChanges[tuple[Any, dict[str, Any], str]] = GroupChanges(
            self._members_patch_now)
        self._client = ScimClient(config, token, transport, sleep)
        self.bulk = ScimBulkWriter(self._client, config)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- SCIM Bulk: the executor's batches (sync.bulk.BatchingTarget) ---------------

    @property
    def batch_envelope(self) -> int:
        return self.bulk.batch_envelope

    async def batch_limits(self) -> BatchLimits | None:
        return await self.bulk.batch_limits()

    def batch_cost(self, item: BatchItem) -> int:
        return self.bulk.batch_cost(item)

    async def apply_batch(self, items: list[BatchItem]) -> dict[str, Outcome]:
        return await self.bulk.apply_batch(items)

    # -- answers -------------------------------------------------------------------

    def _account(self, response: httpx.Response, what: str,
                 lms_id: str | None = None) -> Account:
        """A single User response (plain JSON, see scim_payload.account_from_resource);
        when ``lms_id`` was asked for, an answer naming another id is a conflict."""
        resource = self._client.json_object(response, what)
        if not isinstance(resource.get("id"), str):
            raise ConnectorError(f"SCIM {what} failed: the answer is not a SCIM User "
                                 "(no id)", ErrorClass.transient, status=response.status_code)
        if lms_id is not None and resource["id"] != lms_id:
            raise ConnectorError(f"SCIM {what}: the answer is user {_q(resource['id'])}, not "
                                 "the one asked for; it was not taken as theirs",
                                 ErrorClass.conflict)
        return account_from_resource(resource, etag=response.headers.get("ETag"),
                                     attributes=self._mapped)

    # -- reads -------------------------------------------------------------------

    async def _pages(self, what: str, params: dict[str, Any]) -> AsyncIterator[list[dict]]:
        """Raw ``Resources`` pages of GET /Users, paged by 1-based startIndex/count."""
        start, previous_ids, pages = 1, set[str](), 0
        while True:
            page_what = f"{what} (startIndex {start})"
            pages += 1
            endless = too_many_pages(pages, self.config.max_pages, "lms")
            if endless:  # new ids on every page and no totalResults: it would never end
                raise ConnectorError(f"SCIM {page_what} failed: {endless}",
                                     ErrorClass.transient)
            response = await self._client.read("/Users", page_what,
                                        params={**params, "startIndex": start,
                                                "count": self.config.page_size})
            if response.status_code != 200:
                raise self._client.error(response, page_what)
            data = self._client.json_object(response, page_what)
            raw = data.get("Resources") or []
            if not isinstance(raw, list):
                raise ConnectorError(f"SCIM {page_what} failed: Resources is not a list",
                                     ErrorClass.transient)
            if not raw:
                return
            # An entry without an id cannot be read back or written: not an account.
            resources = [r for r in raw if isinstance(r, dict) and isinstance(r.get("id"), str)]
            ids = {r["id"] for r in resources}
            if previous_ids and ids <= previous_ids:
                # The server ignored startIndex and sent the same page again.
                log.warning("SCIM %s: server repeated a page at startIndex %d; stopping",
                            what, start)
                return
            yield resources
            previous_ids = ids
            total, per_page = data.get("totalResults"), data.get("itemsPerPage")
            if not isinstance(per_page, int) or per_page <= 0:
                per_page = len(raw)
            if isinstance(total, int) and start + per_page > total:
                return
            start += len(raw)  # a server may send fewer than `count` (RFC 7644 §3.4.2.4)

    async def list_accounts(self) -> AsyncIterator[Account]:
        async for page in self._pages("list of users", {}):
            for resource in page:
                yield account_from_resource(resource, attributes=self._mapped)

    async def get(self, lms_id: str) -> Account | None:
        what = f"read of id {_q(lms_id)}"
        response = await self._client.read(self._path(lms_id), what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._client.error(response, what)
        return self._account(response, what, lms_id)

    async def _search(self, attribute: str, value: str) -> list[Account]:
        # The literal is a JSON string (RFC 7644 §3.4.2.2): json.dumps escapes " and \;
        # httpx percent-encodes the whole expression.
        scim_filter = f"{attribute} eq {json.dumps(value, ensure_ascii=False)}"
        found = []
        async for page in self._pages(f"search by {attribute} {_q(value)}",
                                      {"filter": scim_filter}):
            found += [account_from_resource(r, attributes=self._mapped) for r in page
                      if resource_matches(r, attribute, value)]
        return found

    async def find_by_external_key(self, key: str) -> list[Account]:
        return await self._search("externalId", key)

    async def find_by_user_name(self, user_name: str) -> list[Account]:
        return await self._search("userName", user_name)

    async def find_by_email(self, email: str) -> list[Account]:
        return await self._search("emails.value", email)

    # -- writes ------------------------------------------------------------------

    @staticmethod
    def _path(lms_id: str) -> str:
        return "/Users/" + quote(lms_id, safe="")  # an id must not reach another path

    async def create(self, account: Account, manager_lms_id: str | None) -> Account:
        what = f"create of userName {_q(account.user_name)}"
        if account.external_key:
            what += f" (externalId {_q(account.external_key)})"
        if not account.user_name.strip():
            # RFC 7643 requires userName; some servers (scim2-server) still take "".
            raise ConnectorError(f"SCIM {what} failed: the account has no userName",
                                 ErrorClass.data)
        try:
            body = creation_body(account, manager_lms_id)
        except ValidationError as exc:
            raise refused_before_sending(exc, what) from None
        response = await self._client.send("POST", "/Users", what, body=body)
        if response.status_code not in (200, 201):
            raise self._client.error(response, what)
        created = self._account(response, what)
        other = other_person({"externalId": (account.external_key, created.external_key),
                              "userName": (account.user_name, created.user_name)})
        if other:  # recorded, it would link this person to somebody else's account
            raise ConnectorError(f"SCIM {what}: the answer names another person ({other}); "
                                 "it was not taken as theirs", ErrorClass.conflict)
        return created

    async def update(self, lms_id: str, changes: dict[str, Any], *,
                     version: str | None = None,
                     manager_lms_id: str | None = None) -> Account | None:
        if not changes:
            return None
        what = f"update of id {_q(lms_id)}"
        try:
            body = patch_body(changes, manager_lms_id)
        except ValidationError as exc:  # scim2-models checks the PatchOp against the schema
            raise refused_before_sending(exc, what) from None
        use_etag = self.config.use_etags and version is not None
        response = await self._patch(lms_id, body, version if use_etag else None, what)
        if response.status_code == 412 and use_etag:
            # Someone changed the account since we read it. HR is the system of record
            # for the managed fields, so re-read for the fresh version and apply the
            # same changes once; a second 412 means a live tug-of-war -> conflict.
            current = await self.get(lms_id)
            if current is None:
                raise ConnectorError(f"SCIM {what} failed: 404: the account disappeared "
                                     "after a version mismatch", ErrorClass.not_found,
                                     status=404)
            response = await self._patch(lms_id, body, current.version, what)
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise self._client.error(response, what)
        return self._account(response, what, lms_id)

    async def _patch(self, lms_id: str, body: dict[str, Any], version: str | None,
                     what: str) -> httpx.Response:
        headers = {"If-Match": version} if version else None
        return await self._client.send("PATCH", self._path(lms_id), what, body=body, headers=headers)

    async def delete(self, lms_id: str) -> None:
        what = f"delete of id {_q(lms_id)}"
        response = await self._client.send("DELETE", self._path(lms_id), what)
        if response.status_code not in (200, 204):
            raise self._client.error(response, what)

    # -- audiences: SCIM Groups (RFC 7643 §4.2), members changed by PATCH ----------

    async def _group_id(self, audience: Any, create: bool) -> str | None:
        """The id of the Group whose displayName is the audience's group (cached)."""
        ids = self._group_ids
        name = audience.group
        if name in ids:
            return ids[name]
        what = f"search of Group {_q(name)}"
        response = await self._client.read("/Groups", what, params={
            "filter": f"displayName eq {json.dumps(name, ensure_ascii=False)}"})
        if response.status_code != 200:
            raise self._client.error(response, what)
        found = [r for r in self._client.json_object(response, what).get("Resources") or []
                 if isinstance(r, dict) and isinstance(r.get("id"), str)
                 and r.get("displayName") == name]
        if len(found) > 1:
            raise ConnectorError(f"SCIM {what}: {len(found)} Groups have that displayName; "
                                 "rename all but one in the LMS", ErrorClass.conflict)
        if found:
            ids[name] = found[0]["id"]
        elif create and audience.create_missing:
            what = f"create of Group {_q(name)}"
            response = await self._client.send("POST", "/Groups", what, body={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name, "externalId": audience.id})
            if response.status_code not in (200, 201):
                raise self._client.error(response, what)
            created = self._client.json_object(response, what).get("id")
            if not isinstance(created, str) or not created:
                # Cached, an id-less answer would send every later change to no Group.
                raise ConnectorError(f"SCIM {what}: the answer names no Group id",
                                     ErrorClass.transient)
            ids[name] = created
        elif create:
            raise ConnectorError(f"SCIM Group {_q(name)} (audience {audience.id!r}) does not "
                                 "exist; create it in the LMS or set create_missing = true",
                                 ErrorClass.mapping)
        return ids.get(name)

    async def audience_members(self, audience: Any) -> set[str]:
        group_id = await self._group_id(audience, create=False)
        if group_id is None:
            return set()
        what = f"read of Group {_q(audience.group)} members"
        response = await self._client.read("/Groups/" + quote(group_id, safe=""), what,
                                    params={"attributes": "members"})
        if response.status_code != 200:
            raise self._client.error(response, what)
        members = self._client.json_object(response, what).get("members") or []
        return {m["value"] for m in members if isinstance(m, dict)
                and isinstance(m.get("value"), str)}

    async def _members_patch(self, audience: Any, operation: dict[str, Any], what: str) -> None:
        # One Group's changes go one PATCH at a time, those waiting sent together.
        await self._member_changes.submit(audience.group, (audience, operation, what))

    async def _members_patch_now(self, group: str,
                                 changes: list[tuple[Any, dict[str, Any], str]]) -> None:
        audience = changes[0][0]
        what = (changes[0][2] if len(changes) == 1 else
                f"{len(changes)} membership changes of Group {_q(group)}")
        group_id = await self._group_id(audience, create=True)
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [operation for _audience, operation, _what in changes]}
        response = await self._client.send("PATCH", "/Groups/" + quote(group_id or "", safe=""),
                                    what, body=body)
        if response.status_code == 404:
            self._group_ids.pop(audience.group, None)  # deleted in the LMS: look again
        if response.status_code not in (200, 204):
            raise self._client.error(response, what)

    async def add_to_audience(self, audience: Any, lms_id: str) -> None:
        await self._members_patch(audience, {"op": "add", "path": "members",
                                             "value": [{"value": lms_id}]},
                                  f"add of id {_q(lms_id)} to Group {_q(audience.group)}")

    async def remove_from_audience(self, audience: Any, lms_id: str) -> None:
        path = f"members[value eq {json.dumps(lms_id, ensure_ascii=False)}]"
        await self._members_patch(audience, {"op": "remove", "path": path},
                                  f"removal of id {_q(lms_id)} from Group {_q(audience.group)}")

    # -- doctor ------------------------------------------------------------------

    async def check_mapped_attributes(self) -> tuple[bool, str] | None:
        """Whether the server declares every attribute [mapping.attributes] names, from
        its /Schemas (RFC 7644 §4): (ok, one sentence); None when nothing is mapped."""
        if not self._mapped:
            return None
        what = "read of /Schemas"
        response = await self._client.send("GET", "/Schemas", what)
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:  # not JSON: a server without /Schemas answering its own way
            answer = None
        resources = answer.get("Resources") if isinstance(answer, dict) else None
        if not isinstance(resources, list):
            return True, (f"could not check the {len(self._mapped)} mapped attributes: the "
                          f"server offers no /Schemas ({response.status_code})")
        unknown = unknown_attributes(self._mapped, schema_attribute_names(resources))
        if unknown:
            return False, (f"the server's /Schemas does not declare {', '.join(unknown)} "
                           "(named in mapping.attributes): it would drop or refuse the "
                           "value; check the name or extend the server's schema")
        return True, f"the server declares all {len(self._mapped)} mapped attributes"

    async def check(self) -> str:
        what = "read of /ServiceProviderConfig"
        response = await self._client.send("GET", "/ServiceProviderConfig", what)
        if response.status_code != 200:
            raise self._client.error(response, what)
        try:
            spc = ServiceProviderConfig.model_validate(
                self._client.json_object(response, what), scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
                scim_policy=TOLERANT)
        except ValidationError as exc:
            raise ConnectorError(f"SCIM {what} failed: not a ServiceProviderConfig "
                                 f"({exc.errors()[0]['msg']})", ErrorClass.mapping) from None
        features = [name for name in ("patch", "filter", "etag", "bulk", "sort")
                    if getattr(getattr(spc, name), "supported", False)]
        # /ServiceProviderConfig needs no credentials (RFC 7643 §5): prove the token
        # works with the cheapest authenticated call.
        what = "credential probe (GET /Users)"
        response = await self._client.send("GET", "/Users", what, params={"count": 1})
        if response.status_code != 200:
            raise self._client.error(response, what)
        total = self._client.json_object(response, what).get("totalResults")
        users = f"; {total} user{'' if total == 1 else 's'}" if isinstance(total, int) else ""
        return f"SCIM 2.0 at {self.config.base_url} ({', '.join(features)}{users})"
