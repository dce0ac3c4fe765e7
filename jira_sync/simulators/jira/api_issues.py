"""Issue, transition, comment, assignee, changelog, bulk-fetch and entity-property endpoints."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from jira_sync.simulators.jira.api_meta import field_meta
from jira_sync.simulators.jira.config import TransitionDef
from jira_sync.simulators.jira.errors import JiraError, bad_request
from jira_sync.simulators.jira.model import Issue
from jira_sync.simulators.jira.render import FieldSelection, Renderer
from jira_sync.simulators.jira.simulator import Simulator, json_body

CHANGELOG_PAGE = 100  # the default and largest page of GET /issue/{id}/changelog
BULK_FETCH_KEYS = ("issueIdsOrKeys", "fields", "expand", "properties", "fieldsByKeys")


def _list_param(name: str) -> list[str]:
    return [part for value in request.args.getlist(name) for part in value.split(",") if part]


def _no_content() -> Response:
    return Response(status=204)


def register(bp: Blueprint, sim: Simulator) -> None:
    store = sim.store

    @bp.post("/issue")
    def create_issue():
        issue = store.create(json_body(), sim.actor())
        self_url = f"{sim.renderer().rest}/issue/{issue.id}"
        return jsonify({"id": issue.id, "key": issue.key, "self": self_url}), 201

    @bp.post("/issue/bulk")
    def create_issues():
        created, errors = store.bulk_create(json_body(), sim.actor())
        rest = sim.renderer().rest
        body = {"issues": [{"id": i.id, "key": i.key, "self": f"{rest}/issue/{i.id}"}
                           for i in created], "errors": errors}
        return jsonify(body), 201 if created or not errors else 400

    @bp.get("/issue/<id_or_key>")
    def get_issue(id_or_key: str):
        issue = store.find(id_or_key)
        selection = FieldSelection.parse(request.args.getlist("fields"), "*all")
        return jsonify(sim.renderer().issue(issue, selection, _list_param("properties"),
                                            changelog="changelog" in _list_param("expand")))

    @bp.put("/issue/<id_or_key>")
    def edit_issue(id_or_key: str):
        issue = store.edit(id_or_key, json_body(), sim.actor())
        if request.args.get("returnIssue", "").lower() == "true":
            return jsonify(sim.renderer().issue(issue, FieldSelection(["*all"])))
        return _no_content()

    @bp.delete("/issue/<id_or_key>")
    def delete_issue(id_or_key: str):
        store.delete(id_or_key, sim.actor())
        return _no_content()

    @bp.put("/issue/<id_or_key>/assignee")
    def assign_issue(id_or_key: str):
        store.assign(id_or_key, json_body(), sim.actor())
        return _no_content()

    if sim.cloud:  # Server reads histories through expand=changelog only: these are 404s
        @bp.get("/issue/<id_or_key>/changelog")
        def get_changelog(id_or_key: str):
            return jsonify(_changelog_page(sim, id_or_key))

        register_bulk_fetch(bp, sim)

    # -- transitions ---------------------------------------------------------------------------

    @bp.get("/issue/<id_or_key>/transitions")
    def get_transitions(id_or_key: str):
        issue, available = store.transitions(id_or_key)
        wanted = request.args.get("transitionId")
        expand = "transitions.fields" in request.args.get("expand", "")
        renderer = sim.renderer()
        return jsonify({"expand": "transitions", "transitions": [
            _transition(sim, renderer, issue, t, expand) for t in available
            if wanted is None or t.id == wanted]})

    @bp.post("/issue/<id_or_key>/transitions")
    def do_transition(id_or_key: str):
        store.transition(id_or_key, json_body(), sim.actor())
        return _no_content()

    # -- comments ------------------------------------------------------------------------------

    @bp.get("/issue/<id_or_key>/comment")
    def get_comments(id_or_key: str):
        issue = store.find(id_or_key)
        order = request.args.get("orderBy")
        if order not in (None, "created", "+created", "-created"):
            raise bad_request(None, f"Unsupported orderBy value '{order}'. Use 'created'.")
        comments = list(issue.comments)
        if order == "-created":
            comments.reverse()
        start = request.args.get("startAt", 0, type=int)
        size = request.args.get("maxResults", 100, type=int)
        return jsonify(sim.renderer().comment_page(issue, comments, max(0, start),
                                                   max(0, size)))

    @bp.post("/issue/<id_or_key>/comment")
    def add_comment(id_or_key: str):
        issue, comment = store.add_comment(id_or_key, json_body(), sim.actor())
        return jsonify(sim.renderer().comment(issue, comment)), 201

    @bp.get("/issue/<id_or_key>/comment/<comment_id>")
    def get_comment(id_or_key: str, comment_id: str):
        issue, comment = store.comment(id_or_key, comment_id)
        return jsonify(sim.renderer().comment(issue, comment))

    @bp.put("/issue/<id_or_key>/comment/<comment_id>")
    def edit_comment(id_or_key: str, comment_id: str):
        issue, comment = store.edit_comment(id_or_key, comment_id, json_body(), sim.actor())
        return jsonify(sim.renderer().comment(issue, comment))

    @bp.delete("/issue/<id_or_key>/comment/<comment_id>")
    def delete_comment(id_or_key: str, comment_id: str):
        store.delete_comment(id_or_key, comment_id, sim.actor())
        return _no_content()

    # -- entity properties --------------------------------------------------------------------

    @bp.get("/issue/<id_or_key>/properties")
    def property_keys(id_or_key: str):
        issue, rest = store.find(id_or_key), sim.renderer().rest
        return jsonify({"keys": [{"self": f"{rest}/issue/{issue.id}/properties/{key}",
                                  "key": key} for key in issue.properties]})

    @bp.get("/issue/<id_or_key>/properties/<key>")
    def get_property(id_or_key: str, key: str):
        issue = store.find(id_or_key)
        if key not in issue.properties:
            raise JiraError(404, [f"The property with key '{key}' does not exist."])
        return jsonify({"key": key, "value": issue.properties[key]})

    @bp.put("/issue/<id_or_key>/properties/<key>")
    def set_property(id_or_key: str, key: str):
        created = store.set_property(id_or_key, key, json_body())
        return Response(status=201 if created else 200)

    @bp.delete("/issue/<id_or_key>/properties/<key>")
    def delete_property(id_or_key: str, key: str):
        store.delete_property(id_or_key, key)
        return _no_content()


def register_bulk_fetch(bp: Blueprint, sim: Simulator) -> None:
    """Cloud's bulk fetch, also served under Cloud's /rest/api/2."""

    @bp.post("/issue/bulkfetch")
    def bulk_fetch():
        body = _bulk_fetch_body(json_body())
        # As Atlassian describes it: issues not found (or not visible) are simply left out;
        # issueErrors is for issues Jira failed to read, which never happens here.
        found = sim.store.bulk_find(body["issueIdsOrKeys"])
        selection = FieldSelection.parse(body.get("fields"), "*navigable")
        renderer = sim.renderer()
        changelog = "changelog" in (body.get("expand") or [])
        return jsonify({
            "issues": [renderer.issue(i, selection, body.get("properties") or [],
                                      changelog=changelog) for i in found],
            "issueErrors": []})


def _bulk_fetch_body(body: object) -> dict:
    """The request as the OAS ``BulkFetchIssueRequestBean`` types it: lists of strings (even
    ``expand``, unlike elsewhere), at most 5 properties, nothing else."""
    if not isinstance(body, dict) or "issueIdsOrKeys" not in body:
        raise bad_request(None, "'issueIdsOrKeys' must be given: the issues to fetch.")
    unknown = sorted(set(body) - set(BULK_FETCH_KEYS))
    if unknown:
        raise bad_request(None, f"Unrecognized field '{unknown[0]}'.")
    for name in ("issueIdsOrKeys", "fields", "expand", "properties"):
        value = body.get(name)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise bad_request(None, f"'{name}' must be a list of strings.")
    if len(body.get("properties") or []) > 5:
        raise bad_request(None, "At most 5 issue property keys can be requested.")
    return body


def _changelog_page(sim: Simulator, id_or_key: str) -> dict:
    """``PageBeanChangelog``: one page of the histories, oldest first."""
    issue, histories = sim.store.histories(id_or_key)
    start = max(0, request.args.get("startAt", 0, type=int))
    size = max(1, min(request.args.get("maxResults", CHANGELOG_PAGE, type=int), CHANGELOG_PAGE))
    renderer = sim.renderer()
    url = f"{renderer.rest}/issue/{issue.key}/changelog"
    is_last = start + size >= len(histories)
    page = {"self": f"{url}?startAt={start}&maxResults={size}", "maxResults": size,
            "startAt": start, "total": len(histories), "isLast": is_last,
            "values": [renderer.history(h) for h in histories[start:start + size]]}
    if not is_last:
        page["nextPage"] = f"{url}?startAt={start + size}&maxResults={size}"
    return page


def _transition(sim: Simulator, renderer: Renderer, issue: Issue, transition: TransitionDef,
                expand: bool) -> dict:
    out = {"id": transition.id, "name": transition.name,
           "to": renderer.status(sim.catalog.statuses[transition.to]),
           "hasScreen": bool(transition.screen), "isGlobal": not transition.sources,
           "isInitial": False, "isAvailable": True, "isConditional": False, "looped": False}
    if expand:
        out["fields"] = {field_id: field_meta(sim.catalog, renderer, issue.project,
                                              issue.issue_type.name, field_id,
                                              field_id in transition.required)
                         for field_id in transition.screen}
    return out
