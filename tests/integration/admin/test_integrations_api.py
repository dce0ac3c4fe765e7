"""``/api/v2/integrations/jira``: the admin token, validation, clashes, write-only secrets,
paging, soft delete, the webhook URL, and the fields the environment owns — over real HTTP
to a real ``jira-sync web``."""

from __future__ import annotations

import json

import pytest
import requests

from tests.integration.admin.conftest import ADMIN_TOKEN, AdminApi
from tests.support.processes import ServiceProcess, free_port, wait_until

SECRETS = {"api_token": "tok-5e1f0a8c-secret", "webhook_secret": "whs-92bd71c4-secret",
           "qalita_api_token": "qat-0c7d3e55-secret"}


@pytest.mark.parametrize("token", [None, "", "wrong", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_401_with_no_hint(admin: AdminApi, token):
    answers = [admin.call(method, path, token=token, json={})
               for method, path in (("GET", "/integrations/jira"),
                                    ("POST", "/integrations/jira"),
                                    ("GET", "/integrations/jira/1"),
                                    ("DELETE", "/integrations/jira/1"))]
    assert {r.status_code for r in answers} == {401}
    assert {r.text for r in answers} == {answers[0].text}
    assert answers[0].json() == {"error": "Unauthorized",
                                 "reason": "a valid admin token is required"}


def test_no_admin_token_configured_refuses_everything(service_env, tmp_path):
    port = free_port()
    process = ServiceProcess(["web"], {**service_env, "JIRA_SYNC_WEB_PORT": str(port)},
                             tmp_path / "web.log")
    try:
        process.wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        api = AdminApi(f"http://127.0.0.1:{port}")
        for token in (None, "", "anything"):
            assert api.call("GET", "/integrations/jira", token=token).status_code == 401
    finally:
        process.kill()


def test_create_shows_the_webhook_url_once_and_never_a_secret(admin: AdminApi, web):
    created = admin.create(**SECRETS, project_key="DATA", issue_type="Bug",
                           qalita_api_url="https://qalita.example.com/api/")
    assert created["webhook_url"].startswith("http://127.0.0.1:")
    assert created["tenant"] == "acme" and created["enabled"] is True
    assert created["base_url"] == "https://acme.atlassian.net"
    assert created["qalita_api_url"] == "https://qalita.example.com/api"
    assert created["name"] == "Jira acme.atlassian.net"
    assert {name: created[f"{name}_set"] for name in (*SECRETS, "pat")} == {
        "api_token": True, "webhook_secret": True, "qalita_api_token": True, "pat": False}
    shown = admin.call("GET", f"/integrations/jira/{created['id']}").json()
    assert "webhook_url" not in shown and shown["webhook_url_set"] is True
    listed = admin.call("GET", "/integrations/jira").json()
    for text in (json.dumps(created), json.dumps(shown), json.dumps(listed), web[0].output):
        for secret in SECRETS.values():
            assert secret not in text

    # The URL works as a webhook endpoint: a delivery to it is stored.
    delivery = requests.post(created["webhook_url"], json={"webhookEvent": "jira:issue_updated",
                                                           "timestamp": 1}, timeout=10)
    assert delivery.status_code == 202, delivery.text


def test_validation_errors_name_each_field(admin: AdminApi):
    bad = admin.call("POST", "/integrations/jira", json={
        "tenant": "no spaces", "base_url": "acme.atlassian.net", "deployment": "saas",
        "ip_allowlist": ["10.0.0.0/8", "not-a-network"], "mapping": {"labels": 3},
        "enabled": "yes", "surprise": 1})
    assert bad.status_code == 400
    assert bad.json()["error"] == "Bad Request"
    assert set(bad.json()["fields"]) == {"tenant", "base_url", "deployment", "ip_allowlist",
                                          "mapping", "enabled", "surprise"}
    assert "mapping.labels" in " ".join(bad.json()["fields"]["mapping"])
    assert "not-a-network" in " ".join(bad.json()["fields"]["ip_allowlist"])

    missing = admin.call("POST", "/integrations/jira", json={"tenant": "acme"})
    assert missing.status_code == 400 and set(missing.json()["fields"]) == {"base_url"}
    no_token = admin.call("POST", "/integrations/jira", json={
        "tenant": "acme", "base_url": "https://acme.atlassian.net", "email": "a@b.c"})
    assert no_token.status_code == 400 and set(no_token.json()["fields"]) == {"api_token"}
    for body in ("[1, 2]", "not json", '"text"'):
        response = admin.call("POST", "/integrations/jira", data=body,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "JSON object" in response.json()["reason"]
    assert admin.call("GET", "/integrations/jira", params={"limit": 0}).status_code == 400
    cursor = admin.call("GET", "/integrations/jira", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert cursor.status_code == 400 and "cursor" in cursor.json()["fields"]


def test_clashes_are_409(admin: AdminApi):
    first = admin.create()
    taken = admin.call("POST", "/integrations/jira", json={
        "tenant": "acme", "base_url": "https://other.atlassian.net", "pat": "p"})
    assert taken.status_code == 409 and "already has integration" in taken.json()["reason"]
    label = admin.call("POST", "/integrations/jira", json={
        "tenant": "ACME", "base_url": "https://other.atlassian.net", "pat": "p"})
    assert label.status_code == 409 and "marker label" in label.json()["reason"]
    renamed = admin.call("PUT", f"/integrations/jira/{first['id']}", json={"tenant": "other"})
    assert renamed.status_code == 409 and "cannot change" in renamed.json()["reason"]


def test_put_changes_only_what_is_sent_and_null_clears(admin: AdminApi):
    created = admin.create(project_key="DATA", issue_type="Bug", webhook_secret="whs-1")
    path = f"/integrations/jira/{created['id']}"
    changed = admin.call("PUT", path, json={"project_key": "OPS", "webhook_secret": None,
                                            "mapping": {"labels": ["dq"]},
                                            "ip_allowlist": ["10.1.0.0/16"]})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["project_key"] == "OPS" and after["issue_type"] == "Bug"
    assert after["webhook_secret_set"] is False and after["api_token_set"] is True
    assert after["mapping"] == {"labels": ["dq"]} and after["ip_allowlist"] == ["10.1.0.0/16"]
    assert admin.call("PUT", path, json={"mapping": None}).json()["mapping"] is None
    for field in ("base_url", "name", "enabled"):
        refused = admin.call("PUT", path, json={field: None})
        assert refused.status_code == 400 and field in refused.json()["fields"]
    # Switching to PAT needs the PAT.
    refused = admin.call("PUT", path, json={"auth_method": "pat"})
    assert refused.status_code == 400 and set(refused.json()["fields"]) == {"pat"}
    switched = admin.call("PUT", path, json={"auth_method": "pat", "pat": "pat-1",
                                             "deployment": "server"}).json()
    assert switched["pat_set"] and switched["deployment"] == "server"
    assert admin.call("PUT", "/integrations/jira/999999", json={}).status_code == 404


def test_lists_page_with_an_opaque_cursor(admin: AdminApi):
    ids = [admin.create(tenant=f"t{n}")["id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = admin.call("GET", "/integrations/jira", params=params).json()
        assert set(page) == {"items", "next_cursor"} and len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_delete_is_soft_and_post_revives(admin: AdminApi, database):
    from sqlalchemy import select

    from jira_sync.store.models import Integration, LogEntry

    created = admin.create()
    path = f"/integrations/jira/{created['id']}"
    assert admin.call("DELETE", path).status_code == 204
    assert admin.call("GET", path).status_code == 404
    assert admin.call("GET", "/integrations/jira").json()["items"] == []
    with database.unit_of_work() as session:
        row = session.get(Integration, created["id"])
        assert row is not None and row.deleted_at is not None and not row.enabled
    revived = admin.create(base_url="https://acme-new.atlassian.net")
    assert revived["id"] == created["id"] and revived["enabled"] is True
    assert revived["base_url"] == "https://acme-new.atlassian.net"
    with database.unit_of_work() as session:
        decisions = list(session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin").order_by(LogEntry.id)))
    assert decisions == ["created", "disabled", "deleted", "revived", "enabled"]


def test_a_new_webhook_token_retires_the_old_url(admin: AdminApi):
    created = admin.create()
    renewed = admin.call("POST", f"/integrations/jira/{created['id']}/webhook-token")
    assert renewed.status_code == 201
    new_url = renewed.json()["webhook_url"]
    assert new_url != created["webhook_url"]
    body = {"webhookEvent": "jira:issue_updated", "timestamp": 2}
    assert requests.post(created["webhook_url"], json=body, timeout=10).status_code in (401, 404)
    assert requests.post(new_url, json=body, timeout=10).status_code == 202


def test_fields_the_environment_sets_are_its_own(service_env, tmp_path):
    port = free_port()
    env = {**service_env, "JIRA_SYNC_WEB_PORT": str(port), "JIRA_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
           "JIRA_BASE_URL": "https://env.atlassian.net", "JIRA_EMAIL": "svc@example.com",
           "JIRA_API_TOKEN": "tok-env-1", "JIRA_PROJECT_KEY": "DATA"}

    def started(environment: dict[str, str], name: str) -> ServiceProcess:
        process = ServiceProcess(["web"], environment, tmp_path / f"{name}.log")
        process.wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        process.wait_for("bootstrap", 30)
        return process

    api = AdminApi(f"http://127.0.0.1:{port}")
    process = started(env, "web-env")
    try:
        [integration] = api.call("GET", "/integrations/jira").json()["items"]
        path = f"/integrations/jira/{integration['id']}"
        assert integration["env_fields"] == ["api_token", "auth_method", "base_url",
                                             "deployment", "email", "project_key", "tenant"]
        owned = api.call("PUT", path, json={"project_key": "OPS", "api_token": "x"})
        assert owned.status_code == 409
        assert set(owned.json()["fields"]) == {"project_key", "api_token"}
        assert api.call("PUT", path, json={"issue_type": "Task"}).status_code == 200
        assert api.call("DELETE", path).status_code == 409
    finally:
        process.kill()

    # The environment stops setting the project: it keeps its value and becomes editable.
    del env["JIRA_PROJECT_KEY"]
    process = started(env, "web-env-2")
    try:
        shown = api.call("GET", path).json()
        assert shown["project_key"] == "DATA" and "project_key" not in shown["env_fields"]
        assert shown["issue_type"] == "Task"
        assert api.call("PUT", path, json={"project_key": "OPS"}).json()["project_key"] == "OPS"
    finally:
        process.kill()

    # No JIRA_BASE_URL at all: the integration is the admin API's, and may be deleted.
    for name in ("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        del env[name]
    process = ServiceProcess(["web"], env, tmp_path / "web-plain.log")
    try:
        process.wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        wait_until(lambda: api.call("GET", path).json()["env_fields"] == [])
        assert api.call("DELETE", path).status_code == 204
    finally:
        process.kill()


def test_the_openapi_document_describes_every_operation(admin: AdminApi):
    spec = requests.get(f"{admin.base_url}/api/v2/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    assert {"get", "post"} <= set(spec["paths"]["/api/v2/integrations/jira"])
    assert {"get", "put", "delete"} <= set(spec["paths"]["/api/v2/integrations/jira/{id}"])
    create = spec["components"]["schemas"]["IntegrationCreate"]
    assert create["properties"]["api_token"]["writeOnly"] is True
    view = spec["components"]["schemas"]["IntegrationView"]["properties"]
    assert "api_token" not in view and "api_token_set" in view



def test_hostile_input_is_a_400_never_a_500(admin: AdminApi):
    bodies = [{"name": "nul\x00name"}, {"issue_type": "\ud800"}, {"tenant": "acme\n"},
              {"mapping": {"comment_prefix": "a\x00"}}, {"mapping": {"labels": ["\udfff"]}},
              {"email": "x" * 400}, {"ip_allowlist": ["10.0.0.0/8\x00"]}]
    for extra in bodies:
        body = json.dumps({"tenant": "acme", "base_url": "https://acme.atlassian.net",
                           "pat": "p", **extra})
        response = admin.call("POST", "/integrations/jira", data=body,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (extra, response.text)
        assert set(response.json()["fields"]) == set(extra)
    for path, params in (("/dead-letters", {"kind": "\x00"}), ("/dead-letters", {"since": "x"}),
                         ("/integrations/jira", {"cursor": "a\x00"})):
        assert admin.call("GET", path, params=params).status_code == 400
    created = admin.create(base_url="https://" + "h" * 60 + "." + "a" * 60 + "." + "b" * 60
                           + "." + "c" * 60 + ".example")
    assert len(created["name"]) == 200
    for path in ("/integrations/jira/99999999999", "/dead-letters/99999999999999999999",
                 "/issues/99999999999999999999/jira", "/jobs/0"):
        assert admin.call("GET", path).status_code == 404, path


def test_nothing_under_the_api_is_answered_before_the_token(admin: AdminApi):
    for method, path in (("PATCH", "/integrations/jira"), ("GET", "/nowhere"),
                         ("POST", "/integrations/jira/1/overview")):
        assert admin.call(method, path, token=None).status_code == 401, (method, path)
    huge = admin.call("POST", "/integrations/jira", token=None, data=b"x" * (11 * 2**20))
    assert huge.status_code == 401
    # The endpoints with their own authentication are not behind the admin token.
    assert requests.get(f"{admin.base_url}/api/v2/openapi.json", timeout=10).status_code == 200
    webhook = requests.post(f"{admin.base_url}/api/v2/integrations/jira/webhook", json={},
                            timeout=10)
    assert webhook.status_code == 401
    assert webhook.json()["reason"] != "a valid admin token is required"
