"""Reading ``fields`` / ``update`` as Jira does: per screen, per deployment, all errors at once.

Every rule here is a rule real Jira enforces; the simulator's value is that it refuses what Jira
refuses (a plain-string description on v3, a label with a space, a field not on the screen...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jira_sync.simulators.jira import adf
from jira_sync.simulators.jira.catalog import Catalog, Named
from jira_sync.simulators.jira.config import FieldDef, ProjectDef, UserDef
from jira_sync.simulators.jira.errors import JiraError, bad_request
from jira_sync.simulators.jira.switches import CREATE_DENIED

TEXT_LIMIT = 32767
SYSTEM_EDIT_SCREEN = ("summary", "description", "labels", "priority", "components", "assignee",
                      "reporter")
SYSTEM_CREATE_SCREEN = ("project", "issuetype", *SYSTEM_EDIT_SCREEN)
_ARRAY_FIELDS = ("labels", "components")
NOT_A_DOCUMENT = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


class _Invalid(ValueError):
    pass


def not_on_screen(field_id: str) -> str:
    return f"Field '{field_id}' cannot be set. It is not on the appropriate screen, or unknown."


@dataclass
class Draft:
    project: ProjectDef
    issue_type: Named
    values: dict[str, Any]
    properties: dict[str, Any]


class FieldReader:
    def __init__(self, catalog: Catalog, deployment: str) -> None:
        self.catalog, self.cloud = catalog, deployment == "cloud"

    # -- whole requests ----------------------------------------------------------------------

    def create(self, body: Any) -> Draft:
        fields, update = _parts(body)
        project = self._project(fields.get("project"))
        if project.key in self.catalog.switches.deny_create:
            raise bad_request({"project": CREATE_DENIED})
        issue_type = self._issue_type(project, fields.get("issuetype"))
        # project and issuetype are read above, and only from "fields".
        screen = (*SYSTEM_EDIT_SCREEN, *(f.id for f in project.fields))
        rest = {k: v for k, v in fields.items() if k not in ("project", "issuetype")}
        values, errors = self._read(project, rest, update, screen, {"labels": [], "components": []})
        if not str(values.get("summary") or "").strip() and "summary" not in errors:
            errors["summary"] = "You must specify a summary of the issue."
        for custom in project.fields:
            if custom.required and values.get(custom.id) in (None, "") and custom.id not in errors:
                errors[custom.id] = f"{custom.name} is required."
        if errors:
            raise bad_request(errors)
        return Draft(project, issue_type, values, self.properties(body.get("properties")))

    def edit(self, body: Any, project: ProjectDef, current: dict[str, Any]) -> dict[str, Any]:
        fields, update = _parts(body)
        screen = (*SYSTEM_EDIT_SCREEN, *(f.id for f in project.fields))
        values, errors = self._read(project, fields, update, screen, current)
        if "summary" in values and not str(values["summary"] or "").strip():
            errors.setdefault("summary", "You must specify a summary of the issue.")
        if errors:
            raise bad_request(errors)
        return values

    def transition(self, body: dict, project: ProjectDef, screen: tuple[str, ...],
                   required: tuple[str, ...]) -> dict[str, Any]:
        fields, update = _parts(body)
        values, errors = self._read(project, fields, update, screen, {})
        for field_id in required:
            if values.get(field_id) is None and field_id not in errors:
                errors[field_id] = f"{field_id.capitalize()} is required."
        if errors:
            raise bad_request(errors)
        return values

    def comment_body(self, body: Any) -> Any:
        if not isinstance(body, dict):
            raise bad_request(None, "The request body must be a JSON object.")
        value = body.get("body")
        if value in (None, "") or (isinstance(value, dict) and not value.get("content")):
            raise bad_request({"comment": "Comment body can not be empty!"})
        try:
            return self._rich_text(value)
        except _Invalid as exc:
            raise bad_request({"comment": str(exc)}) from None

    def properties(self, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise bad_request(None, "'properties' must be a list of {key, value} objects.")
        out = {}
        for entry in raw:
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not 0 < len(key) <= 255:
                raise bad_request(None, "The property key must be 1 to 255 characters long.")
            out[key] = self.property_value(entry.get("value"))
        return out

    @staticmethod
    def property_value(value: Any) -> Any:
        if value is None or value == {} or value == []:
            raise bad_request(None, "The property value cannot be empty.")
        if len(json.dumps(value)) > 32768:
            raise bad_request(None, "The property value is too long (maximum 32768 characters).")
        return value

    # -- fields and update ---------------------------------------------------------------------

    def _read(self, project: ProjectDef, fields: dict, update: dict, screen: tuple[str, ...],
              current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for field_id in fields.keys() & update.keys():
            errors[field_id] = (f"Field '{field_id}' cannot be set in both 'fields' and "
                                "'update' in the same request.")
        readers = (
            (fields, lambda field_id, raw: self._value(project, field_id, raw)),
            (update, lambda field_id, raw: self._operations(project, field_id, raw,
                                                            current.get(field_id))),
        )
        for given, read in readers:
            for field_id, raw in given.items():
                if field_id in errors:
                    continue
                if field_id not in screen:
                    errors[field_id] = not_on_screen(field_id)
                    continue
                try:
                    values[field_id] = read(field_id, raw)
                except _Invalid as exc:
                    errors[field_id] = str(exc)
        return values, errors

    def _operations(self, project: ProjectDef, field_id: str, operations: Any, current: Any) -> Any:
        if not isinstance(operations, list):
            raise _Invalid(f"The operations for field '{field_id}' must be a list.")
        value = list(current or []) if field_id in _ARRAY_FIELDS else current
        for operation in operations:
            if not isinstance(operation, dict) or len(operation) != 1:
                raise _Invalid(f"Each operation on '{field_id}' must be one of set, add, remove.")
            (verb, raw), = operation.items()
            supported = ("set", "add", "remove") if field_id in _ARRAY_FIELDS else ("set",)
            if verb not in supported:
                names = ", ".join(f"'{s}'" for s in supported)
                raise _Invalid(f"Field '{field_id}' does not support operation '{verb}' "
                               f"Supported operation(s) are: {names}")
            if verb == "set":
                value = self._value(project, field_id, raw)
                continue
            item = self._item(project, field_id, raw)
            if verb == "add" and item not in value:
                value.append(item)
            elif verb == "remove" and item in value:
                value.remove(item)
        return value

    def _value(self, project: ProjectDef, field_id: str, raw: Any) -> Any:
        if field_id == "summary":
            return self._summary(raw)
        if field_id == "description":
            return self._rich_text(raw)
        if field_id in _ARRAY_FIELDS:
            if raw is None:
                return []
            if not isinstance(raw, list):
                raise _Invalid("data was not an array")
            return list(dict.fromkeys(self._item(project, field_id, item) for item in raw))
        if field_id == "priority":
            return self._priority(raw)
        if field_id in ("assignee", "reporter"):
            return self._user(raw)
        if field_id == "resolution":
            return self._resolution(raw)
        return self._custom(Catalog.custom_field(project, field_id), raw)

    def _item(self, project: ProjectDef, field_id: str, raw: Any) -> Any:
        return self._label(raw) if field_id == "labels" else self._component(project, raw)

    # -- single values -----------------------------------------------------------------------

    def _summary(self, raw: Any) -> str:
        if raw is None:
            raise _Invalid("You must specify a summary of the issue.")
        if not isinstance(raw, str):
            raise _Invalid("Operation value must be a string")
        if len(raw) > 255:
            raise _Invalid("Summary can't exceed 255 characters." if self.cloud
                           else "Summary must be less than 255 characters.")
        if "\n" in raw or "\r" in raw:
            raise _Invalid("The summary is invalid because it contains newline characters.")
        return raw

    def _rich_text(self, raw: Any) -> Any:
        if raw is None:
            return None
        if self.cloud:
            if not isinstance(raw, dict):
                raise _Invalid(NOT_A_DOCUMENT)
            try:
                adf.validate(raw)
            except adf.AdfError as exc:
                raise _Invalid(f"INVALID_INPUT: {exc}") from None
        elif not isinstance(raw, str):
            raise _Invalid("Operation value must be a string")
        if adf.stored_length(raw) > TEXT_LIMIT:
            raise _Invalid("The entered text is too long. It exceeds the allowed limit of "
                           "32,767 characters.")
        return raw

    def _label(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw:
            raise _Invalid("A label must be a non-empty string.")
        if any(char.isspace() for char in raw):
            raise _Invalid(f"The label '{raw}' can't contain spaces." if self.cloud
                           else f"The label '{raw}' contains spaces which is invalid.")
        if len(raw) > 255:
            raise _Invalid(f"The label '{raw}' exceeds the maximum length for a single label "
                           "of 255 characters.")
        return raw

    def _component(self, project: ProjectDef, raw: Any) -> Named:
        if not isinstance(raw, dict):
            raise _Invalid("Component must be an object with 'id' or 'name'.")
        if "id" in raw:
            found = self.catalog.component(project, component_id=str(raw["id"]))
            if found is None:
                raise _Invalid(f"Component with id '{raw['id']}' does not exist.")
            return found
        found = self.catalog.component(project, name=raw.get("name"))
        if found is None:
            raise _Invalid(f"Component name '{raw.get('name')}' is not valid")
        return found

    def _priority(self, raw: Any) -> Named:
        if isinstance(raw, dict) and "id" in raw and str(raw["id"]) in self.catalog.priorities:
            return self.catalog.priorities[str(raw["id"])]
        if isinstance(raw, dict) and isinstance(raw.get("name"), str) and "id" not in raw:
            found = self.catalog.priority_by_name(raw["name"])
            if found is None:
                raise _Invalid(f"Priority name '{raw['name']}' is not valid")
            return found
        raise _Invalid("Could not find valid 'id' or 'name' in priority object.")

    def _resolution(self, raw: Any) -> Named:
        if isinstance(raw, dict) and str(raw.get("id")) in self.catalog.resolutions:
            return self.catalog.resolutions[str(raw["id"])]
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            found = self.catalog.resolution_by_name(raw["name"])
            if found is not None:
                return found
        raise _Invalid("Could not find valid 'id' or 'name' in resolution object.")

    def user(self, raw: Any) -> UserDef | None:
        """A user reference: ``{"accountId"|"id"}`` on Cloud, ``{"name"|"key"}`` on Server."""
        try:
            return self._user(raw)
        except _Invalid as exc:
            raise JiraError(400, [str(exc)]) from None

    def _user(self, raw: Any) -> UserDef | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise _Invalid("The user must be given as an object.")
        if self.cloud:
            account_id = raw.get("accountId", raw.get("id"))
            if account_id is None and "accountId" in raw:
                return None
            if not isinstance(account_id, str):
                raise _Invalid("expected 'accountId' property to be a string")
            found = self.catalog.user_by_account_id(account_id)
            if found is None:
                raise _Invalid("Specified user does not exist or you do not have required "
                               "permissions")
            return found
        name = raw.get("name", raw.get("key"))
        if name is None and "name" in raw:
            return None
        if not isinstance(name, str):
            raise _Invalid("expected 'name' property to be a string")
        found = self.catalog.user_by_name(name)
        if found is None:
            raise _Invalid(f"User '{name}' does not exist.")
        return found

    def _custom(self, custom: FieldDef | None, raw: Any) -> Any:
        if custom is None or raw is None:
            return None
        if custom.kind == "textarea":
            return self._rich_text(raw)
        if custom.kind == "number":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise _Invalid("Operation value must be a number")
            return raw
        if custom.kind == "option":
            value = raw.get("value") if isinstance(raw, dict) else None
            if value not in custom.options:
                raise _Invalid(f"Option value '{value}' is not valid")
            return value
        if not isinstance(raw, str):
            raise _Invalid("Operation value must be a string")
        if len(raw) > 255:
            raise _Invalid("The entered text is too long. It exceeds the allowed limit of "
                           "255 characters.")
        return raw

    # -- project and issue type ------------------------------------------------------------

    def _project(self, raw: Any) -> ProjectDef:
        ref = None
        if isinstance(raw, dict):
            ref = raw.get("key") or raw.get("id")
        project = self.catalog.project(str(ref)) if ref is not None else None
        if project is None:
            raise bad_request({"project": "Specify a valid project ID or key"})
        return project

    def _issue_type(self, project: ProjectDef, raw: Any) -> Named:
        if not isinstance(raw, dict) or not (raw.get("id") or raw.get("name")):
            raise bad_request({"issuetype": "Specify an issue type"})
        found = self.catalog.issue_type(project, type_id=str(raw.get("id")) if "id" in raw
                                        else None, name=raw.get("name"))
        if found is None:
            raise bad_request({"issuetype": "The issue type selected is invalid."})
        return found


def _parts(body: Any) -> tuple[dict, dict]:
    if not isinstance(body, dict):
        raise bad_request(None, "The request body must be a JSON object.")
    fields, update = body.get("fields") or {}, body.get("update") or {}
    if not isinstance(fields, dict) or not isinstance(update, dict):
        raise bad_request(None, "'fields' and 'update' must be JSON objects.")
    return fields, update
