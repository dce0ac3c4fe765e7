"""People working in Jira through /_sim/issues/...: each action changes the issue the way the
REST API would and fires the same webhooks, with that person as the actor."""

from __future__ import annotations

import pytest

from jira_sync.simulators.jira import ProjectDef, TransitionDef
from jira_sync.simulators.jira.config import DONE, IN_PROGRESS, TO_DO

from .conftest import SVC, Jira, Receiver, adf

ACCOUNT_IDS = {"ana": "712020:ana-0001", "bo": "712020:bo-0002", "svc": "712020:svc-0000"}


def actor(body: dict, jira: Jira) -> str:
    """Who a webhook body says acted: the account id on Cloud, the username on Server."""
    user = body["user"]
    return user["accountId"] if jira.cloud else user["name"]


def who(name: str, jira: Jira) -> str:
    return ACCOUNT_IDS[name] if jira.cloud else name


def updates(receiver: Receiver) -> list[dict]:
    return [b for b in receiver.bodies() if b["webhookEvent"] == "jira:issue_updated"]


def changelog_ids(bodies: list[dict]) -> list[int]:
    return [int(b["changelog"]["id"]) for b in bodies]


@pytest.fixture(params=["cloud", "server"])
def site(request: pytest.FixtureRequest, hooked) -> Jira:
    return hooked(request.param)


# -- transitions ---------------------------------------------------------------------------


