"""Moving an issue to a status category through Jira's workflow (DESIGN.md "Workflows").

Jira only lists the transitions out of the current status, so the planner learns the graph
as it walks it, caches it per project and issue type, and takes the shortest known path to a
status of the wanted category. Ids and screens are re-read at every hop (they change when an
admin edits the workflow); the cache only decides the route. Exploration and a hop bound keep
an unknown or broken workflow from turning into an endless walk.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jira_sync.jira.client import JiraClient
from jira_sync.remote import PermanentError, TransientError

GraphKey = tuple[str, str]  # (project key, issue type id)
READ_FIELDS = ("status", "project", "issuetype")


class WorkflowBlocked(Exception):
    """No way to the target category: the link is marked blocked with ``reason`` (one line).

    ``made`` lists the transitions already made, since the issue may have moved before the
    planner found out it could not go further.
    """

    def __init__(self, reason: str, made: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.made = reason, list(made or [])


@dataclass(frozen=True)
class Edge:
    """A transition as far as routing cares: where it goes and what its screen requires.

    ``needs`` holds (field id, field name, fallback value or None) for every field that is
    required and has no default; ``resolution`` falls back to its first allowed value.
    """

    id: str
    name: str
    to: str
    needs: tuple[tuple[str, str, Any], ...]

    def missing(self, defaults: Mapping[str, Any]) -> tuple[str, str] | None:
        """The first required field nothing can fill, as (id, name)."""
        return next(((fid, name) for fid, name, fallback in self.needs
                     if fid not in defaults and fallback is None), None)

    def fields(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        return {fid: defaults.get(fid, fallback) for fid, _, fallback in self.needs}


def _edge(transition: Mapping[str, Any]) -> Edge:
    needs = []
    for fid, meta in (transition.get("fields") or {}).items():
        if not meta.get("required") or meta.get("hasDefaultValue"):
            continue
        fallback = None
        allowed = meta.get("allowedValues") or []
        if fid == "resolution" and allowed:
            first = allowed[0]
            fallback = {"name": first["name"]} if first.get("name") else {"id": str(first["id"])}
        needs.append((fid, str(meta.get("name") or fid), fallback))
    return Edge(str(transition["id"]), str(transition["name"]), str(transition["to"]["id"]),
                tuple(needs))


class WorkflowGraph:
    """What this process has learned of each workflow, keyed by (project key, issue type).

    Learning from the transitions seen costs no extra call and works for accounts that may
    not read workflow definitions; shared by all moves in the process, so the second issue of
    a project goes straight down the known path instead of exploring again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges: dict[GraphKey, dict[str, tuple[Edge, ...]]] = {}
        self._statuses: dict[GraphKey, dict[str, tuple[str, str]]] = {}  # id -> (name, cat)

    def learn(self, key: GraphKey, status_id: str, transitions: list[dict]) -> None:
        """Replace what is known out of ``status_id`` with a fresh transitions listing."""
        with self._lock:
            statuses = self._statuses.setdefault(key, {})
            for t in transitions:
                to = t["to"]
                statuses[str(to["id"])] = (str(to["name"]), to["statusCategory"]["key"])
            self._edges.setdefault(key, {})[str(status_id)] = tuple(_edge(t) for t in transitions)

    def forget(self, key: GraphKey) -> None:
        """Drop what was learned of one workflow (a listing may have raced a change)."""
        with self._lock:
            self._edges.pop(key, None)

    def see(self, key: GraphKey, status: Mapping[str, Any]) -> None:
        with self._lock:
            self._statuses.setdefault(key, {})[str(status["id"])] = (
                str(status["name"]), status["statusCategory"]["key"])

    def known(self, key: GraphKey, status_id: str) -> bool:
        with self._lock:
            return status_id in self._edges.get(key, {})

    def category(self, key: GraphKey, status_id: str) -> str | None:
        with self._lock:
            return self._statuses.get(key, {}).get(status_id, ("", None))[1]

    def route(self, key: GraphKey, start: str, goal: Callable[[str], bool],
              usable: Callable[[Edge], bool]) -> list[Edge] | None:
        """Shortest path (BFS, Jira's listing order breaks ties) to a status ``goal`` accepts."""
        with self._lock:
            edges = {s: list(e) for s, e in self._edges.get(key, {}).items()}
        paths: dict[str, list[Edge]] = {start: []}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if here != start and goal(here):
                return paths[here]
            for edge in edges.get(here, []):
                if edge.to not in paths and usable(edge):
                    paths[edge.to] = [*paths[here], edge]
                    queue.append(edge.to)
        return None


