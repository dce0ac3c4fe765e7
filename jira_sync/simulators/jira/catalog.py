"""The site's fixed vocabulary (users, projects, statuses, priorities...) with Jira's lookups.

Built once from the configuration; everything here is immutable, so it is read without the
state lock. The one exception is ``switches`` (``/_sim/switches``), whose settings are each
replaced whole, never changed in place.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from jira_sync.simulators.jira.config import (
    FieldDef,
    ProjectDef,
    SimulatorConfig,
    StatusDef,
    TransitionDef,
    UserDef,
)
from jira_sync.simulators.jira.switches import Switches

# (id, key, colorName, name) as real payloads show them.
CATEGORIES = {
    "new": (2, "new", "blue-gray", "To Do"),
    "indeterminate": (4, "indeterminate", "yellow", "In Progress"),
    "done": (3, "done", "green", "Done"),
}


@dataclass(frozen=True)
class Named:
    """A priority, resolution, issue type or component: an id, a name and a description."""

    id: str
    name: str
    description: str = ""


PRIORITIES = (
    Named("1", "Highest", "This problem will block progress."),
    Named("2", "High", "Serious problem that could block progress."),
    Named("3", "Medium", "Has the potential to affect progress."),
    Named("4", "Low", "Minor problem or easily worked around."),
    Named("5", "Lowest", "Trivial problem with little or no impact on progress."),
)
DEFAULT_PRIORITY = "3"
RESOLUTIONS = (
    Named("10000", "Done", "Work has been completed on this issue."),
    Named("10001", "Won't Do", "This issue won't be actioned."),
)
_ISSUE_TYPE_IDS = {"Task": ("10003", "A small, distinct piece of work."),
                   "Bug": ("10004", "A problem or error.")}


class Catalog:
    def __init__(self, config: SimulatorConfig) -> None:
        email, token = config.credentials
        self.service = UserDef("svc", "jira-sync", email, "712020:svc-0000", token, config.pat)
        self.users = (self.service, *config.users)
        self.statuses = {s.id: s for s in config.statuses}
        self.projects = {p.key: p for p in config.projects}
        self.priorities = {p.id: p for p in PRIORITIES}
        self.resolutions = {r.id: r for r in RESOLUTIONS}
        self.issue_types = self._issue_types(config.projects)
        self.switches = Switches()
        self._done = frozenset(s.id for s in config.statuses if s.category == "done")
        self.components: dict[str, dict[str, Named]] = {}  # project key -> name -> component
        next_id = 10000
        for project in config.projects:
            self.components[project.key] = {}
            for name in project.components:
                self.components[project.key][name] = Named(str(next_id), name)
                next_id += 1
        for project in config.projects:
            for transition in project.workflow:
                unknown = {transition.to, *transition.sources} - set(self.statuses)
                if unknown:
                    raise ValueError(f"{project.key} transition {transition.id} uses unknown "
                                     f"status ids {sorted(unknown)}")

    @staticmethod
    def _issue_types(projects: tuple[ProjectDef, ...]) -> dict[str, Named]:
        types, next_id = {}, 10005
        for project in projects:
            for name in project.issue_types:
                if name in types:
                    continue
                type_id, description = _ISSUE_TYPE_IDS.get(name, (str(next_id), ""))
                if name not in _ISSUE_TYPE_IDS:
                    next_id += 1
                types[name] = Named(type_id, name, description)
        return types

    # -- lookups, each following Jira's rules for what identifies a thing ------------------

    def project(self, key_or_id: str) -> ProjectDef | None:
        """By key (case-insensitive, as Jira does) or by numeric id, as the switches leave it
        (None for a project hidden from the account)."""
        for project in self.projects.values():
            if key_or_id.upper() == project.key or key_or_id == project.id:
                return self.switches.apply(project, self._done)
        return None

    def visible_projects(self) -> list[ProjectDef]:
        """Every project the account may browse, as the switches leave it."""
        return [p for p in (self.switches.apply(p, self._done) for p in self.projects.values())
                if p is not None]

    def issue_type(self, project: ProjectDef, *, type_id: str | None = None,
                   name: str | None = None) -> Named | None:
        for type_name in project.issue_types:
            issue_type = self.issue_types[type_name]
            if issue_type.id == type_id or (name is not None and issue_type.name == name):
                return issue_type
        return None

    def priority_by_name(self, name: str) -> Named | None:
        return next((p for p in PRIORITIES if p.name.lower() == name.lower()), None)

    def resolution_by_name(self, name: str) -> Named | None:
        return next((r for r in RESOLUTIONS if r.name.lower() == name.lower()), None)

    def component(self, project: ProjectDef, *, component_id: str | None = None,
                  name: str | None = None) -> Named | None:
        for component in self.components[project.key].values():
            if component.id == component_id or component.name == name:
                return component
        return None

    def status_by_name(self, name: str) -> StatusDef | None:
        return next((s for s in self.statuses.values() if s.name.lower() == name.lower()), None)

    def user_by_account_id(self, account_id: str) -> UserDef | None:
        return next((u for u in self.users if u.account_id == account_id), None)

    def user_by_name(self, name: str) -> UserDef | None:
        """Server usernames and keys; both are the same string here."""
        return next((u for u in self.users if u.name == name), None)

    def user_by_login(self, login: str, secret: str, deployment: str) -> UserDef | None:
        """Basic credentials: Cloud logs in by email; Server by username (or email)."""
        for user in self.users:
            names = (user.email,) if deployment == "cloud" else (user.email, user.name)
            if login in names and secret == user.api_token:
                return user
        return None

    def user_by_email(self, email: str) -> UserDef | None:
        return next((u for u in self.users if u.email.lower() == email.lower()), None)

    def user_by_pat(self, token: str) -> UserDef | None:
        return next((u for u in self.users if u.pat == token), None)

    def transitions_from(self, project: ProjectDef, status_id: str) -> list[TransitionDef]:
        return [t for t in project.workflow if not t.sources or status_id in t.sources]

    def path(self, project: ProjectDef, source: str, target: str) -> list[TransitionDef] | None:
        """The fewest transitions from one status to another (workflow order breaks ties): the
        clicks a person makes to get an issue there. None when the workflow has no way."""
        previous: dict[str, tuple[str, TransitionDef] | None] = {source: None}
        queue = deque([source])
        while queue and target not in previous:
            status = queue.popleft()
            for transition in self.transitions_from(project, status):
                if transition.to not in previous:
                    previous[transition.to] = (status, transition)
                    queue.append(transition.to)
        if target not in previous:
            return None
        hops, status = [], target
        while (step := previous[status]) is not None:
            status, transition = step
            hops.append(transition)
        return hops[::-1]

    def statuses_of(self, project: ProjectDef) -> set[str]:
        """The statuses a project's workflow uses (an issue moved in keeps one of these)."""
        used = {project.initial_status}
        for transition in project.workflow:
            used |= {transition.to, *transition.sources}
        return used

    @staticmethod
    def custom_field(project: ProjectDef, field_id: str) -> FieldDef | None:
        return next((f for f in project.fields if f.id == field_id), None)
