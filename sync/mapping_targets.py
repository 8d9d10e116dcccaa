"""Which target attributes a mapping may name, per LMS type (pure).

The built-in account fields exist on every target. Beyond them, a SCIM target takes any
core, enterprise or custom extension attribute by its SCIM name (what the server knows is
checked by `doctor` against its /Schemas); a Canvas target takes the user and login fields
of sync.connectors.canvas_attributes; Moodle takes custom profile fields as
profile_field_<shortname> (docs/moodle.md §8).
"""

from __future__ import annotations

from typing import Any

from rostersync.sync.connectors.canvas_attributes import check_canvas_attributes
from rostersync.sync.connectors.moodle_config import check_moodle_attributes
from rostersync.sync.connectors.scim_payload import PATCH_PATHS

# SCIM paths the built-in fields already write (their own names are the ones to map).
_SCIM_BUILT_IN = {path.lower(): field for field, path in PATCH_PATHS.items()}
_SCIM_BUILT_IN.update({"emails.value": "email", "name.formatted": "display_name",
                       "id": "the LMS's own id", "meta": "the LMS's own metadata"})


def check_targets(config: Any) -> None:
    """Refuses an attribute the target cannot hold or that a built-in field already
    writes; hands a SCIM target the attributes it must read back."""
    custom = config.mapping.compiled().custom
    if not custom:
        return
    lms = config.lms
    if lms.type == "canvas":
        check_canvas_attributes(custom, employee_number_field=lms.employee_number_field,
                                authentication_provider_id=lms.authentication_provider_id)
        lms._mapped_attributes = tuple(custom)
        return
    if lms.type == "moodle":
        check_moodle_attributes(custom, lms.fields)
        lms._mapped_attributes = tuple(custom)
        return
    if lms.type != "scim":
        raise ValueError(
            f"key 'mapping.attributes.{custom[0]}': a {lms.type} target has no attribute "
            f"of that name; map the built-in fields (docs/mapping.md) for {lms.type}")
    for name in custom:
        owner = _SCIM_BUILT_IN.get(name.lower())
        if owner is not None:
            raise ValueError(
                f"key 'mapping.attributes.{name}': that SCIM attribute is written by "
                f"{owner}; map it under that name")
        if name.startswith("urn:") and name.count(":") < 2:
            raise ValueError(f"key 'mapping.attributes.{name}': an extension attribute is "
                             "named by its schema URN, a colon and the attribute")
    lms._mapped_attributes = tuple(custom)


def schema_attribute_names(resources: list[Any]) -> set[str]:
    """Every attribute name a SCIM /Schemas answer declares (RFC 7643 §7): a core
    attribute by its plain name ("userName", "name.givenName") and URN-qualified, an
    extension attribute URN-qualified ("urn:...:User:costCenter")."""
    out: set[str] = set()
    for schema in resources:
        if not isinstance(schema, dict) or not isinstance(schema.get("id"), str):
            continue
        urn = schema["id"]
        core = urn.startswith("urn:ietf:params:scim:schemas:core:")
        for attribute in schema.get("attributes") or []:
            if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str):
                continue
            names = [attribute["name"]]
            names += [f"{attribute['name']}.{sub['name']}"
                      for sub in attribute.get("subAttributes") or []
                      if isinstance(sub, dict) and isinstance(sub.get("name"), str)]
            for name in names:
                out.add(f"{urn}:{name}")
                if core:
                    out.add(name)
    return out


def unknown_attributes(names: tuple[str, ...], known: set[str]) -> list[str]:
    """The mapped attributes a SCIM server's /Schemas does not declare (compared without
    regard to case, as SCIM attribute names are)."""
    folded = {k.lower() for k in known}
    return [n for n in names if n.lower() not in folded]
