"""Past one machine: two worker "hosts" (worker processes with hostnames of their own), two
web processes and two beats against one broker and one database, under a burst of changes
from both sides. Real processes, Postgres, Redis and both simulators over HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.processes import free_port
from tests.support.stack import Stack, eventually
from tests.support.two_way import SECRET

pytestmark = pytest.mark.integration
ISSUES = 16
TAKES_TASKS = re.compile(r"Task jira_sync\.(flush_links|flush_inbound|jira_delivery)\[")


@pytest.fixture
def stack(service_env, jira, qalita, tmp_path):
    made = Stack(service_env, jira, qalita, tmp_path)
    yield made
    made.close()


def test_two_hosts_share_the_work_of_a_burst_from_both_sides_with_nothing_lost_or_doubled(
        stack):
    s = stack
    second_web = free_port()
    s.start("web")
    s.start("web", "2", JIRA_SYNC_WEB_PORT=str(second_web))
    workers = [s.start("worker", host) for host in ("host-a", "host-b")]
    beats = [s.start("beat"), s.start("beat", "2", ready=r"another beat holds the lock")]
    webs = [s.webhook_url, s.webhook_url.replace(str(s.web_port), str(second_web))]
    s.configure_jira(webhook_url=webs[0], webhook_secret=SECRET)

    issues = [s.qalita_new(title=f"issue {n}") for n in range(ISSUES)]
    keys = eventually(lambda: [j["key"] for i in issues if (j := s.jira_issue_of(i["id"]))]
                      if all(s.jira_issue_of(i["id"]) for i in issues) else None)
    # The burst: QALITA moves half the issues to other tables while people in Jira start the
    # others, and halfway Jira's webhook moves to the second web (a load balancer's other
    # replica).
    for n, (issue, key) in enumerate(zip(issues, keys, strict=True)):
        if n == ISSUES // 2:
            s.configure_jira(webhook_url=webs[1])
        if n % 2:
            s.qalita_change(issue["id"], dataset=f"table_{n}")
        else:
            s.transition(key, "Start Progress")

    def in_step() -> bool:
        for n, issue in enumerate(issues):
            jira_issue = s.jira_issue_of(issue["id"])
            if jira_issue is None:
                return False
            if n % 2 and f"table_{n}:" not in jira_issue["summary"]:
                return False
            if not n % 2 and s.qalita_issue(issue["id"])["status"] != "active":
                return False
        return True

    eventually(in_step, timeout=120)
    # One Jira issue per QALITA issue, and nothing more.
    assert len(s.jira_issues()) == ISSUES
    # Both webs took deliveries, and every delivery was answered 2xx at its first attempt.
    deliveries = requests.get(f"{s.jira.base_url}/_sim/webhooks", timeout=10).json()[
        "deliveries"]
    assert {d["attempts"][0]["url"] for d in deliveries} == set(webs)
    assert all(d["attempts"][0]["status"] < 300 for d in deliveries)
    # Both worker hosts did sync work, and exactly one beat scheduled.
    assert all(TAKES_TASKS.search(worker.output) for worker in workers)
    assert "lock acquired" in beats[0].output and "lock acquired" not in beats[1].output
