"""Jira's rate limits as the simulator models them (reference notes §9): Cloud's burst bucket
per endpoint and method, its per-issue write limit and the OAuth app's hourly points quota,
each with its RateLimit-Reason; Data Center's token bucket per user. Every 429 is in the call
log with its reason.

Rates of 0.01 per second (one token, the next in 100 s) keep each bucket empty for the whole
test, so no assertion depends on how fast the machine runs.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from jira_sync.simulators.jira import SimulatorConfig
from tests.support.processes import ServiceProcess, clean_env, free_port

from .conftest import ANA, Jira

SLOW = 0.01  # requests per second: a bucket emptied stays empty for 100 s
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining")


def reasons(jira: Jira) -> list[str]:
    return [c["rate_limit_reason"] for c in jira.sim("/calls", params={"status": 429})]


def reset_at(response: requests.Response) -> datetime:
    return datetime.fromisoformat(response.headers["X-RateLimit-Reset"])


def as_app(jira: Jira, token: str) -> Jira:
    """The same site called with an OAuth app's access token instead of Basic credentials."""
    app = jira.as_user(("unused", "unused"))
    app.session.auth = None
    app.session.headers["Authorization"] = f"Bearer {token}"
    return app


def edit(jira: Jira, issue: str, summary: str) -> requests.Response:
    return jira.put(f"/issue/{issue}", {"fields": {"summary": summary}})


# -- Cloud: the burst bucket of each endpoint and method -------------------------------------


def test_each_endpoint_and_method_has_its_own_bucket(simulate) -> None:
    jira = simulate("cloud")
    first, second = jira.create()["key"], jira.create()["key"]
    jira.sim_post("/config", {"rate_limit": SLOW})
    read = jira.get(f"/issue/{first}")
    assert read.status_code == 200
    assert (read.headers["X-RateLimit-Limit"], read.headers["X-RateLimit-Remaining"]) == (
        "0.01", "0")
    other_issue = jira.get(f"/issue/{second}")  # the same endpoint: the same bucket
    assert other_issue.status_code == 429
    assert other_issue.headers["RateLimit-Reason"] == "jira-burst-based"
    assert 99 <= int(other_issue.headers["Retry-After"]) <= 100
    assert other_issue.headers["X-RateLimit-Remaining"] == "0"
    assert edit(jira, first, "edited").status_code == 204  # another method of that endpoint
    assert jira.get("/myself").status_code == 200  # another endpoint
    assert jira.get("/myself").status_code == 429
    assert reasons(jira) == ["jira-burst-based", "jira-burst-based"]
    count = jira.sim("/calls/count", params={"rate_limit_reason": "jira-burst-based"})
    assert count == {"count": 2}


def test_a_429_says_when_the_bucket_has_a_token_again(simulate) -> None:
    jira = simulate("cloud", rate_limit=SLOW)
    jira.get("/myself")
    before = datetime.now(UTC)
    limited = jira.get("/myself")
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Reset"].endswith("Z")
    wait = int(limited.headers["Retry-After"])
    assert before + timedelta(seconds=wait - 2) <= reset_at(limited) \
        <= datetime.now(UTC) + timedelta(seconds=wait)


def test_every_answer_carries_the_limit_while_it_is_enforced(simulate) -> None:
    jira = simulate("cloud", rate_limit=5)
    answers = [jira.get("/myself"), jira.get("/issue/DATA-404"),
               jira.as_user(("svc@example.com", "wrong")).get("/project"),
               jira.post("/issue", {"fields": {}})]
    assert [a.status_code for a in answers] == [200, 404, 401, 400]
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "5"
        assert answer.headers["X-RateLimit-Remaining"] == "4"  # each endpoint's first token
        assert "RateLimit-Reason" not in answer.headers


def test_a_hidden_limit_is_enforced_without_saying_so(simulate) -> None:
    jira = simulate("cloud", rate_limit=SLOW, advertise_rate_limit=False)
    allowed, limited = jira.get("/myself"), jira.get("/myself")
    assert (allowed.status_code, limited.status_code) == (200, 429)
    for answer in (allowed, limited):
        assert not set(LIMIT_HEADERS) & set(answer.headers)
    assert limited.headers["RateLimit-Reason"] == "jira-burst-based"
    assert int(limited.headers["Retry-After"]) >= 99 and "X-RateLimit-Reset" in limited.headers


def test_the_command_line_hides_the_limit(tmp_path) -> None:
    port = free_port()
    process = ServiceProcess(["simulate", "jira", "--port", str(port), "--rate-limit", "0.01",
                              "--hide-rate-limit"], clean_env(), tmp_path / "jira.log")
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{base}/_sim/calls")
        config = requests.get(f"{base}/_sim/config", timeout=5).json()
        assert (config["rate_limit"], config["advertise_rate_limit"]) == (0.01, False)
        answers = [requests.get(f"{base}/rest/api/3/myself", auth=("svc@example.com", "tok-123"),
                                timeout=5) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 429]
        assert not any(set(LIMIT_HEADERS) & set(a.headers) for a in answers)
    finally:
        process.kill()


