from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config.settings import SettingsError, load

KEY = Fernet.generate_key().decode()


def test_defaults_need_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load({})
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'jira-sync.db'}"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 8080)
    assert settings.debounce_seconds == 2.0
    assert settings.secret_keys == () and settings.jira is None
    assert (settings.worker_metrics_port, settings.log_format) == (9808, "text")


def test_worker_metrics_port_0_turns_them_off_and_json_logs_are_chosen_by_name():
    settings = load({"JIRA_SYNC_WORKER_METRICS_PORT": "0", "JIRA_SYNC_LOG_FORMAT": "JSON"})
    assert (settings.worker_metrics_port, settings.log_format) == (0, "json")


@pytest.mark.parametrize(("env", "variable"), [
    ({"JIRA_SYNC_SECRET_KEY": "not-a-key"}, "JIRA_SYNC_SECRET_KEY"),
    ({"JIRA_SYNC_SECRET_KEY": f"{KEY},short"}, "JIRA_SYNC_SECRET_KEY"),
    ({"JIRA_SYNC_DATABASE_URL": "nonsense"}, "JIRA_SYNC_DATABASE_URL"),
    ({"JIRA_SYNC_DATABASE_URL": "nodriver://u:hunter2@h/db"}, "JIRA_SYNC_DATABASE_URL"),
    ({"JIRA_SYNC_DATABASE_URL": "postgresql+psycopg://u:hunter2@h/db"},
     "JIRA_SYNC_DATABASE_URL"),
    ({"JIRA_SYNC_BROKER_URL": "carrier-pigeon://coop"}, "JIRA_SYNC_BROKER_URL"),
    ({"JIRA_SYNC_BROKER_URL": "no-scheme"}, "JIRA_SYNC_BROKER_URL"),
    ({"JIRA_SYNC_WEB_PORT": "eighty"}, "JIRA_SYNC_WEB_PORT"),
    ({"JIRA_SYNC_WEB_PORT": "70000"}, "JIRA_SYNC_WEB_PORT"),
    ({"JIRA_SYNC_DEBOUNCE_SECONDS": "-1"}, "JIRA_SYNC_DEBOUNCE_SECONDS"),
    ({"JIRA_SYNC_DEBOUNCE_SECONDS": "soon"}, "JIRA_SYNC_DEBOUNCE_SECONDS"),
    ({"JIRA_SYNC_MAPPING_FILE": "/nonexistent/mapping.yaml"}, "JIRA_SYNC_MAPPING_FILE"),
    ({"JIRA_SYNC_LOG_LEVEL": "LOUD"}, "JIRA_SYNC_LOG_LEVEL"),
    ({"JIRA_SYNC_WORKER_CONCURRENCY": "0"}, "JIRA_SYNC_WORKER_CONCURRENCY"),
    ({"JIRA_SYNC_WORKER_METRICS_PORT": "-1"}, "JIRA_SYNC_WORKER_METRICS_PORT"),
    ({"JIRA_SYNC_WORKER_METRICS_PORT": "70000"}, "JIRA_SYNC_WORKER_METRICS_PORT"),
    ({"JIRA_SYNC_WORKER_METRICS_PORT": "prometheus"}, "JIRA_SYNC_WORKER_METRICS_PORT"),
    ({"JIRA_SYNC_LOG_FORMAT": "xml"}, "JIRA_SYNC_LOG_FORMAT"),
    ({"JIRA_BASE_URL": "acme.atlassian.net"}, "JIRA_BASE_URL"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_DEPLOYMENT": "mainframe",
      "JIRA_EMAIL": "a@b.c", "JIRA_API_TOKEN": "t"}, "JIRA_DEPLOYMENT"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_AUTH": "kerberos"}, "JIRA_AUTH"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_EMAIL": "a@b.c"}, "JIRA_API_TOKEN"),
    ({"JIRA_BASE_URL": "https://jira.example.com", "JIRA_AUTH": "pat"}, "JIRA_PAT"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_AUTH": "oauth2"},
     "JIRA_OAUTH_CLIENT_ID"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_PAT": "p",
      "JIRA_SYNC_TENANT": "two words"}, "JIRA_SYNC_TENANT"),
    ({"JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_PAT": "p",
      "QALITA_API_URL": "ftp://qalita"}, "QALITA_API_URL"),
])
def test_each_invalid_value_is_one_line_naming_the_variable(env, variable):
    with pytest.raises(SettingsError) as caught:
        load(env)
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_database_url_password_never_echoed():
    with pytest.raises(SettingsError) as caught:
        load({"JIRA_SYNC_DATABASE_URL": "nodriver://u:hunter2@h/db"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("given", [
    "postgresql://us%40er:p%40ss@db.example.com:5432/app?sslmode=require",
    "postgres://us%40er:p%40ss@db.example.com:5432/app?sslmode=require",
    "postgresql+psycopg2://us%40er:p%40ss@db.example.com:5432/app?sslmode=require",
])
def test_database_urls_as_providers_write_them_use_psycopg2(given):
    url = load({"JIRA_SYNC_DATABASE_URL": given}).database_url
    assert url == ("postgresql+psycopg2://us%40er:p%40ss@db.example.com:5432/app"
                   "?sslmode=require")


def test_secret_key_required_only_when_asked():
    with pytest.raises(SettingsError, match=r"^JIRA_SYNC_SECRET_KEY: required"):
        load({}).require_secret_keys()
    other = Fernet.generate_key().decode()
    assert load({"JIRA_SYNC_SECRET_KEY": f"{KEY}, {other}"}).require_secret_keys() == (KEY, other)


def test_auth_defaults_follow_the_credentials_given():
    basic = load({"JIRA_BASE_URL": "https://acme.atlassian.net/", "JIRA_EMAIL": "svc@x.io",
                  "JIRA_API_TOKEN": "tok"}).jira
    assert basic.auth == "basic" and basic.base_url == "https://acme.atlassian.net"
    assert basic.tenant == "default" and basic.deployment == "cloud"
    pat = load({"JIRA_BASE_URL": "https://jira.example.com", "JIRA_DEPLOYMENT": "server",
                "JIRA_PAT": "pat-1"}).jira
    assert (pat.auth, pat.deployment, pat.secrets) == ("pat", "server", {"pat": "pat-1"})


def test_repr_hides_every_secret():
    settings = load({
        "JIRA_SYNC_SECRET_KEY": KEY, "JIRA_SYNC_ADMIN_TOKEN": "admintok",
        "JIRA_SYNC_DATABASE_URL": "postgresql+psycopg2://u:dbpass@h/db",
        "QALITA_EVENTS_SECRET": "evsecret", "JIRA_BASE_URL": "https://acme.atlassian.net",
        "JIRA_EMAIL": "a@b.c", "JIRA_API_TOKEN": "apitok", "JIRA_WEBHOOK_SECRET": "whsecret",
    })
    text = repr(settings)
    for secret in (KEY, "admintok", "dbpass", "evsecret", "apitok", "whsecret"):
        assert secret not in text


def test_mapping_file_is_accepted_when_present(tmp_path: Path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("{}\n")
    assert load({"JIRA_SYNC_MAPPING_FILE": str(mapping)}).mapping_file == mapping
