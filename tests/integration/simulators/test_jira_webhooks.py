"""Webhooks: events, bodies shaped like real captures, headers, signatures, retries, orders."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from .conftest import ANA, RETRY_FAST, Jira, Receiver, adf

SAMPLES = Path(__file__).parents[2] / "fixtures" / "jira" / "webhooks"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def standard_fields(fields: dict) -> set[str]:
    return {name for name in fields if not name.startswith("customfield_")}


def flush(jira: Jira) -> dict:
    return jira.flush()


def test_issue_lifecycle_events(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    key = jira.create(labels=["qalita"], description=adf("Hello *world*"))["key"]
    jira.put(f"/issue/{key}", {"update": {"labels": [{"add": "triaged"}]}})
    jira.as_user(ANA).put(f"/issue/{key}/assignee", {"accountId": "712020:ana-0001"})
    jira.post(f"/issue/{key}/transitions", {"transition": {"id": "21"}})
    jira.post(f"/issue/{key}/transitions", {"transition": {"id": "31"}})
    jira.delete(f"/issue/{key}")
    flush(jira)
    bodies = receiver.bodies()
    assert [(b["webhookEvent"], b["issue_event_type_name"]) for b in bodies] == [
        ("jira:issue_created", "issue_created"), ("jira:issue_updated", "issue_updated"),
        ("jira:issue_updated", "issue_assigned"), ("jira:issue_updated", "issue_generic"),
        ("jira:issue_updated", "issue_generic"), ("jira:issue_deleted", "issue_deleted")]
    created, labels, assigned, started, done, _ = bodies
    assert created["user"]["accountId"] == "712020:svc-0000"
    assert created["issue"]["fields"]["description"] == "Hello *world*"  # wiki, not ADF
    assert created["issue"]["self"].endswith(f"/rest/api/2/issue/{created['issue']['id']}")
    initial = {item["fieldId"]: item for item in created["changelog"]["items"]}
    assert initial["summary"]["toString"] == "Orders table is stale"
    assert initial["status"]["to"] == "10000"
    assert initial["labels"]["toString"] == "qalita"
    assert labels["changelog"]["items"] == [{
        "field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None,
        "fromString": "qalita", "to": None, "toString": "qalita triaged"}]
    assert assigned["user"]["accountId"] == "712020:ana-0001"
    assert assigned["changelog"]["items"] == [{
        "field": "assignee", "fieldtype": "jira", "fieldId": "assignee", "from": None,
        "fromString": None, "to": "712020:ana-0001", "toString": "Ana",
        "tmpFromAccountId": None, "tmpToAccountId": "712020:ana-0001"}]
    assert [(i["fieldId"], i["fromString"], i["toString"]) for i in started["changelog"]["items"]
            ] == [("status", "To Do", "In Progress")]
    assert [(i["fieldId"], i["from"], i["to"]) for i in done["changelog"]["items"]] == [
        ("resolution", None, "10000"), ("status", "3", "10001")]
    assert done["issue"]["fields"]["status"]["statusCategory"]["key"] == "done"
    assert len({b["timestamp"] for b in bodies}) >= 1
    assert all(isinstance(b["timestamp"], int) and b["timestamp"] > 10 ** 12 for b in bodies)


def test_server_bodies_use_usernames(hooked, receiver: Receiver) -> None:
    jira = hooked("server")
    key = jira.create()["key"]
    jira.as_user(ANA).put(f"/issue/{key}", {"fields": {"assignee": {"name": "bo"}}})
    flush(jira)
    _, assigned = receiver.bodies()
    assert assigned["user"]["name"] == "ana" and "accountId" not in assigned["user"]
    item = assigned["changelog"]["items"][0]
    assert (item["from"], item["to"], item["toString"]) == (None, "bo", "Bo")
    assert "tmpToAccountId" not in item


def test_comment_events(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    key = jira.create()["key"]
    comment = jira.as_user(ANA).post(f"/issue/{key}/comment", {"body": adf("Looks bad")}).json()
    jira.put(f"/issue/{key}/comment/{comment['id']}", {"body": adf("Looks fine")})
    jira.delete(f"/issue/{key}/comment/{comment['id']}")
    flush(jira)
    bodies = receiver.bodies()[1:]
    assert [(b["webhookEvent"], b.get("issue_event_type_name")) for b in bodies] == [
        ("comment_created", None), ("jira:issue_updated", "issue_commented"),
        ("comment_updated", None), ("jira:issue_updated", "issue_comment_edited"),
        ("comment_deleted", None), ("jira:issue_updated", "issue_comment_deleted")]
    created = bodies[0]
    assert created["comment"]["body"] == "Looks bad"
    assert created["comment"]["author"]["accountId"] == "712020:ana-0001"
    assert "user" not in created  # as in the captured Cloud comment_* bodies
    assert bodies[1]["user"]["displayName"] == "Ana" and bodies[1]["comment"]["id"] == comment["id"]
    assert bodies[2]["comment"]["body"] == "Looks fine"


def test_subscribed_events_and_comment_double_delivery_are_configurable(hooked,
                                                                        receiver: Receiver):
    jira = hooked("cloud", webhook_events=("comment_created",), comment_issue_updated=False)
    key = jira.create()["key"]
    jira.post(f"/issue/{key}/comment", {"body": adf("x")})
    flush(jira)
    assert receiver.events() == ["comment_created"]


def test_headers_and_signature(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud", webhook_secret="It's a Secret to Everybody")
    jira.create()
    jira.create()
    flush(jira)
    identifiers = set()
    for headers, raw in receiver.deliveries:
        assert headers["Content-Type"] == "application/json"
        assert "X-Atlassian-Webhook-Retry" not in headers
        expected = hmac.new(b"It's a Secret to Everybody", raw, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature"] == f"sha256={expected}"
        identifiers.add(headers["X-Atlassian-Webhook-Identifier"])
    assert len(identifiers) == 2


def test_no_signature_without_a_secret(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    jira.create()
    flush(jira)
    assert "X-Hub-Signature" not in receiver.deliveries[0][0]


def test_retries_keep_the_identifier(hooked, receiver: Receiver) -> None:
    receiver.plan = [503, 429]
    jira = hooked("cloud")
    jira.create()
    state = flush(jira)
    assert len(receiver.deliveries) == 3
    identifiers = {h["X-Atlassian-Webhook-Identifier"] for h, _ in receiver.deliveries}
    assert len(identifiers) == 1
    assert [h.get("X-Atlassian-Webhook-Retry") for h, _ in receiver.deliveries] == [None, "1", "2"]
    delivery = state["deliveries"][0]
    assert delivery["id"] in identifiers
    assert (delivery["state"], delivery["status"], delivery["attempt_count"]) == (
        "delivered", 200, 3)
    assert [a["status"] for a in delivery["attempts"]] == [503, 429, 200]


def test_gives_up_after_five_retries_and_never_retries_a_4xx(hooked, receiver: Receiver):
    receiver.plan = [500] * 6
    jira = hooked("cloud")
    jira.create()
    flush(jira)
    receiver.plan = [400]
    jira.create()
    deliveries = flush(jira)["deliveries"]
    assert [(d["state"], d["attempt_count"]) for d in deliveries] == [("failed", 6),
                                                                      ("failed", 1)]
    assert len(receiver.deliveries) == 7


def test_connection_errors_are_retried(simulate, receiver: Receiver) -> None:
    jira = simulate("cloud", webhook_url="http://127.0.0.1:9/unreachable", **RETRY_FAST)
    jira.create()
    jira.sim_post("/config", {"webhook_url": receiver.url})
    flush(jira)
    delivery = jira.sim("/webhooks")["deliveries"][0]
    assert delivery["attempts"][0]["error"] and delivery["state"] == "delivered"
    assert receiver.deliveries[0][0]["X-Atlassian-Webhook-Retry"] == "1"


def test_duplicate_order_sends_each_delivery_twice(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud", webhook_order="duplicate")
    jira.create()
    jira.create()
    flush(jira)
    identifiers = [h["X-Atlassian-Webhook-Identifier"] for h, _ in receiver.deliveries]
    assert len(identifiers) == 4 and len(set(identifiers)) == 2
    assert all(identifiers.count(i) == 2 for i in identifiers)
    bodies = {raw for _, raw in receiver.deliveries}
    assert len(bodies) == 2  # the copy is byte for byte the same delivery


def test_shuffle_order_delivers_everything_out_of_order(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud", webhook_order="shuffle", seed=5)
    created = [jira.create(summary=f"issue {n}")["key"] for n in range(10)]
    flush(jira)
    received = [body["issue"]["key"] for body in receiver.bodies()]
    assert sorted(received) == sorted(created)
    assert received != created


def test_payload_visible_through_the_inspection_api(hooked) -> None:
    jira = hooked("cloud")
    jira.create()
    flush(jira)
    delivery = jira.sim("/webhooks", params={"payload": 1})["deliveries"][0]
    assert delivery["payload"]["webhookEvent"] == "jira:issue_created"
    assert delivery["event"] == "jira:issue_created" and delivery["issue_key"] == "DATA-1"
    assert jira.sim_post("/webhooks/flush").json() == {"pending": 0, "idle": True}


# -- shapes against the captured samples ---------------------------------------------------


def test_cloud_created_body_matches_the_2026_capture(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    jira.create()
    flush(jira)
    ours, real = receiver.bodies()[0], sample("cloud-2026_issue_created_with_changelog__zulip.json")
    assert set(ours) == set(real)
    assert set(ours["user"]) == set(real["user"])
    assert set(ours["issue"]) == set(real["issue"])
    assert standard_fields(ours["issue"]["fields"]) == standard_fields(real["issue"]["fields"])
    for name in ("status", "issuetype", "project", "priority", "statusCategory"):
        assert set(ours["issue"]["fields"][name]) <= set(real["issue"]["fields"][name]) | {
            "avatarId", "hierarchyLevel"}, name
    assert set(ours["issue"]["fields"]["status"]["statusCategory"]) == set(
        real["issue"]["fields"]["status"]["statusCategory"])
    assert set(ours["changelog"]) == set(real["changelog"])
    reporter = next(i for i in ours["changelog"]["items"] if i["fieldId"] == "reporter")
    assert set(reporter) == set(real["changelog"]["items"][-1])


def test_server_updated_body_matches_the_2016_capture(hooked, receiver: Receiver) -> None:
    jira = hooked("server")
    key = jira.create()["key"]
    jira.post(f"/issue/{key}/transitions", {"transition": {"id": "21"}})
    flush(jira)
    ours = receiver.bodies()[1]
    real = sample("server-2016_issue_updated_status_resolution__jenkinsci-jira-trigger-plugin"
                  ".json")
    assert set(ours) == set(real) | {"issue_event_type_name"}
    assert set(ours["user"]) == set(real["user"])
    assert standard_fields(ours["issue"]["fields"]) == standard_fields(real["issue"]["fields"])
    assert set(ours["issue"]["fields"]["comment"]) == set(real["issue"]["fields"]["comment"]) | {
        "self"}
    real_item = real["changelog"]["items"][0]
    assert set(ours["changelog"]["items"][0]) == set(real_item) | {"fieldId"}


def test_comment_body_matches_the_2018_capture(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    key = jira.create()["key"]
    jira.post(f"/issue/{key}/comment", {"body": adf("comment body")})
    flush(jira)
    ours = receiver.bodies()[1]
    real = sample("cloud-2018_comment_created__jenkinsci-jira-trigger-plugin.json")
    assert set(ours) == set(real)
    assert set(ours["issue"]["fields"]) == set(real["issue"]["fields"])
    assert set(real["comment"]) - {"name", "key"} <= set(ours["comment"])
    assert ours["comment"]["body"] == real["comment"]["body"] == "comment body"


def test_adf_reaches_webhooks_as_wiki_markup(hooked, receiver: Receiver) -> None:
    def text(value: str, *marks: dict) -> dict:
        return {"type": "text", "text": value, **({"marks": list(marks)} if marks else {})}

    def paragraph(*nodes: dict) -> dict:
        return {"type": "paragraph", "content": list(nodes)}

    doc = {"type": "doc", "version": 1, "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Evidence")]},
        paragraph(text("last load "), text("26 h", {"type": "strong"}), text(" ago"),
                  {"type": "hardBreak"}, text("see "),
                  text("run 812", {"type": "link", "attrs": {"href": "https://q.example/r/812"}})),
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [paragraph(text("observed: 26"))]},
            {"type": "listItem", "content": [paragraph(text("expected: "),
                                                       text("<= 24", {"type": "code"}))]}]},
        {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [text("select 1")]},
        {"type": "rule"},
    ]}
    jira = hooked("cloud")
    jira.create(description=doc)
    flush(jira)
    assert receiver.bodies()[0]["issue"]["fields"]["description"] == (
        "h2. Evidence\n\n"
        "last load *26 h* ago\nsee [run 812|https://q.example/r/812]\n\n"
        "* observed: 26\n* expected: {{<= 24}}\n\n"
        "{code:sql}\nselect 1\n{code}\n\n"
        "----")


# -- deliveries lost on purpose -------------------------------------------------------------


def test_drop_exactly_the_next_deliveries(hooked, receiver: Receiver) -> None:
    jira = hooked("cloud")
    assert jira.sim_post("/webhooks/drop", {"count": 2}).json() == {"drop_next": 2}
    assert jira.sim("/webhooks")["drop_next"] == 2
    keys = [jira.create(summary=f"issue {n}")["key"] for n in range(3)]
    state = flush(jira)
    assert [b["issue"]["key"] for b in receiver.bodies()] == keys[2:]
    assert [(d["issue_key"], d["state"], d["attempt_count"]) for d in state["deliveries"]] == [
        (keys[0], "dropped", 0), (keys[1], "dropped", 0), (keys[2], "delivered", 1)]
    assert state["drop_next"] == 0 and state["pending"] == 0


@pytest.mark.parametrize("count", [-1, "2", None, True])
def test_drop_refuses_a_bad_count(cloud: Jira, count) -> None:
    assert cloud.sim_post("/webhooks/drop", {"count": count}).status_code == 400


def dropped_pattern(jira: Jira, creates: int) -> list[str]:
    for n in range(creates):
        jira.create(summary=f"issue {n}")
    return [d["state"] for d in flush(jira)["deliveries"]]


def test_drop_rate_loses_some_deliveries_repeatably_under_a_seed(hooked, receiver) -> None:
    runs = [dropped_pattern(hooked("cloud", webhook_drop_rate=0.5, seed=11), 16)
            for _ in range(2)]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"dropped", "delivered"}
    assert len(receiver.deliveries) == 2 * runs[0].count("delivered")


def test_drop_rate_changes_at_run_time(hooked, receiver: Receiver) -> None:
    jira = hooked("server")
    assert jira.sim_post("/config", {"webhook_drop_rate": 1}).json()["webhook_drop_rate"] == 1
    jira.create()
    assert jira.sim_post("/config", {"webhook_drop_rate": 0}).status_code == 200
    jira.create()
    assert [d["state"] for d in flush(jira)["deliveries"]] == ["dropped", "delivered"]
    assert len(receiver.deliveries) == 1
    assert jira.sim_post("/config", {"webhook_drop_rate": 1.5}).status_code == 400


def test_a_dropped_delivery_is_never_retried_and_others_still_are(hooked,
                                                                 receiver: Receiver) -> None:
    receiver.plan = [503]
    jira = hooked("cloud", webhook_order="duplicate")
    jira.sim_post("/webhooks/drop", {"count": 1})
    jira.create()
    jira.create()
    deliveries = flush(jira)["deliveries"]
    assert [(d["state"], d["copy"]) for d in deliveries] == [
        ("dropped", 1), ("delivered", 1), ("delivered", 2)]
    assert [a["status"] for a in deliveries[1]["attempts"]] == [503, 200]
    assert all(b["issue"]["key"] == "DATA-2" for b in receiver.bodies())