def test_transition_by_name_then_by_id_as_that_person(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    view = site.act(f"{key}/transition", {"as": "bo@example.com",
                                         "transition": "Start Progress"})
    assert view["key"] == key and view["status"]["id"] == IN_PROGRESS
    view = site.act(f"{key}/transition", {"transition": "31"})  # Ana by default
    assert (view["status"]["id"], view["resolution"]) == (DONE, "Done")
    site.flush()
    started, done = updates(receiver)
    assert [(actor(b, site), b["issue_event_type_name"]) for b in (started, done)] == [
        (who("bo", site), "issue_generic"), (who("ana", site), "issue_generic")]
    assert done["issue"]["fields"]["status"]["id"] == DONE
    assert changelog_ids([started, done])[0] < changelog_ids([started, done])[1]
    assert [h["author"] for h in view["histories"]] == ["bo@example.com", "ana@example.com"]


def test_a_transition_not_available_changes_nothing(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    response = site.sim_post(f"/issues/{key}/transition", {"transition": "Done"})
    assert response.status_code == 400
    assert "No transition 'Done' is available from status 'To Do'" in response.text
    assert site.sim(f"/issues/{key}")["status"]["id"] == TO_DO
    site.flush()
    assert updates(receiver) == []


def test_walking_to_a_status_is_one_change_per_hop(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    view = site.act(f"{key}/transition", {"as": "bo@example.com", "status": "Done"})
    assert view["status"]["name"] == "Done" and len(view["histories"]) == 2
    site.flush()
    hops = updates(receiver)
    assert [[(i["fieldId"], i["toString"]) for i in b["changelog"]["items"]] for b in hops] == [
        [("status", "In Progress")], [("resolution", "Done"), ("status", "Done")]]
    assert {actor(b, site) for b in hops} == {who("bo", site)}
    ids = changelog_ids(hops)
    assert ids == sorted(ids) and len(set(ids)) == 2
    assert [h["id"] for h in view["histories"]] == [str(i) for i in ids]
    again = site.act(f"{key}/transition", {"status": "done"})  # already there: nothing to do
    assert len(again["histories"]) == 2


def test_required_screen_fields_come_from_the_body_or_the_first_resolution(site: Jira) -> None:
    first, second = site.create(project="OPS")["key"], site.create(project="OPS")["key"]
    assert site.act(f"{first}/transition", {"status": "Done"})["resolution"] == "Done"
    view = site.act(f"{second}/transition", {"transition": "Close",
                                             "fields": {"resolution": {"name": "Won't Do"}}})
    assert (view["status"]["name"], view["resolution"]) == ("Done", "Won't Do")
    assert len(view["histories"]) == 1  # OPS closes from To Do in one hop


def test_fields_on_no_screen_of_the_walk_change_nothing(site: Jira) -> None:
    key = site.create()["key"]
    response = site.sim_post(f"/issues/{key}/transition", {
        "status": "Done", "fields": {"resolution": {"name": "Won't Do"}}})
    assert response.status_code == 400 and "resolution" in response.json()["errors"]
    assert site.sim(f"/issues/{key}")["histories"] == []


def test_walk_refusals(simulate) -> None:
    stuck = ProjectDef("STUCK", "Stuck", "10200", workflow=(
        TransitionDef("11", "Start", IN_PROGRESS, (TO_DO,)),
        TransitionDef("12", "Stop", TO_DO, (IN_PROGRESS,))))
    jira = simulate("cloud", projects=(stuck,))
    key = jira.create(project="STUCK")["key"]
    cases = [({"status": "Done"}, "No transitions lead from 'To Do' to 'Done'"),
             ({"status": "Nowhere"}, "There is no status 'Nowhere'"),
             ({"status": "Done", "transition": "Start"}, "exactly one of"),
             ({}, "exactly one of"),
             ({"status": "Done", "colour": "red"}, "Unknown keys: colour"),
             ({"status": "Done", "as": "eve@example.com"}, "No user has the e-mail")]
    for body, message in cases:
        response = jira.sim_post(f"/issues/{key}/transition", body)
        assert response.status_code == 400, body
        assert message in response.text, (body, response.text)


def test_unknown_and_deleted_issues_are_404(cloud: Jira) -> None:
    key = cloud.create()["key"]
    cloud.sim_delete(f"/issues/{key}")
    for path, body in ((f"{key}/transition", {"status": "Done"}), ("DATA-99/assign",
                                                                  {"assignee": None}),
                       (f"{key}/edit", {"summary": "x"}), (f"{key}/comments", {"body": "x"}),
                       (f"{key}/move", {"project": "OPS"})):
        assert cloud.sim_post(f"/issues/{path}", body).status_code == 404, path
    assert cloud.sim_delete(f"/issues/{key}").status_code == 404


# -- assign and edit -----------------------------------------------------------------------


def test_assign_and_unassign(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    assert site.act(f"{key}/assign", {"assignee": "bo@example.com"})["assignee"] == (
        "bo@example.com")
    site.act(f"{key}/assign", {"as": "bo@example.com", "assignee": "bo@example.com"})
    assert site.act(f"{key}/assign", {"as": "bo@example.com", "assignee": None})[
        "assignee"] is None
    site.flush()
    assigned, unassigned = updates(receiver)  # assigning the current assignee sent nothing
    assert (actor(assigned, site), assigned["issue_event_type_name"]) == (
        who("ana", site), "issue_assigned")
    assert assigned["changelog"]["items"][0]["to"] == who("bo", site)
    assert actor(unassigned, site) == who("bo", site)
    assert unassigned["issue"]["fields"]["assignee"] is None
    for body in ({"assignee": "eve@example.com"}, {"as": "bo@example.com"}):
        assert site.sim_post(f"/issues/{key}/assign", body).status_code == 400


def test_the_service_account_can_act_too(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    site.act(f"{key}/assign", {"as": SVC[0], "assignee": "ana@example.com"})
    site.flush()
    assert actor(updates(receiver)[0], site) == who("svc", site)


def test_edit_is_one_change_with_an_item_per_field(site: Jira, receiver: Receiver) -> None:
    key = site.create(labels=["qalita", "stale"])["key"]
    view = site.act(f"{key}/edit", {
        "as": "bo@example.com", "summary": "Orders are late", "description": "Two\nlines\n\nEnd",
        "add_labels": ["triaged"], "remove_labels": ["stale"]})
    expected = adf("x") if site.cloud else "Two\nlines\n\nEnd"
    if site.cloud:
        expected["content"] = [
            {"type": "paragraph", "content": [{"type": "text", "text": "Two"},
                                              {"type": "hardBreak"},
                                              {"type": "text", "text": "lines"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "End"}]}]
    assert view["description"] == expected
    assert site.get(f"/issue/{key}").json()["fields"]["description"] == expected
    assert view["summary"] == "Orders are late" and view["labels"] == ["qalita", "triaged"]
    site.flush()
    (edited,) = updates(receiver)
    assert actor(edited, site) == who("bo", site)
    assert edited["issue_event_type_name"] == "issue_updated"
    assert [(i["fieldId"], i["toString"]) for i in edited["changelog"]["items"]] == [
        ("summary", "Orders are late"), ("description", "Two\nlines\n\nEnd"),
        ("labels", "qalita triaged")]
    assert edited["issue"]["fields"]["description"] == "Two\nlines\n\nEnd"  # wiki in webhooks


def test_labels_replace_the_list_then_add_and_remove_apply(cloud: Jira) -> None:
    key = cloud.create(labels=["a", "b"])["key"]
    view = cloud.act(f"{key}/edit", {"labels": ["x", "y"], "add_labels": ["z"],
                                     "remove_labels": ["x"]})
    assert view["labels"] == ["y", "z"]
    assert cloud.act(f"{key}/edit", {"description": ""})["description"] is None


def test_an_edit_that_changes_nothing_fires_nothing(site: Jira, receiver: Receiver) -> None:
    key = site.create(labels=["qalita"])["key"]
    view = site.act(f"{key}/edit", {"summary": "Orders table is stale",
                                    "add_labels": ["qalita"], "remove_labels": ["absent"]})
    assert view["histories"] == []
    site.flush()
    assert receiver.events() == ["jira:issue_created"]


def test_edit_refusals(cloud: Jira) -> None:
    key = cloud.create()["key"]
    for body, where in (({"summary": "x" * 256}, "summary"), ({"add_labels": ["two words"]},
                                                             "labels"),
                        ({"description": 3}, "description"), ({"add_labels": "x"}, "add_labels"),
                        ({"title": "x"}, "Unknown keys: title")):
        response = cloud.sim_post(f"/issues/{key}/edit", body)
        assert response.status_code == 400 and where in response.text, (body, response.text)
    assert cloud.sim(f"/issues/{key}")["histories"] == []


# -- comments ------------------------------------------------------------------------------


def test_comment_add_edit_delete_as_people(site: Jira, receiver: Receiver) -> None:
    key = site.create()["key"]
    response = site.sim_post(f"/issues/{key}/comments", {"as": "bo@example.com",
                                                          "body": "Looks bad"})
    assert response.status_code == 201
    comment = response.json()
    assert (comment["author"], comment["body"]) == (
        "bo@example.com", adf("Looks bad") if site.cloud else "Looks bad")
    edited = site.sim_put(f"/issues/{key}/comments/{comment['id']}", {"body": "Looks fine"})
    assert (edited.json()["author"], edited.json()["update_author"]) == (
        "bo@example.com", "ana@example.com")
    same = site.sim_put(f"/issues/{key}/comments/{comment['id']}", {"body": "Looks fine"})
    assert same.json()["updated"] == edited.json()["updated"]
    view = site.sim_delete(f"/issues/{key}/comments/{comment['id']}", **{"as": "bo@example.com"})
    assert view.json()["comments"] == []
    site.flush()
    bodies = receiver.bodies()[1:]
    assert [(b["webhookEvent"], b.get("issue_event_type_name")) for b in bodies] == [
        ("comment_created", None), ("jira:issue_updated", "issue_commented"),
        ("comment_updated", None), ("jira:issue_updated", "issue_comment_edited"),
        ("comment_deleted", None), ("jira:issue_updated", "issue_comment_deleted")]
    created, commented, updated, _, _, deleted = bodies
    assert created["comment"]["body"] == "Looks bad"
    assert who("bo", site) in (created["comment"]["author"].get("accountId"),
                               created["comment"]["author"].get("name"))
    assert actor(commented, site) == who("bo", site)
    assert who("ana", site) in (updated["comment"]["updateAuthor"].get("accountId"),
                                updated["comment"]["updateAuthor"].get("name"))
    assert actor(deleted, site) == who("bo", site)


def test_comment_refusals(cloud: Jira) -> None:
    key = cloud.create()["key"]
    assert cloud.sim_post(f"/issues/{key}/comments", {"body": ""}).status_code == 400
    assert cloud.sim_put(f"/issues/{key}/comments/999", {"body": "x"}).status_code == 404
    assert cloud.sim_delete(f"/issues/{key}/comments/999").status_code == 404
    comment = cloud.act(f"{key}/comments", {"body": "kept"})
    assert cloud.sim_delete(f"/issues/{key}/comments/{comment['id']}",
                            **{"as": "eve@example.com"}).status_code == 400
    assert [c["id"] for c in cloud.sim(f"/issues/{key}")["comments"]] == [comment["id"]]


# -- deletion ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["person", "rest"])
def test_deleting_sends_secondary_comment_deletions(hooked, receiver: Receiver, by: str) -> None:
    jira = hooked("cloud")
    key = jira.create()["key"]
    comments = [jira.act(f"{key}/comments", {"body": text})["id"] for text in ("one", "two")]
    if by == "person":
        view = jira.sim_delete(f"/issues/{key}", **{"as": "bo@example.com"}).json()
        assert view["deleted"] is True
    else:
        assert jira.delete(f"/issue/{key}").status_code == 204
    jira.flush()
    tail = receiver.deliveries[-3:]
    bodies = receiver.bodies()[-3:]
    assert [(b["webhookEvent"], h["X-Atlassian-Webhook-Flow"]) for (h, _), b in
            zip(tail, bodies, strict=True)] == [
        ("jira:issue_deleted", "Primary"), ("comment_deleted", "Secondary"),
        ("comment_deleted", "Secondary")]
    assert [b["comment"]["id"] for b in bodies[1:]] == comments
    expected = "bo" if by == "person" else "svc"
    assert bodies[0]["user"]["accountId"] == ACCOUNT_IDS[expected]
    flows = [d["flow"] for d in jira.sim("/webhooks")["deliveries"]]
    assert flows[-3:] == ["Primary", "Secondary", "Secondary"]
    assert jira.get(f"/issue/{key}").status_code == 404


# -- moves ---------------------------------------------------------------------------------


def test_move_gives_the_next_key_keeps_the_id_and_the_old_key(site: Jira,
                                                                receiver: Receiver) -> None:
    site.create(project="OPS")
    created = site.create(components=[{"name": "billing"}])
    view = site.act(f"{created['key']}/move", {"as": "bo@example.com", "project": "OPS"})
    assert (view["id"], view["key"], view["project"]) == (created["id"], "OPS-2", "OPS")
    assert view["previous_keys"] == ["DATA-1"] and view["components"] == []
    by_old_key = site.get("/issue/DATA-1").json()
    assert (by_old_key["id"], by_old_key["key"]) == (created["id"], "OPS-2")
    assert site.sim("/issues/DATA-1")["key"] == "OPS-2"
    found = site.search("key = DATA-1", fields="key").json()["issues"]
    assert [i["key"] for i in found] == ["OPS-2"]
    assert site.search("project = DATA", fields="key").json()["issues"] == []
    assert site.create()["key"] == "DATA-2"
    site.flush()
    (moved,) = updates(receiver)
    assert (moved["issue_event_type_name"], actor(moved, site)) == (
        "issue_moved", who("bo", site))
    assert moved["issue"]["key"] == "OPS-2" and moved["issue"]["id"] == created["id"]
    items = moved["changelog"]["items"]
    assert items[:2] == [
        {"field": "project", "fieldtype": "jira", "fieldId": "project", "from": "10000",
         "fromString": "Data Quality", "to": "10001", "toString": "Operations"},
        {"field": "Key", "fieldtype": "jira", "fieldId": "issuekey", "from": None,
         "fromString": "DATA-1", "to": None, "toString": "OPS-2"}]
    assert [(i["fieldId"], i["fromString"]) for i in items[2:]] == [("components", "billing")]
    assert view["histories"][0]["id"] == moved["changelog"]["id"]


def test_move_with_another_issue_type(cloud: Jira, receiver: Receiver) -> None:
    key = cloud.create()["key"]
    view = cloud.act(f"{key}/move", {"project": "OPS", "issue_type": "Task"})
    assert view["issuetype"] == "Task"
    items = view["histories"][0]["items"]
    assert [(i["fieldId"], i["fromString"], i["toString"]) for i in items] == [
        ("project", "Data Quality", "Operations"), ("issuekey", "DATA-1", "OPS-1"),
        ("issuetype", "Bug", "Task")]


def test_move_refusals(cloud: Jira) -> None:
    key = cloud.create()["key"]
    for body, message in (({"project": "DATA"}, "already in project 'DATA'"),
                          ({"project": "NOPE"}, "No project could be found"),
                          ({"project": "OPS", "issue_type": "Epic"}, "'Epic' is not available"),
                          ({}, "'project' must be a string")):
        response = cloud.sim_post(f"/issues/{key}/move", body)
        assert response.status_code == 400 and message in response.text, (body, response.text)
    assert cloud.sim(f"/issues/{key}")["key"] == key
