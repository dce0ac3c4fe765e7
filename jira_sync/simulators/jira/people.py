"""``/_sim/issues/...``: people working in Jira (Ana, Bo, or the service account).

Each action is turned into the REST request a person's browser would send and applied by the
same store code, so it is validated the same way and fires exactly the webhooks that change
fires through the API, with that person as the actor. Text is given plain and stored the way
REST writes store it: an ADF document of paragraphs on Cloud, a wiki string on Server.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from jira_sync.simulators.jira import adf
from jira_sync.simulators.jira.config import UserDef
from jira_sync.simulators.jira.errors import bad_request
from jira_sync.simulators.jira.simulator import Simulator, json_body
from jira_sync.simulators.jira.store import Actor, comment_view

DEFAULT_PERSON = "ana@example.com"
EDIT_KEYS = frozenset({"as", "summary", "description", "labels", "add_labels", "remove_labels"})


def register(bp: Blueprint, sim: Simulator) -> None:
    store = sim.store

    @bp.post("/issues/<id_or_key>/transition")
    def transition(id_or_key: str):
        body = _body({"as", "transition", "status", "fields"})
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise bad_request(None, "'fields' must be an object of screen fields.")
        actor = _actor(sim, body)
        if ("transition" in body) == ("status" in body):
            raise bad_request(None, "Give exactly one of 'transition' (a name or id) or "
                              "'status' (a status name to walk to).")
        if "transition" in body:
            issue = store.take(id_or_key, _text(body, "transition"), fields, actor)
        else:
            issue = store.walk(id_or_key, _text(body, "status"), fields, actor)
        return jsonify(store.view(issue.id))

    @bp.post("/issues/<id_or_key>/assign")
    def assign(id_or_key: str):
        body = _body({"as", "assignee"})
        if "assignee" not in body:
            raise bad_request(None, "'assignee' must be given: an e-mail, or null to unassign.")
        assignee = None if body["assignee"] is None else _person(sim, body["assignee"])
        issue = store.assign(id_or_key, _user_ref(sim, assignee), _actor(sim, body))
        return jsonify(store.view(issue.id))

    @bp.post("/issues/<id_or_key>/edit")
    def edit(id_or_key: str):
        body = _body(EDIT_KEYS)
        issue = store.edit(id_or_key, _edit_request(sim, body), _actor(sim, body))
        return jsonify(store.view(issue.id))

    @bp.post("/issues/<id_or_key>/comments")
    def add_comment(id_or_key: str):
        body = _body({"as", "body"})
        _, comment = store.add_comment(id_or_key, {"body": _rich(sim, _text(body, "body"))},
                                       _actor(sim, body))
        return jsonify(comment_view(comment)), 201

    @bp.put("/issues/<id_or_key>/comments/<comment_id>")
    def edit_comment(id_or_key: str, comment_id: str):
        body = _body({"as", "body"})
        _, comment = store.edit_comment(id_or_key, comment_id,
                                        {"body": _rich(sim, _text(body, "body"))},
                                        _actor(sim, body))
        return jsonify(comment_view(comment))

    @bp.delete("/issues/<id_or_key>/comments/<comment_id>")
    def delete_comment(id_or_key: str, comment_id: str):
        actor = _actor(sim, request.args)
        issue, _ = store.comment(id_or_key, comment_id)
        store.delete_comment(id_or_key, comment_id, actor)
        return jsonify(store.view(issue.id))

    @bp.delete("/issues/<id_or_key>")
    def delete_issue(id_or_key: str):
        issue = store.delete(id_or_key, _actor(sim, request.args))
        return jsonify(store.view(issue.id))

    @bp.post("/issues/<id_or_key>/move")
    def move(id_or_key: str):
        body = _body({"as", "project", "issue_type"})
        issue_type = body.get("issue_type")
        if issue_type is not None and not isinstance(issue_type, str):
            raise bad_request(None, "'issue_type' must be an issue type name.")
        issue = store.move(id_or_key, _text(body, "project"), issue_type, _actor(sim, body))
        return jsonify(store.view(issue.id))


def _body(allowed: set[str] | frozenset[str]) -> dict:
    """The JSON object, refusing keys the action does not know (a typo would otherwise pass
    silently and the test would assert on a change that never happened)."""
    body = json_body()
    if not isinstance(body, dict):
        raise bad_request(None, "Send a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(None, f"Unknown keys: {', '.join(unknown)}. Known: "
                          f"{', '.join(sorted(allowed))}.")
    return body


def _text(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise bad_request(None, f"'{name}' must be a string.")
    return value


def _person(sim: Simulator, email: Any) -> UserDef:
    user = sim.catalog.user_by_email(email) if isinstance(email, str) else None
    if user is None:
        known = ", ".join(u.email for u in sim.catalog.users)
        raise bad_request(None, f"No user has the e-mail {email!r}. Known: {known}.")
    return user


def _actor(sim: Simulator, source: Any) -> Actor:
    """The person named by ``as`` (body or query string), Ana unless said otherwise."""
    return Actor(_person(sim, source.get("as", DEFAULT_PERSON)), request.host_url)


def _user_ref(sim: Simulator, user: UserDef | None) -> dict:
    """How a REST request names a user: by account id on Cloud, by username on Server."""
    if sim.cloud:
        return {"accountId": user.account_id if user else None}
    return {"name": user.name if user else None}


def _rich(sim: Simulator, text: str) -> Any:
    """Plain text stored as REST writes store rich text (empty text clears a description)."""
    if not text:
        return None
    return adf.from_text(text) if sim.cloud else text


def _edit_request(sim: Simulator, body: dict) -> dict:
    """The edit as one REST request: fields to set, and label operations in order (a given
    ``labels`` replaces the list, then additions and removals apply)."""
    fields: dict[str, Any] = {}
    if "summary" in body:
        fields["summary"] = body["summary"]
    if "description" in body:
        description = body["description"]
        if description is not None and not isinstance(description, str):
            raise bad_request(None, "'description' must be plain text (or null).")
        fields["description"] = _rich(sim, description or "")
    operations = [{"set": body["labels"]}] if "labels" in body else []
    for name, verb in (("add_labels", "add"), ("remove_labels", "remove")):
        labels = body.get(name, [])
        if not isinstance(labels, list):
            raise bad_request(None, f"'{name}' must be a list of labels.")
        operations += [{verb: label} for label in labels]
    return {"fields": fields, "update": {"labels": operations} if operations else {}}
