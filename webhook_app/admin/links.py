"""Create External Issue, its link, sync now and sever (``/api/v2/issues/<id>/jira``), and an
integration's links."""

from __future__ import annotations

from typing import Any

from jira_sync.admin import integrations
from jira_sync.admin import links as core
from jira_sync.admin.errors import Invalid
from jira_sync.admin.schemas import LinkQuery, LinkView, TenantBody, TenantQuery, page_of
from webhook_app import context
from webhook_app.admin.api import api
from webhook_app.producer import schedule

TAG = "issue links"
ISSUE = "/issues/<bigid:qalita_issue_id>/jira"
# How long Create External Issue waits for the worker before answering 202.
CREATE_WAIT_SECONDS = 10.0


@api.route(ISSUE, "POST", summary="Create External Issue: the QALITA issue's Jira issue, made "
           "through the crash-safe path (never a second one)", tag=TAG, query=TenantQuery,
           body=TenantBody, optional_body=True,
           responses={200: LinkView, 201: LinkView, 202: LinkView, 409: None, 502: None})
def create(qalita_issue_id: int, query: dict[str, Any],
           body: dict[str, Any]) -> tuple[Any, int]:
    outcome = core.create_external(context.sync_context(), _tenant(query, body),
                                   qalita_issue_id)
    schedule(outcome.dues)
    if outcome.view["jira_key"] and not outcome.created:
        return outcome.view, 200  # it had its Jira issue: never a second one
    view = core.wait_for_link(context.database(), outcome.link_id, CREATE_WAIT_SECONDS)
    return view, 201 if view["jira_key"] else 202


@api.route(ISSUE, "GET", summary="The QALITA issue's link (the newest severed one when it has "
           "no live link)", tag=TAG, query=TenantQuery, responses={200: LinkView})
def show(qalita_issue_id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.show(session, query["tenant"], qalita_issue_id), 200


@api.route(f"{ISSUE}/sync", "POST", summary="Sync the link now, both ways", tag=TAG,
           query=TenantQuery, responses={202: LinkView, 409: None})
def sync(qalita_issue_id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        outcome = core.sync_now(session, query["tenant"], qalita_issue_id)
    schedule(outcome.dues)
    return outcome.view, 202


@api.route(ISSUE, "DELETE", summary="Sever the link: the marker label comes off, the Jira "
           "issue stays", tag=TAG, query=TenantQuery, responses={202: LinkView})
def sever(qalita_issue_id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        outcome = core.sever(session, query["tenant"], qalita_issue_id)
    schedule(outcome.dues)
    return outcome.view, 202


@api.route("/integrations/jira/<id:id>/links", "GET", summary="The integration's links, "
           "newest first", tag=TAG, query=LinkQuery, responses={200: page_of(LinkView)})
def list_links(id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        integrations.get(session, id)
        return core.list_links(session, id, **query).as_dict(), 200


def _tenant(query: dict[str, Any], body: dict[str, Any]) -> str:
    if "tenant" in body and body["tenant"] != query["tenant"] and query["tenant"] != "default":
        raise Invalid("tenant: given twice, differently (query and body)",
                      {"tenant": ["given twice, differently"]})
    return body.get("tenant", query["tenant"])
