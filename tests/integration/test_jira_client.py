"""The Jira client against the simulator over real HTTP, on both deployments."""

import subprocess
import sys
import textwrap
import time

import pytest
import requests

from jira_sync.jira.auth import BasicAuth, BearerAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.remote import PermanentError, RetryPolicy, TransientError
from jira_sync.render import TEXT_LIMIT, adf_to_text, cap, from_text, to_adf, to_wiki, wiki_to_text
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from tests.support.processes import ServiceProcess, clean_env, free_port, wait_until

pytestmark = pytest.mark.integration
FAST = RetryPolicy(max_tries=6, base_seconds=0.01, cap_seconds=0.05)


def client_for(sim, deployment: str, policy: RetryPolicy = FAST) -> JiraClient:
    auth = BasicAuth("svc@example.com", "tok-123") if deployment == "cloud" \
        else BearerAuth("pat-123")
    return JiraClient(JiraSite(sim.base_url, deployment), auth, policy=policy)


def calls(sim, **filters) -> list[dict]:
    return requests.get(f"{sim.base_url}/_sim/calls", params=filters, timeout=10).json()


def description(deployment: str, text: str):
    if deployment == "server":
        return text
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}


@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_each_operation_round_trips(deployment):
    config = SimulatorConfig(deployment=deployment, index_lag_ms=1000)
    with running_simulator(config) as sim:
        jira = client_for(sim, deployment)
        assert jira.myself()
        fields = {"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                  "summary": "Row count dropped", "description": description(deployment, "d"),
                  "labels": ["qalita", "qalita-id-acme-7"]}
        created = jira.create_issue(fields)
        marker = 'labels = "qalita-id-acme-7"'
        assert list(jira.search(marker)) == []  # the search index lags a fresh create
        wait_until(lambda: [i["id"] for i in jira.search(marker)] == [created["id"]], 10)
        bo = jira.find_user("bo@example.com")
        jira.edit_issue(created["key"], fields={"assignee": jira.user_ref(bo)},
                        update={"labels": [{"add": "severity:low"}]})
        issue = jira.get_issue(created["id"])
        assert set(issue["fields"]["labels"]) == {"qalita", "qalita-id-acme-7", "severity:low"}
        assert issue["fields"]["assignee"]["emailAddress"] == "bo@example.com"
        done = next(t for t in jira.transitions(created["id"]) if t["to"]["name"] == "Done")
        assert done["fields"]["resolution"]["required"] is True
        jira.transition(created["id"], done["id"], fields={"resolution": {"name": "Won't Do"}})
        assert jira.get_issue(created["id"])["fields"]["status"]["statusCategory"]["key"] == "done"
        comment = jira.add_comment(created["id"], description(deployment, "hi"))
        jira.edit_comment(created["id"], comment["id"], description(deployment, "hi again"))
        jira.delete_comment(created["id"], comment["id"])
        jira.delete_comment(created["id"], comment["id"])  # idempotent
        jira.delete_issue(created["id"])
        jira.delete_issue(created["id"])


@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_search_pages_through_everything(deployment):
    with running_simulator(SimulatorConfig(deployment=deployment, index_lag_ms=0)) as sim:
        jira = client_for(sim, deployment)
        fields = {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                  "description": description(deployment, "d"), "labels": ["paged"]}
        result = jira.bulk_create([{"fields": {**fields, "summary": f"issue {n}"}}
                                   for n in range(12)])
        assert len(result.created) == 12
        found = list(jira.search('labels = "paged" ORDER BY key ASC', page_size=5))
        assert len(found) == 12 and len({i["id"] for i in found}) == 12


