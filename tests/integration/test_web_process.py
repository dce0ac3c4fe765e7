"""`jira-sync web` as a real gunicorn process."""

import json
import signal
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select

from jira_sync.store.db import Database
from jira_sync.store.models import Integration
from tests.support.processes import ServiceProcess, closed_port, free_port

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def start_web(env: dict[str, str], tmp_path) -> tuple[ServiceProcess, str]:
    port = free_port()
    web = ServiceProcess(["web"], {**env, "JIRA_SYNC_WEB_PORT": str(port)},
                         tmp_path / f"web-{port}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        web.wait_http(f"{base}/healthz")
    except AssertionError:
        web.kill()
        raise
    return web, base


def test_web_answers_healthz_and_names_a_closed_broker_in_readyz(service_env, tmp_path):
    port = closed_port()
    env = {**service_env, "JIRA_SYNC_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    web, base = start_web(env, tmp_path)
    try:
        assert get(f"{base}/healthz") == (200, {"status": "ok"})
        status, body = get(f"{base}/readyz")
        assert status == 503
        assert body["checks"]["database"] == "ok"
        assert f"broker unreachable at redis://127.0.0.1:{port}/0" in body["reason"]
        assert web.stop() == 0
    finally:
        web.kill()


def test_web_is_ready_with_real_postgres_and_redis(service_env, tmp_path):
    web, base = start_web(service_env, tmp_path)
    try:
        assert get(f"{base}/readyz") == (200, {"status": "ok",
                                               "checks": {"database": "ok", "broker": "ok"}})
    finally:
        web.kill()


def test_web_starts_with_the_database_down(service_env, tmp_path):
    env = {**service_env, "JIRA_SYNC_DATABASE_URL":
           f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nothing"}
    web, base = start_web(env, tmp_path)
    try:
        assert get(f"{base}/healthz")[0] == 200
        status, body = get(f"{base}/readyz")
        assert status == 503 and body["checks"]["database"].startswith("database unreachable")
    finally:
        web.kill()


def test_web_worker_and_beat_bootstrap_one_integration_at_the_same_moment(
        service_env, tmp_path, postgres_url):
    env = {**service_env, "JIRA_BASE_URL": "https://acme.atlassian.net",
           "JIRA_EMAIL": "svc@example.com", "JIRA_API_TOKEN": "tok-123",
           "JIRA_SYNC_TENANT": "acme", "JIRA_SYNC_WEB_PORT": str(free_port()),
           "JIRA_SYNC_WEB_WORKERS": "2"}
    processes = [ServiceProcess([name], env, tmp_path / f"{name}.log")
                 for name in ("web", "worker", "beat")]
    try:
        processes[0].wait_for(r"integration of tenant 'acme' is up to date")
        processes[1].wait_for(r"ready\.")
        processes[2].wait_for(r"beat: lock acquired")
        database = Database(postgres_url)
        with database.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(Integration)) == 1
            assert session.scalar(select(Integration.tenant)) == "acme"
        database.dispose()
        for process in processes:
            process.signal(signal.SIGTERM)
        assert [p.proc.wait(30) for p in processes] == [0, 0, 0]
        assert not any("tok-123" in p.output for p in processes)
    finally:
        for process in processes:
            process.kill()
