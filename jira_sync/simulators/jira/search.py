"""What JQL clauses mean against stored issues, with Jira's value checks.

Jira validates values before searching: an unknown project, status or issue key is a 400, not
an empty result (Server also checks issue ids; Cloud lets an unknown id match nothing). Those
checks run against the live store, while matching runs against what the index has seen (see
``IssueStore.search``). A Server search sent with ``validateQuery=false`` gets each of those
errors back as a warning instead, and the value matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from jira_sync.simulators.jira.catalog import CATEGORIES, Catalog
from jira_sync.simulators.jira.jql import Bool, Clause, JqlError, Query, Value, parse_date
from jira_sync.simulators.jira.model import Issue

Predicate = Callable[[Issue], bool]
_EQUALITY = ("=", "!=", "in", "not in")
_EMPTY = ("is", "is not")
_ORDERING = ("=", "!=", ">", ">=", "<", "<=")
_SORTS: dict[str, Callable[[Issue], object]] = {
    "updated": lambda i: i.updated, "created": lambda i: i.created,
    "key": lambda i: (i.project.key, i.number), "issuekey": lambda i: (i.project.key, i.number),
    "id": lambda i: int(i.id),
}
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_]*)-(\d+)")


class Compiler:
    def __init__(self, catalog: Catalog, live: dict[str, Issue], now: datetime,
                 cloud: bool, *, validate: bool = True) -> None:
        self.catalog, self.live, self.now, self.cloud = catalog, live, now, cloud
        self.validate = validate
        self.warnings: list[str] = []

    def predicate(self, query: Query) -> Predicate:
        return self._node(query.where) if query.where is not None else (lambda issue: True)

    def sort(self, query: Query, issues: list[Issue]) -> list[Issue]:
        ordered = sorted(issues, key=lambda i: int(i.id))
        sorts = query.order_by or ()
        if not sorts:
            return sorted(ordered, key=lambda i: (i.created, int(i.id)), reverse=True)
        for sort in reversed(sorts):
            if sort.field not in _SORTS:
                raise JqlError(f"Field '{sort.field}' does not exist or you do not have "
                               "permission to view it.")
            ordered.sort(key=_SORTS[sort.field], reverse=sort.descending)
        return ordered

    def _node(self, node: Clause | Bool) -> Predicate:
        if isinstance(node, Clause):
            return self._clause(node)
        parts = [self._node(part) for part in node.parts]
        if node.op == "and":
            return lambda issue: all(p(issue) for p in parts)
        if node.op == "or":
            return lambda issue: any(p(issue) for p in parts)
        return lambda issue: not parts[0](issue)

    def _clause(self, clause: Clause) -> Predicate:
        handlers: dict[str, tuple[tuple[str, ...], Callable[[Clause], Predicate]]] = {
            "project": (_EQUALITY, self._project), "labels": ((*_EQUALITY, *_EMPTY), self._labels),
            "key": (_EQUALITY, self._key), "issuekey": (_EQUALITY, self._key),
            "id": ((*_ORDERING, "in", "not in"), self._id), "status": (_EQUALITY, self._status),
            "statuscategory": (_EQUALITY, self._category),
            "issuetype": (_EQUALITY, self._issue_type), "type": (_EQUALITY, self._issue_type),
            "assignee": ((*_EQUALITY, *_EMPTY), self._assignee),
            "updated": (_ORDERING, self._date), "created": (_ORDERING, self._date),
            "summary": (("~", "!~"), self._summary),
        }
        if clause.field not in handlers:
            raise JqlError(f"Field '{clause.field}' does not exist or you do not have "
                           "permission to view it.")
        operators, handler = handlers[clause.field]
        if clause.operator not in operators:
            raise JqlError(f"The operator '{clause.operator.upper()}' is not supported by the "
                           f"'{clause.field}' field.")
        return handler(clause)

    # -- membership fields -------------------------------------------------------------------

    @staticmethod
    def _member(clause: Clause, accepted: set, value_of: Callable[[Issue], object]) -> Predicate:
        if clause.operator in ("=", "in"):
            return lambda issue: value_of(issue) in accepted
        return lambda issue: value_of(issue) not in accepted

    def _missing(self, message: str) -> None:
        """A value that does not exist: Jira's 400, or a warning when not validating (the
        value then matches nothing)."""
        if self.validate:
            raise JqlError(message)
        self.warnings.append(message)

    def _unknown(self, clause: Clause, value: Value) -> None:
        self._missing(f"The value '{value.text}' does not exist for the field "
                      f"'{clause.field}'.")

    def _project(self, clause: Clause) -> Predicate:
        keys = set()
        for value in clause.values:
            project = self.catalog.project(value.text)
            if project is None:
                self._unknown(clause, value)
                continue
            keys.add(project.key)
        return self._member(clause, keys, lambda issue: issue.project.key)

    def _status(self, clause: Clause) -> Predicate:
        ids = set()
        for value in clause.values:
            status = self.catalog.statuses.get(value.text) or self.catalog.status_by_name(
                value.text)
            if status is None:
                self._unknown(clause, value)
                continue
            ids.add(status.id)
        return self._member(clause, ids, lambda issue: issue.status.id)

    def _category(self, clause: Clause) -> Predicate:
        keys = set()
        for value in clause.values:
            key = next((k for k, (cid, _, _, name) in CATEGORIES.items()
                        if value.text.lower() in (k, name.lower(), str(cid))), None)
            if key is None:
                self._unknown(clause, value)
                continue
            keys.add(key)
        return self._member(clause, keys, lambda issue: issue.status.category)

    def _issue_type(self, clause: Clause) -> Predicate:
        names = set()
        for value in clause.values:
            found = next((t for t in self.catalog.issue_types.values()
                          if value.text in (t.id, t.name)), None)
            if found is None:
                self._unknown(clause, value)
                continue
            names.add(found.name)
        return self._member(clause, names, lambda issue: issue.issue_type.name)

    def _assignee(self, clause: Clause) -> Predicate:
        if clause.operator in _EMPTY:
            empty = clause.operator == "is"
            return lambda issue: (issue.assignee is None) == empty
        users = set()
        for value in clause.values:
            found = next((u for u in self.catalog.users
                          if value.text in (u.account_id if self.cloud else u.name, u.email)),
                         None)
            if found is None:
                self._unknown(clause, value)
                continue
            users.add(found.name)
        return self._member(clause, users,
                            lambda issue: issue.assignee.name if issue.assignee else None)

    def _labels(self, clause: Clause) -> Predicate:
        if clause.operator in _EMPTY or clause.values[0].empty:
            empty = clause.operator in ("is", "=")
            return lambda issue: (not issue.labels) == empty
        wanted = {v.text for v in clause.values}
        if clause.operator in ("=", "in"):
            return lambda issue: bool(wanted & set(issue.labels))
        # Jira's quirk: "labels != x" never matches an issue without labels.
        return lambda issue: bool(issue.labels) and not wanted & set(issue.labels)

    def _key(self, clause: Clause) -> Predicate:
        """Keys as Jira resolves them: the current one, or one the issue had before a move."""
        ids = set()
        for value in clause.values:
            match = _KEY.fullmatch(value.text)
            if match is None or self.catalog.project(match[1]) is None:
                self._missing(f"The issue key '{value.text}' for field '{clause.field}' is "
                              "invalid.")
                continue
            key = value.text.upper()
            issue = next((i for i in self.live.values()
                          if i.key == key or key in i.former_keys), None)
            if issue is None:
                self._missing(f"An issue with key '{value.text}' does not exist for field "
                              f"'{clause.field}'.")
                continue
            ids.add(issue.id)
        return self._member(clause, ids, lambda issue: issue.id)

    def _id(self, clause: Clause) -> Predicate:
        numbers = []
        for value in clause.values:
            if not value.text.isdigit():
                raise JqlError(f"The value '{value.text}' is not a valid issue id.")
            if clause.operator in _EQUALITY and not self.cloud and value.text not in self.live:
                self._missing(f"A value with ID '{value.text}' does not exist for the field "
                              f"'{clause.field}'.")
                continue
            numbers.append(int(value.text))
        if clause.operator in _EQUALITY:
            return self._member(clause, set(numbers), lambda issue: int(issue.id))
        return _compare(clause.operator, numbers[0], lambda issue: int(issue.id))

    def _date(self, clause: Clause) -> Predicate:
        moment = parse_date(clause.values[0], clause.field, self.now)
        attribute = clause.field
        return _compare(clause.operator, moment, lambda issue: getattr(issue, attribute))

    def _summary(self, clause: Clause) -> Predicate:
        words = clause.values[0].text.lower().split()
        wanted = clause.operator == "~"
        return lambda issue: all(w in issue.summary.lower() for w in words) == wanted


def _compare(operator: str, bound: object, value_of: Callable[[Issue], object]) -> Predicate:
    tests = {"=": lambda v: v == bound, "!=": lambda v: v != bound, ">": lambda v: v > bound,
             ">=": lambda v: v >= bound, "<": lambda v: v < bound, "<=": lambda v: v <= bound}
    test = tests[operator]
    return lambda issue: test(value_of(issue))