def move_to_category(client: JiraClient, issue: str, category: str, *, graph: WorkflowGraph,
                     field_defaults: Mapping[str, Any] | None = None,
                     current: dict | None = None, max_hops: int = 8,
                     before_write: Callable[[Mapping[str, Any]], None] | None = None
                     ) -> list[str]:
    """Bring ``issue`` to a status of ``category`` (new|indeterminate|done) by transitions.

    Returns the names of the transitions made. Raises WorkflowBlocked when no path is known
    or reachable, a field cannot be filled, or ``max_hops`` is spent; TransientError (not
    maybe-applied) and PermanentError propagate for the caller's retry / dead letter.
    ``before_write`` runs before each transition with the status it goes to (the caller's
    lease check, and its record of what it is about to write).
    """
    defaults = dict(field_defaults or {})
    if current is None or not all(f in (current.get("fields") or {}) for f in READ_FIELDS):
        current = client.get_issue(issue, fields=READ_FIELDS)
    fields = current["fields"]
    key: GraphKey = (str(fields["project"]["key"]),
                     str(fields["issuetype"].get("id") or fields["issuetype"]["name"]))
    status = fields["status"]
    start_name = str(status["name"])
    made: list[str] = []
    tried: list[str] = []
    visited: set[str] = set()
    hops, replanned, relearned = 0, False, False
    while True:
        graph.see(key, status)
        here = str(status["id"])
        if status["statusCategory"]["key"] == category:
            return made
        visited.add(here)
        if hops >= max_hops:
            raise WorkflowBlocked(f"no status in category {category!r} within {max_hops} "
                                  f"transitions from {start_name!r} (tried: "
                                  f"{', '.join(tried)})", made)
        available = client.transitions(issue)  # fresh: ids and screens must be current
        graph.learn(key, here, available)
        try:
            edge = _next_hop(graph, key, here, category, visited, defaults, start_name, tried,
                             made)
        except WorkflowBlocked:
            if relearned:
                raise
            # A listing taken while someone else moved the issue is learned under the wrong
            # status: before saying there is no path, forget the workflow and explore afresh.
            relearned = True
            graph.forget(key)
            graph.learn(key, here, available)
            edge = _next_hop(graph, key, here, category, visited, defaults, start_name, tried,
                             made)
        to = next(t["to"] for t in available if str(t["id"]) == edge.id)
        if before_write is not None:
            before_write(to)
        try:
            client.transition(issue, edge.id, edge.fields(defaults) or None)
        except TransientError as exc:
            if not exc.maybe_applied:
                raise
            # It may have gone through: carry on from wherever the issue really is.
            hops += 1
            status = client.get_issue(issue, fields=("status",))["fields"]["status"]
            if str(status["id"]) == edge.to != here:
                made.append(edge.name)
                tried.append(f"{edge.name} -> {to['name']}")
            continue
        except PermanentError as exc:
            # A 400 means the screen or a condition changed under us: one fresh look.
            if exc.status != 400 or replanned:
                raise
            replanned = True
            status = client.get_issue(issue, fields=("status",))["fields"]["status"]
            continue
        hops += 1
        made.append(edge.name)
        tried.append(f"{edge.name} -> {to['name']}")
        status = to


def _next_hop(graph: WorkflowGraph, key: GraphKey, here: str, category: str,
              visited: set[str], defaults: Mapping[str, Any], start_name: str,
              tried: list[str], made: list[str]) -> Edge:
    """The first edge of the best plan: a known fillable path, else exploring the nearest
    unknown status; a path held up only by an unfillable field names that field."""
    def reaches(status_id: str) -> bool:
        return graph.category(key, status_id) == category

    def unexplored(status_id: str) -> bool:
        return status_id not in visited and not graph.known(key, status_id)

    def fillable(edge: Edge) -> bool:
        return edge.missing(defaults) is None

    for goal, usable in ((reaches, fillable), (unexplored, fillable),
                         (reaches, None), (unexplored, None)):
        path = graph.route(key, here, goal, usable or (lambda _edge: True))
        if path is None:
            continue
        if usable is None:  # only an unfillable transition leads on: say which field
            edge, (fid, name) = next((e, m) for e in path if (m := e.missing(defaults)))
            raise WorkflowBlocked(f"transition {edge.name!r} requires field {fid!r} ({name}), "
                                  "which has no configured default", made)
        return path[0]
    raise WorkflowBlocked(f"no known path from {start_name!r} to a status in category "
                          f"{category!r} (tried: {', '.join(tried) or 'no transition'})", made)
