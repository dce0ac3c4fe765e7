"""``.../<id>/logs`` ("Integration Logs") and ``.../<id>/overview``: what the sync did, and
how it is doing."""

from __future__ import annotations

from typing import Any

from jira_sync.admin import integrations, logs, overview
from jira_sync.admin.schemas import LogEntryView, LogQuery, OverviewView, page_of
from webhook_app import context
from webhook_app.admin.api import api

TAG = "activity"


@api.route("/integrations/jira/<id:id>/logs", "GET", summary="Integration Logs, newest first",
           tag=TAG, query=LogQuery, responses={200: page_of(LogEntryView)})
def list_logs(id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        integration = integrations.get(session, id)
        return logs.list_logs(session, integration, context.secret_box(),
                              **query).as_dict(), 200


@api.route("/integrations/jira/<id:id>/overview", "GET", summary="Health at a glance",
           tag=TAG, responses={200: OverviewView})
def show_overview(id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return overview.overview(session, integrations.get(session, id)), 200
