"""``/api/v2/integrations/jira[/<id>]``: configure an integration (QALITA's Admin →
Integrations → Jira), and make its webhook URL."""

from __future__ import annotations

from typing import Any

from jira_sync.admin import connection, links
from jira_sync.admin import integrations as core
from jira_sync.admin.schemas import (
    ConnectionReport,
    DeleteQuery,
    IntegrationCreate,
    IntegrationCreated,
    IntegrationView,
    IntegrationWrite,
    PageQuery,
    WebhookToken,
    page_of,
)
from webhook_app import context
from webhook_app.admin.api import api
from webhook_app.producer import schedule

TAG = "integrations"
BASE = "/integrations/jira"


@api.route(BASE, "GET", summary="List the integrations", tag=TAG, query=PageQuery,
           responses={200: page_of(IntegrationView)})
def list_integrations(query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.list_integrations(session, context.secret_box(), **query).as_dict(), 200


@api.route(BASE, "POST", summary="Create an integration (or revive a deleted one of the same "
           "tenant)", tag=TAG, body=IntegrationCreate, responses={201: IntegrationCreated,
                                                                 409: None})
def create(body: dict[str, Any]) -> tuple[Any, int]:
    box = context.secret_box()
    with context.database().unit_of_work() as session:
        integration, url, dues = core.create(session, body, box,
                                             public_url=context.settings().public_url)
        shown = {**core.view(integration, box), "webhook_url": url}
    schedule(dues)
    return shown, 201


@api.route(f"{BASE}/<id:id>", "GET", summary="Show an integration", tag=TAG,
           responses={200: IntegrationView})
def show(id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.view(core.get(session, id), context.secret_box()), 200


@api.route(f"{BASE}/<id:id>", "PUT", summary="Change the fields sent (null clears an optional "
           "one)", tag=TAG, body=IntegrationWrite, partial=True,
           responses={200: IntegrationView, 409: None})
def change(id: int, body: dict[str, Any]) -> tuple[Any, int]:
    box = context.secret_box()
    with context.database().unit_of_work() as session:
        integration = core.get(session, id, lock=True)
        _, dues = core.update(session, integration, body, box)
        session.flush()
        shown = core.view(integration, box)
    schedule(dues)
    return shown, 200


@api.route(f"{BASE}/<id:id>", "DELETE", summary="Delete (soft: links and history stay)",
           tag=TAG, query=DeleteQuery, responses={204: None, 409: None})
def delete(id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        integration = core.get(session, id, lock=True)
        core.delete(session, integration)
        if query["sever"]:
            links.sever_all(session, integration)
    return None, 204


@api.route(f"{BASE}/<id:id>/webhook-token", "POST", summary="Make a new webhook token URL "
           "(shown once; the previous one stops working)", tag=TAG,
           responses={201: WebhookToken})
def webhook_token(id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        url = core.new_webhook_token(session, core.get(session, id, lock=True),
                                     public_url=context.settings().public_url)
    return {"webhook_url": url}, 201


@api.route(f"{BASE}/<id:id>/test", "POST", summary="Test Connection: every check, with the "
           "fix of each that fails", tag=TAG, responses={200: ConnectionReport})
def test(id: int) -> tuple[Any, int]:
    settings = context.settings()
    with context.database().unit_of_work() as session:
        integration = core.get(session, id)
        session.expunge(integration)
    # A new unit: its connection is taken only after the checks' remote calls.
    with context.database().unit_of_work() as session:
        report = connection.test_connection(session, integration, context.secret_box(),
                                            public_url=settings.public_url,
                                            mapping_file=settings.mapping_file)
    return report.as_dict(), 200
