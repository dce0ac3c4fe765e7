"""Switches that break the site the way operators' sites break (``/_sim/switches``).

Each one changes what the service account meets through the whole REST API, not one answer:
a project hidden from it is absent from the project list, 404 to read, unknown to create
metadata, JQL and creates alike. Test Connection is tested against them, so each must look
to a client exactly as the real failure does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jira_sync.simulators.jira.config import FieldDef, ProjectDef, TransitionDef

# What a create screen gains under ``require_field``: a custom field nothing fills by itself.
REQUIRED_FIELD = FieldDef("customfield_10900", "Cost Centre", required=True)
CREATE_DENIED = "You do not have permission to create issues in this project."


@dataclass
class Switches:
    """Every switch off is the site as configured; each project-scoped switch holds the keys
    of the projects it breaks (upper-case, as Jira stores keys)."""

    revoke_token: bool = False  # the service account's API token and PAT are refused (401)
    hide_projects: frozenset[str] = frozenset()  # the account may not browse them
    remove_issue_types: frozenset[str] = frozenset()  # issue type names gone from every project
    deny_create: frozenset[str] = frozenset()  # no Create Issues permission
    require_field: frozenset[str] = frozenset()  # the create screen requires REQUIRED_FIELD
    no_done_path: frozenset[str] = frozenset()  # the workflow has no status of category done

    def as_dict(self) -> dict[str, Any]:
        return {name: value if isinstance(value, bool) else sorted(value)
                for name, value in dataclasses.asdict(self).items()}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set the switches named in ``changes``, all or none (ValueError says what is wrong)."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"Unknown switches: {', '.join(unknown)}. Known: {', '.join(known)}.")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "revoke_token":
                if not isinstance(value, bool):
                    raise ValueError("revoke_token: true or false")
                values[name] = value
            elif not _strings(value):
                raise ValueError(f"{name}: a list of names")
            elif name == "remove_issue_types":
                values[name] = frozenset(value)
            else:
                values[name] = frozenset(key.upper() for key in value)
        for name, value in values.items():
            setattr(self, name, value)

    def reset(self) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, item.default)

    def apply(self, project: ProjectDef, done: frozenset[str]) -> ProjectDef | None:
        """The project as the service account sees it now; None when it may not browse it.
        ``done`` holds the ids of the site's statuses of category done."""
        if project.key in self.hide_projects:
            return None
        changes: dict[str, Any] = {}
        if self.remove_issue_types & set(project.issue_types):
            changes["issue_types"] = tuple(t for t in project.issue_types
                                           if t not in self.remove_issue_types)
        if project.key in self.require_field:
            changes["fields"] = (*project.fields, REQUIRED_FIELD)
        if project.key in self.no_done_path:
            changes["workflow"] = _without(project.workflow, done)
        return dataclasses.replace(project, **changes) if changes else project


def _without(workflow: tuple[TransitionDef, ...],
             statuses: frozenset[str]) -> tuple[TransitionDef, ...]:
    """The workflow with ``statuses`` taken out: no transition into or out of them."""
    return tuple(t for t in workflow
                 if t.to not in statuses and not set(t.sources) & statuses)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)