# -- Cloud: writes to one issue ------------------------------------------------------------


def test_the_per_issue_windows_default_to_clouds(simulate) -> None:
    config = simulate("cloud").sim("/config")
    assert config["issue_write_limits"] == [[20, 2.0], [100, 30.0]]


@pytest.mark.parametrize(("windows", "wait"), [
    ([[3, 60], [10, 120]], (55, 60)),  # the short window binds
    ([[10, 60], [3, 120]], (115, 120)),  # the long one does
])
def test_writes_to_one_issue_are_limited_in_every_window(simulate, windows, wait) -> None:
    jira = simulate("cloud", rate_limit=1000)
    jira.sim_post("/config", {"issue_write_limits": windows})
    busy, quiet = jira.create(), jira.create()
    writes = [edit(jira, busy["key"], "one"),
              jira.post(f"/issue/{busy['id']}/comment", {"body": jira.text("two")}),
              jira.put(f"/issue/{busy['key'].lower()}/properties/p", {"n": 3})]
    assert [w.status_code for w in writes] == [204, 201, 201]  # by key, id, any case: one issue
    refused = jira.post(f"/issue/{busy['id']}/transitions", {"transition": {"id": "21"}})
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-per-issue-on-write"
    assert wait[0] <= int(refused.headers["Retry-After"]) <= wait[1]
    assert refused.headers["X-RateLimit-Limit"] == "1000"  # the burst bucket's, as ever
    assert jira.sim(f"/issues/{busy['key']}")["status"]["name"] == "To Do"  # not applied
    # Only that issue waits: reads of it, and writes to others, go on.
    assert jira.get(f"/issue/{busy['key']}").status_code == 200
    assert edit(jira, quiet["key"], "other").status_code == 204
    assert edit(jira, busy["key"], "again").status_code == 429
    assert reasons(jira) == ["jira-per-issue-on-write"] * 2


def test_a_create_is_no_write_to_an_existing_issue(simulate) -> None:
    jira = simulate("cloud", rate_limit=1000, issue_write_limits=((1, 60.0),))
    issue = jira.create()
    created = jira.post("/issue/bulk", {"issueUpdates": [{"fields": {
        "project": {"key": "DATA"}, "issuetype": {"name": "Bug"}, "summary": "bulk"}}]})
    assert created.status_code == 201
    assert edit(jira, issue["key"], "first write").status_code == 204
    assert edit(jira, issue["key"], "second write").status_code == 429
    assert jira.delete("/issue/DATA-999").status_code == 404  # no such issue: not limited


@pytest.mark.parametrize(("deployment", "rate_limit"), [("cloud", None), ("server", 1000)])
def test_no_per_issue_limit_without_a_rate_limit_or_on_server(simulate, deployment,
                                                               rate_limit) -> None:
    jira = simulate(deployment, rate_limit=rate_limit, issue_write_limits=((1, 60.0),))
    key = jira.create()["key"]
    assert [edit(jira, key, f"edit {n}").status_code for n in range(3)] == [204] * 3


# -- Cloud: the OAuth app's hourly points ---------------------------------------------------


def app_site(simulate, **settings) -> tuple[Jira, Jira]:
    """A Cloud site serving an OAuth app of its own (its global pool shared with no other
    test): the site as the service account's API token sees it, and as the app does."""
    token = f"oauth-{uuid.uuid4().hex}"
    settings.setdefault("oauth_client_id", f"app-{uuid.uuid4().hex}")
    jira = simulate("cloud", oauth_token=token, **settings)
    return jira, as_app(jira, token)


def top_of_the_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def test_oauth_calls_cost_points_as_the_notes_give_them(simulate) -> None:
    jira, app = app_site(simulate)
    keys = [jira.create(summary=f"quota {n}")["key"] for n in range(3)]
    assert jira.sim("/quota")["used"] == 0  # API-token traffic is exempt
    answers = {
        "myself": app.get("/myself"),  # 1 + 2 for the identity read
        "projects": app.get("/project"),  # 1 + 1 per project (DATA, OPS)
        "search": app.search("project = DATA", fields="summary"),  # 1 + 1 per issue
        "issue": app.get(f"/issue/{keys[0]}"),  # 1 + 1
        "users": app.get("/user/search", params={"query": "ana@"}),  # 1 + 2 per user
        "edit": edit(app, keys[0], "by the app"),  # writes: 1
        "comment": app.post(f"/issue/{keys[1]}/comment", {"body": app.text("hi")}),
        "missing": app.get("/issue/DATA-999"),  # nothing read: 1
    }
    assert {name: a.status_code for name, a in answers.items()} == {
        "myself": 200, "projects": 200, "search": 200, "issue": 200, "users": 200,
        "edit": 204, "comment": 201, "missing": 404}
    costs = [c["cost"] for c in jira.sim("/calls")]
    assert costs == [None] * 3 + [3, 3, 4, 2, 3, 1, 1, 1]
    assert {c["actor"] for c in jira.sim("/calls")} == {"svc"}
    quota = jira.sim("/quota")
    assert (quota["used"], quota["remaining"], quota["points"]) == (18, 65000 - 18, 65000)
    assert quota["scope"] == "global" and quota["reason"] == "jira-quota-global-based"
    assert datetime.fromisoformat(quota["resets_at"]) == top_of_the_hour()


