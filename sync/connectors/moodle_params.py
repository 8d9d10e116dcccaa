"""What a Moodle user write sends, built before sending (pure but for the random
password): shared by the single-user path and the batches, so both send the same."""

from __future__ import annotations

import json
import secrets
from typing import Any

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_wire import Refused, user_fields
from rostersync.sync.models import Account, ErrorClass


def quoted(value: Any) -> str:
    """A value quoted for a message, as Moodle would show it."""
    return json.dumps(value, ensure_ascii=False)


def fields_or_refusal(changes: dict[str, Any], config: MoodleTargetConfig,
                      label: str) -> tuple[dict[str, Any], list[str]]:
    """``user_fields``, a value Moodle cannot take refused as a data error naming it."""
    try:
        return user_fields(changes, config)
    except Refused as exc:
        raise ConnectorError(f"{label} refused before sending: {exc}", ErrorClass.data,
                             code="refused") from None


def new_password(config: MoodleTargetConfig) -> dict[str, Any]:
    """How create_users gets the password it insists on (``lms.new_password``)."""
    mode = config.new_password
    if mode == "createpassword":
        return {"createpassword": 1}
    if mode == "random":
        # Never stored nor shown: SSO sites never use it, but create_users wants one.
        # Upper, lower, digit and symbol satisfy Moodle's default password policy.
        return {"password": "Rs1!" + secrets.token_urlsafe(24)}
    return {}


def creation_params(account: Account, config: MoodleTargetConfig) -> dict[str, Any]:
    """What a create sends for one account (raises ConnectorError before sending)."""
    label = (f"Moodle core_user_create_users (username {_plain(account.user_name)}, "
             f"idnumber {_plain(account.external_key)})")
    if not account.external_key:
        raise ConnectorError(f"{label} refused before sending: the account has no HRIS "
                             "key for idnumber", ErrorClass.data)
    wanted = {name: getattr(account, name) for name in (
        "user_name", "given_name", "family_name", "email", "department", "external_key",
        *config.fields)}
    wanted.update((name, value) for name, value in account.attributes.items()
                  if name in config.mapped_attributes)
    params, _homeless = fields_or_refusal(wanted, config, label)  # homeless: drift
    params = {k: v for k, v in params.items() if v not in ("", [])}
    params.update(auth=config.auth, **new_password(config))
    if config.institution:
        params["institution"] = config.institution
    return params


def sent_fields(params: dict[str, Any]) -> dict[str, Any]:
    """What a read-back compares: everything sent but the password, which no answer
    shows."""
    return {k: v for k, v in params.items() if k not in ("password", "createpassword")}


def _plain(value: Any) -> str:
    return '"' + str(value) + '"'