def test_a_400_is_not_retried_and_reads_like_jira():
    with running_simulator(SimulatorConfig(deployment="cloud")) as sim:
        jira = client_for(sim, "cloud")
        with pytest.raises(PermanentError) as caught:
            jira.create_issue({"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                               "summary": "s", "labels": ["has space"]})
        assert "labels" in str(caught.value) and "HTTP 400" in str(caught.value)
        assert len(calls(sim, method="POST", path="/rest/api/3/issue")) == 1


def test_a_429_with_retry_after_is_waited_out_then_succeeds():
    with running_simulator(SimulatorConfig(deployment="cloud", rate_limit=2)) as sim:
        jira = client_for(sim, "cloud", RetryPolicy(max_tries=6, base_seconds=0.01))
        for _ in range(6):
            jira.myself()
        statuses = [c["status"] for c in calls(sim, path="/rest/api/3/myself")]
        assert 429 in statuses and statuses.count(200) == 6


def test_5xx_and_dropped_connections_on_reads_are_retried():
    config = SimulatorConfig(deployment="cloud", fail_rate=0.4, seed=7)
    with running_simulator(config) as sim:
        jira = client_for(sim, "cloud")
        for _ in range(15):
            assert jira.project("DATA")["key"] == "DATA"
        statuses = [c["status"] for c in calls(sim, path="/rest/api/3/project/DATA")]
        assert any(s >= 500 for s in statuses), statuses


def test_a_failed_create_reports_that_it_may_have_been_applied():
    with running_simulator(SimulatorConfig(deployment="cloud", fail_rate=1.0, seed=3)) as sim:
        jira = client_for(sim, "cloud")
        outcomes = []
        for n in range(8):
            with pytest.raises(TransientError) as caught:
                jira.create_issue({"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                                   "summary": f"s{n}", "description": description("cloud", "d")})
            outcomes.append(caught.value.maybe_applied)
        assert all(outcomes)  # a 5xx or a drop after sending: the client cannot know
        applied = requests.get(f"{sim.base_url}/_sim/issues", timeout=10).json()
        assert 0 < len(applied) < 8  # and indeed some were applied, some not


LIMITED_CLIENT = textwrap.dedent("""
    import json, sys, time, redis
    from jira_sync.jira.auth import BasicAuth
    from jira_sync.jira.client import JiraClient, JiraSite
    from jira_sync.jira.limiter import RateLimiter, RedisStore
    from jira_sync.remote import RetryPolicy
    base, broker, calls, use_limiter = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    limiter = RateLimiter(RedisStore(redis.Redis.from_url(broker))) \
        if use_limiter == "1" else None
    # Configured at 10/s; the site allows 8/s: the shared pace must take that from its
    # answers.
    client = JiraClient(JiraSite(base, "cloud"), BasicAuth("svc@example.com", "tok-123"),
                        limiter=limiter, rate_limit=10,
                        policy=RetryPolicy(max_tries=20, base_seconds=0.05))
    for _ in range(calls):
        client.myself()
    print("done")
""")


def run_two_clients(base_url: str, broker_url: str, use_limiter: bool) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", LIMITED_CLIENT, base_url, broker_url,
                                   "25", "1" if use_limiter else "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out.strip() == "done", err


def test_the_shared_limiter_keeps_two_processes_together_under_the_rate(broker_url, tmp_path):
    """Without the limiter the two processes each discover the limit (429s); with it they
    share one pace, slowed by the first 429s, and stay under it."""
    port = free_port()
    sim = ServiceProcess(["simulate", "jira", "--port", str(port), "--rate-limit", "8"],
                         clean_env(), tmp_path / "jira.log")
    base = f"http://127.0.0.1:{port}"
    try:
        sim.wait_http(f"{base}/_sim/calls")
        run_two_clients(base, broker_url, use_limiter=False)
        unlimited = [c["status"] for c in requests.get(f"{base}/_sim/calls", timeout=10).json()]
        assert unlimited.count(429) > 0
        requests.post(f"{base}/_sim/reset", timeout=10)
        time.sleep(1.5)  # let the simulator's bucket refill
        run_two_clients(base, broker_url, use_limiter=True)
        limited = requests.get(f"{base}/_sim/calls", timeout=10).json()
        statuses = [c["status"] for c in limited]
        assert statuses.count(200) == 50
        assert statuses.count(429) <= 3 < unlimited.count(429)  # only until the pace adapts
    finally:
        sim.kill()




@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_long_text_is_refused_by_jira_and_fits_once_rendered(deployment):
    """What the renderer caps, Jira takes; what it would not cap, Jira refuses."""
    text = "a" * 40_000
    fields = {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"}, "summary": "long"}
    with running_simulator(SimulatorConfig(deployment=deployment)) as sim:
        jira = client_for(sim, deployment)
        with pytest.raises(PermanentError, match="32,767"):
            jira.create_issue({**fields, "description": description(deployment, text)})
        rendered = to_adf(from_text(text)) if deployment == "cloud" \
            else to_wiki(from_text(text))
        created = jira.create_issue({**fields, "description": rendered})
        stored = jira.get_issue(created["id"])["fields"]["description"]
        back = adf_to_text(stored) if deployment == "cloud" else wiki_to_text(stored)
        assert back == cap(text, TEXT_LIMIT)
