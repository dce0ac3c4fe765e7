"""A remote's session reads the environment's proxy and CA settings once, and must come to
what requests itself would have used on every call."""

from __future__ import annotations

import pytest
import requests

from jira_sync.remote import http_session

ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy.corp:3128"},
    {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "acme.atlassian.net,.internal"},
    {"https_proxy": "http://proxy.corp:3128", "no_proxy": ".atlassian.net"},
    {"HTTP_PROXY": "http://proxy.corp:3128", "HTTPS_PROXY": "http://other.corp:8080",
     "NO_PROXY": "qalita.internal"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/corp-ca.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl-ca.pem", "ALL_PROXY": "socks5://proxy.corp:1080"},
]
URLS = ["https://acme.atlassian.net", "http://jira.internal:8080/jira",
        "https://qalita.internal/api", "http://127.0.0.1:5000"]


@pytest.fixture
def environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

    def set_to(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_to


@pytest.mark.parametrize("values", ENVIRONMENTS)
@pytest.mark.parametrize("url", URLS)
def test_the_settings_read_once_are_those_requests_reads_per_call(environment, values, url):
    environment(values)
    ours = http_session(url)
    settings = ours.merge_environment_settings(f"{url}/rest/api/3/myself", {}, None, None,
                                               None)
    expected = requests.Session().merge_environment_settings(
        f"{url}/rest/api/3/myself", {}, None, None, None)
    assert settings["verify"] == expected["verify"]
    assert {k: v for k, v in settings["proxies"].items() if v} == \
        {k: v for k, v in expected["proxies"].items() if v}