def test_a_spent_quota_stops_the_app_until_the_top_of_the_utc_hour(simulate) -> None:
    jira, app = app_site(simulate, quota_points=100)
    assert jira.sim_post("/quota", {"used": 100}).json()["remaining"] == 0
    refused = app.get("/myself")
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == "jira-quota-global-based"
    assert reset_at(refused) == top_of_the_hour()
    to_the_hour = (top_of_the_hour() - datetime.now(UTC)).total_seconds()
    assert to_the_hour - 2 <= int(refused.headers["Retry-After"]) <= to_the_hour + 2
    assert refused.headers.get("X-RateLimit-NearLimit") is None
    assert jira.get("/myself").status_code == 200  # the API token is not the app
    assert app.sim("/quota")["used"] == 100  # a refused call costs nothing
    assert reasons(jira) == ["jira-quota-global-based"]


def test_the_app_is_told_when_it_nears_its_quota(simulate) -> None:
    jira, app = app_site(simulate, quota_points=100)
    jira.sim_post("/quota", {"used": 75})
    assert "X-RateLimit-NearLimit" not in app.get("/myself").headers  # 78 used: 22 left
    jira.sim_post("/quota", {"used": 79})
    assert app.get("/myself").headers["X-RateLimit-NearLimit"] == "true"  # 82 used


def test_the_quota_returns_when_its_window_ends(simulate) -> None:
    jira, app = app_site(simulate, quota_points=10)
    jira.sim_post("/quota", {"used": 10, "reset_in_seconds": 2})
    refused = app.get("/myself")
    assert refused.status_code == 429 and refused.headers["Retry-After"] in ("1", "2")
    deadline = time.monotonic() + 10
    while jira.sim("/quota")["used"] != 0:
        assert time.monotonic() < deadline, "the window never ended"
        time.sleep(0.05)
    assert app.get("/myself").status_code == 200
    assert datetime.fromisoformat(jira.sim("/quota")["resets_at"]) == top_of_the_hour()


@pytest.mark.parametrize(("scope", "shared"), [("global", True), ("tenant", False)])
def test_the_global_pool_spans_every_site_of_the_app(simulate, scope, shared) -> None:
    client_id = f"app-{uuid.uuid4().hex}"
    first, first_app = app_site(simulate, oauth_client_id=client_id, quota_scope=scope,
                                quota_points=50)
    second, second_app = app_site(simulate, oauth_client_id=client_id, quota_scope=scope,
                                  quota_points=50)
    first.sim_post("/quota", {"used": 50})
    refused = first_app.get("/myself")
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Reason"] == f"jira-quota-{scope}-based"
    other = second_app.get("/myself")
    assert other.status_code == (429 if shared else 200)
    assert second.sim("/quota")["used"] == (50 if shared else 3)


def test_only_the_apps_own_token_is_app_traffic(simulate) -> None:
    jira, _ = app_site(simulate)
    stranger = as_app(jira, "oauth-not-issued")
    assert stranger.get("/myself").status_code == 401
    assert jira.as_user(ANA).get("/myself").status_code == 200
    assert [c["cost"] for c in jira.sim("/calls")] == [None, None]
    assert jira.sim("/quota")["used"] == 0


def test_oauth_is_cloud_only_and_the_quota_control_checks_its_input(simulate) -> None:
    with pytest.raises(ValueError, match="Cloud only"):
        SimulatorConfig(deployment="server", oauth_token="oauth-1")
    jira, app = app_site(simulate)
    for bad in ({"used": -1}, {"used": "9"}, {"reset_in_seconds": -1}, {"points": 3}, [1]):
        assert jira.sim_post("/quota", bad).status_code == 400, bad
    assert jira.sim_post("/config", {"quota_scope": "site"}).status_code == 400
    assert jira.sim_post("/config", {"issue_write_limits": [[0, 2]]}).status_code == 400
    app.get("/myself")
    assert jira.sim("/quota")["used"] == 3
    jira.sim_post("/reset")
    assert jira.sim("/quota")["used"] == 0


# -- Data Center: a token bucket per user ---------------------------------------------------


def test_data_center_limits_each_user_with_its_advertised_bucket(simulate) -> None:
    jira = simulate("server", rate_limit=SLOW)
    allowed = jira.get("/myself")
    assert allowed.status_code == 200
    assert {name: allowed.headers.get(name) for name in (
        "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-FillRate",
        "X-RateLimit-Interval-Seconds", "Retry-After")} == {
        "X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-FillRate": "1",
        "X-RateLimit-Interval-Seconds": "100", "Retry-After": "0"}
    limited = jira.get("/project")  # any endpoint: the bucket is the user's
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 99
    assert "RateLimit-Reason" not in limited.headers  # Cloud's headers, not Data Center's
    assert "X-RateLimit-Reset" not in limited.headers
    assert jira.as_user(ANA).get("/myself").status_code == 200  # Ana has her own bucket
    assert reasons(jira) == ["dc-token-bucket"]
