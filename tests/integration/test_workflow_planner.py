"""The workflow planner against the Jira simulator over real HTTP, on both deployments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from jira_sync.jira.auth import BasicAuth, BearerAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.jira.workflow import WorkflowBlocked, WorkflowGraph, move_to_category
from jira_sync.remote import PermanentError, RetryPolicy, TransientError
from jira_sync.simulators.jira import (
    FieldDef,
    ProjectDef,
    SimulatorConfig,
    TransitionDef,
    running_simulator,
)
from jira_sync.simulators.jira.config import DONE, IN_PROGRESS, TO_DO, default_projects

pytestmark = pytest.mark.integration
FAST = RetryPolicy(max_tries=4, base_seconds=0.01, cap_seconds=0.05)
DEPLOYMENTS = pytest.mark.parametrize("deployment", ["cloud", "server"])
ROOT_CAUSE = FieldDef("customfield_10050", "Root cause")

# To Do <-> In Progress and nothing else: no way to any "done" status.
LOOP = ProjectDef("LOOP", "Loop", "10002", (
    TransitionDef("21", "Start Progress", IN_PROGRESS, (TO_DO,)),
    TransitionDef("61", "Stop Progress", TO_DO, (IN_PROGRESS,)),
))
# Done needs a root cause on its screen, which only a configured default can give.
RCA = ProjectDef("RCA", "Root causes", "10003", (
    TransitionDef("21", "Start Progress", IN_PROGRESS, (TO_DO,)),
    TransitionDef("31", "Done", DONE, (IN_PROGRESS,), (ROOT_CAUSE.id,), (ROOT_CAUSE.id,)),
    TransitionDef("41", "Reopen", TO_DO, (DONE,)),
), fields=(ROOT_CAUSE,))
# A one-hop Close that needs the root cause, and a two-hop route that needs nothing.
ALT = ProjectDef("ALT", "Alternatives", "10004", (
    TransitionDef("51", "Close", DONE, (TO_DO,), (ROOT_CAUSE.id,), (ROOT_CAUSE.id,)),
    TransitionDef("21", "Start Progress", IN_PROGRESS, (TO_DO,)),
    TransitionDef("31", "Done", DONE, (IN_PROGRESS,)),
), fields=(ROOT_CAUSE,))
PROJECTS = (*default_projects(), LOOP, RCA, ALT)


@contextmanager
def jira(deployment: str, client_class: type[JiraClient] = JiraClient,
         **config) -> Iterator[tuple[object, JiraClient]]:
    sim_config = SimulatorConfig(deployment=deployment, projects=PROJECTS, **config)
    with running_simulator(sim_config) as sim:
        auth = BasicAuth("svc@example.com", "tok-123") if deployment == "cloud" \
            else BearerAuth("pat-123")
        yield sim, client_class(JiraSite(sim.base_url, deployment), auth, policy=FAST)


def new_issue(client: JiraClient, project: str = "DATA") -> str:
    return client.create_issue({"project": {"key": project}, "issuetype": {"name": "Task"},
                                "summary": "Null rate above threshold"})["key"]


def status(client: JiraClient, issue: str) -> dict:
    return client.get_issue(issue, fields=("status",))["fields"]["status"]


def calls(sim, **filters) -> list[dict]:
    return requests.get(f"{sim.base_url}/_sim/calls", params=filters, timeout=10).json()


def transition_posts(sim, client: JiraClient) -> list[dict]:
    return calls(sim, method="POST", path=f"{client.site.api}/issue/*/transitions")


@DEPLOYMENTS
def test_to_do_to_done_takes_two_hops_in_a_fresh_graph(deployment):
    with jira(deployment) as (sim, client):
        issue = new_issue(client)
        made = move_to_category(client, issue, "done", graph=WorkflowGraph())
        assert made == ["Start Progress", "Done"]
        assert status(client, issue)["name"] == "Done"
        assert len(transition_posts(sim, client)) == 2


@DEPLOYMENTS
def test_done_back_to_new_and_to_indeterminate_through_new(deployment):
    with jira(deployment) as (_sim, client):
        graph = WorkflowGraph()
        issue = new_issue(client)
        move_to_category(client, issue, "done", graph=graph)
        assert move_to_category(client, issue, "new", graph=graph) == ["Reopen"]
        assert status(client, issue)["statusCategory"]["key"] == "new"
        move_to_category(client, issue, "done", graph=graph)
        made = move_to_category(client, issue, "indeterminate", graph=graph)
        assert made == ["Reopen", "Start Progress"]
        assert status(client, issue)["name"] == "In Progress"
        # A fresh graph gets there too, by exploring To Do first.
        other = new_issue(client)
        move_to_category(client, other, "done", graph=graph)
        fresh = move_to_category(client, other, "indeterminate", graph=WorkflowGraph())
        assert fresh == ["Reopen", "Start Progress"]


@DEPLOYMENTS
def test_a_required_resolution_is_filled(deployment):
    with jira(deployment) as (_sim, client):
        issue = new_issue(client, "OPS")
        with pytest.raises(PermanentError) as refused:  # the simulator insists on it
            client.transition(issue, "51")
        assert refused.value.status == 400 and "resolution" in str(refused.value).lower()
        assert move_to_category(client, issue, "done", graph=WorkflowGraph()) == ["Close"]
        fields = client.get_issue(issue)["fields"]
        assert fields["status"]["name"] == "Done" and fields["resolution"]["name"] == "Done"
        other = new_issue(client, "OPS")
        move_to_category(client, other, "done", graph=WorkflowGraph(),
                         field_defaults={"resolution": {"name": "Won't Do"}})
        assert client.get_issue(other)["fields"]["resolution"]["name"] == "Won't Do"


@DEPLOYMENTS
def test_already_in_the_category_makes_no_call(deployment):
    with jira(deployment) as (sim, client):
        issue = new_issue(client)
        current = client.get_issue(issue)
        assert move_to_category(client, issue, "new", graph=WorkflowGraph(),
                                current=current) == []
        assert move_to_category(client, issue, "new", graph=WorkflowGraph()) == []
        assert transition_posts(sim, client) == []
        assert calls(sim, path=f"{client.site.api}/issue/*/transitions") == []


@DEPLOYMENTS
def test_no_path_to_done_is_blocked_with_a_reason(deployment):
    with jira(deployment) as (_sim, client):
        issue = new_issue(client, "LOOP")
        with pytest.raises(WorkflowBlocked) as blocked:
            move_to_category(client, issue, "done", graph=WorkflowGraph())
        assert blocked.value.reason == ("no known path from 'To Do' to a status in category "
                                        "'done' (tried: Start Progress -> In Progress)")
        assert blocked.value.made == ["Start Progress"]


@DEPLOYMENTS
def test_the_hop_bound_stops_the_walk(deployment):
    with jira(deployment) as (_sim, client):
        issue = new_issue(client)
        with pytest.raises(WorkflowBlocked) as blocked:
            move_to_category(client, issue, "done", graph=WorkflowGraph(), max_hops=1)
        assert "within 1 transitions" in blocked.value.reason
        assert status(client, issue)["name"] == "In Progress"


@DEPLOYMENTS
def test_a_required_custom_field_needs_a_default(deployment):
    with jira(deployment) as (sim, client):
        graph = WorkflowGraph()
        issue = new_issue(client, "RCA")
        with pytest.raises(WorkflowBlocked) as blocked:
            move_to_category(client, issue, "done", graph=graph)
        assert blocked.value.reason == ("transition 'Done' requires field 'customfield_10050' "
                                        "(Root cause), which has no configured default")
        made = move_to_category(client, issue, "done", graph=graph,
                                field_defaults={ROOT_CAUSE.id: "Upstream schema change"})
        assert made == ["Done"]
        assert status(client, issue)["name"] == "Done"
        # The simulator keeps only the resolution of a transition screen: check what was sent.
        assert transition_posts(sim, client)[-1]["body"] == {
            "transition": {"id": "31"}, "fields": {ROOT_CAUSE.id: "Upstream schema change"}}


@DEPLOYMENTS
def test_a_path_needing_no_missing_field_is_preferred(deployment):
    with jira(deployment) as (_sim, client):
        graph = WorkflowGraph()
        issue = new_issue(client, "ALT")
        assert move_to_category(client, issue, "done", graph=graph) == ["Start Progress", "Done"]
        other = new_issue(client, "ALT")
        assert move_to_category(client, other, "done", graph=graph,
                                field_defaults={ROOT_CAUSE.id: "x"}) == ["Close"]


def faulty_once(base: type[JiraClient]) -> type[JiraClient]:
    """A client whose first transition runs with the simulator failing every call."""

    class Faulty(base):
        faulted = False

        def transition(self, issue, transition_id, fields=None):
            if self.faulted:
                return super().transition(issue, transition_id, fields)
            self.faulted = True
            config = f"{self.site.base_url}/_sim/config"
            requests.post(config, json={"fail_rate": 1.0}, timeout=10).raise_for_status()
            try:
                return super().transition(issue, transition_id, fields)
            finally:
                requests.post(config, json={"fail_rate": 0.0}, timeout=10).raise_for_status()

    return Faulty


# Under these seeds the first injected fault comes after (5: a 500, 6: a dropped connection)
# or before (3: a 502) the change is applied.
@DEPLOYMENTS
@pytest.mark.parametrize(("seed", "applied"), [(5, True), (6, True), (3, False)])
def test_a_maybe_applied_transition_continues_from_the_real_status(deployment, seed, applied):
    with jira(deployment, faulty_once(JiraClient), seed=seed) as (sim, client):
        issue = new_issue(client)
        made = move_to_category(client, issue, "done", graph=WorkflowGraph())
        assert made == ["Start Progress", "Done"]
        assert status(client, issue)["name"] == "Done"
        posts = transition_posts(sim, client)
        assert posts[0]["fault"] == ("after" if applied else "before")
        assert len(posts) == (2 if applied else 3)
        assert not calls(sim, status=400)  # never a stale second Start Progress


class AppliesThenFails(JiraClient):
    """Every transition goes through, and then the answer is lost."""

    def transition(self, issue, transition_id, fields=None):
        super().transition(issue, transition_id, fields)
        raise TransientError("transition: HTTP 504", status=504, maybe_applied=True)


class FailsCleanly(JiraClient):
    def transition(self, issue, transition_id, fields=None):
        raise TransientError("transition: rate limited", status=429)


class StaleOnce(JiraClient):
    stale = 0

    def transition(self, issue, transition_id, fields=None):
        if self.stale < self.limit:
            self.stale += 1
            raise PermanentError("transition: HTTP 400: not valid", status=400)
        super().transition(issue, transition_id, fields)


@DEPLOYMENTS
def test_transition_errors(deployment):
    with jira(deployment, AppliesThenFails) as (sim, client):
        issue = new_issue(client)
        assert move_to_category(client, issue, "done", graph=WorkflowGraph()) == [
            "Start Progress", "Done"]
        assert len(transition_posts(sim, client)) == 2
    with jira(deployment, FailsCleanly) as (_sim, client), pytest.raises(TransientError):
        move_to_category(client, new_issue(client), "done", graph=WorkflowGraph())
    with jira(deployment, StaleOnce) as (_sim, client):
        client.limit = 1  # one 400 is re-planned from a fresh listing
        assert move_to_category(client, new_issue(client), "done", graph=WorkflowGraph()) == [
            "Start Progress", "Done"]
        client.stale, client.limit = 0, 2  # a second one is a real refusal
        with pytest.raises(PermanentError):
            move_to_category(client, new_issue(client), "done", graph=WorkflowGraph())


@DEPLOYMENTS
def test_a_graph_taught_wrong_edges_is_forgotten_before_giving_up(deployment):
    """A transitions listing that raced another change is learned under the wrong status:
    here In Progress is believed to lead only back to To Do."""
    with jira(deployment) as (_sim, client):
        graph = WorkflowGraph()
        issue = new_issue(client)
        key = ("DATA", str(client.get_issue(issue, fields=("issuetype",))
                           ["fields"]["issuetype"]["id"]))
        done_listing = client.transitions(issue)  # as listed at To Do
        reopen_like = [{**t, "to": {**t["to"], "id": TO_DO, "name": "To Do",
                                    "statusCategory": {"key": "new"}}} for t in done_listing]
        graph.learn(key, IN_PROGRESS, reopen_like)
        assert move_to_category(client, issue, "done", graph=graph) == ["Start Progress", "Done"]
        assert status(client, issue)["statusCategory"]["key"] == "done"


@DEPLOYMENTS
def test_before_write_runs_before_each_transition_and_can_stop_the_walk(deployment):
    class Stop(Exception):
        pass

    with jira(deployment) as (sim, client):
        issue = new_issue(client)
        seen: list[tuple[str, str]] = []

        def check(to) -> None:
            seen.append((status(client, issue)["name"], to["statusCategory"]["key"]))
            if len(seen) == 2:
                raise Stop

        with pytest.raises(Stop):
            move_to_category(client, issue, "done", graph=WorkflowGraph(), before_write=check)
        # Told where each hop goes, before it is made.
        assert seen == [("To Do", "indeterminate"), ("In Progress", "done")]
        assert len(transition_posts(sim, client)) == 1
