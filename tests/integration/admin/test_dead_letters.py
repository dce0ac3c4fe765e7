"""Dead letters in-process against the Jira simulator over HTTP on Postgres: a create Jira
refuses, replayed once the setting is fixed; one still broken; discard; invalid events."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from jira_sync.admin import dead_letters
from jira_sync.admin.errors import Conflict, Invalid, NotFound
from jira_sync.store.models import DeadLetter, Integration, IssueLink, LogEntry
from jira_sync.store.types import utcnow
from jira_sync.sync.journal import masked
from tests.integration.admin.conftest import BROKEN, FIXED, TEAM
from tests.support.sync import Harness, qalita_event

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(team_sim):
    return team_sim


def replay(h: Harness, letter_id: int) -> dead_letters.Replayed:
    with h.database.unit_of_work() as session:
        replayed = dead_letters.replay(session, h.ctx, letter_id)
    h.schedule(replayed.dues)
    h.drain()
    return replayed


def set_mapping(h: Harness, mapping: dict) -> None:
    with h.database.unit_of_work() as session:
        session.execute(update(Integration).values(options={"mapping": mapping}))


def show(h: Harness, letter_id: int) -> dict:
    with h.database.unit_of_work() as session:
        return dead_letters.show(session, letter_id)


def only_letter(h: Harness) -> dict:
    with h.database.unit_of_work() as session:
        [item] = dead_letters.list_letters(session).items
    return item


def test_a_refused_create_replays_once_the_setting_is_fixed_and_the_letter_resolves(
        database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=BROKEN)
    h.sync(qalita_event(1))
    letter = only_letter(h)
    assert letter["kind"] == "jira_rejected" and letter["state"] == "open"
    assert letter["link"]["qalita_issue_id"] == 1 and letter["link"]["jira_key"] is None
    assert letter["response"]["status"] == 400 and TEAM in letter["reason"]
    assert h.issues() == []

    # Still broken: the same letter, its count up, the new reason.
    set_mapping(h, {"field_defaults": {TEAM: {"value": "Nobody either"}}})
    again = replay(h, letter["id"])
    assert again.letter["state"] == "replaying"
    after = only_letter(h)
    assert after["id"] == letter["id"] and after["replay_count"] == 1
    assert after["state"] == "open" and after["replayed_at"] is None
    assert "Nobody either" in after["reason"] + str(after["response"])

    set_mapping(h, FIXED)
    replay(h, letter["id"])
    issue = h.issue_of(1)
    assert len(h.issues()) == 1 and "Data platform" in str(issue)
    resolved = show(h, letter["id"])
    assert resolved["state"] == "resolved" and resolved["replay_count"] == 2
    assert resolved["link"]["jira_key"] == issue["key"] and resolved["link"]["state"] == "linked"
    with database.unit_of_work() as session:
        decisions = session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin")).all()
        with pytest.raises(Conflict, match="resolved"):
            dead_letters.replay(session, h.ctx, letter["id"])
    assert decisions == ["replay", "replay"]


def test_a_new_event_that_syncs_the_link_resolves_its_letter(database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=BROKEN)
    h.sync(qalita_event(1))
    letter = only_letter(h)
    set_mapping(h, FIXED)
    h.sync(qalita_event(1, 2, "issue.updated", title="again"))
    assert show(h, letter["id"])["state"] == "resolved"
    assert len(h.issues()) == 1


def test_discard_keeps_the_letter_and_leaves_the_link_failed(database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=BROKEN)
    h.sync(qalita_event(1))
    letter = only_letter(h)
    with database.unit_of_work() as session:
        view = dead_letters.discard(session, letter["id"])
        assert dead_letters.discard(session, letter["id"])["discarded_at"] == view["discarded_at"]
    assert view["state"] == "discarded" and view["link"]["state"] == "failed"
    with database.unit_of_work() as session:
        with pytest.raises(Conflict, match="discarded"):
            dead_letters.replay(session, h.ctx, letter["id"])
        assert dead_letters.list_letters(session, state="open").items == []
        assert [i["id"] for i in dead_letters.list_letters(session, state="discarded").items] \
            == [letter["id"]]
        assert session.scalars(select(IssueLink.state)).one() == "failed"
        assert "discard" in session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin")).all()


def test_replay_of_a_disabled_or_deleted_integrations_letter_is_refused(database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=BROKEN)
    h.sync(qalita_event(1))
    letter = only_letter(h)
    for change, words in (({"enabled": False}, "disabled"),
                          ({"enabled": True, "deleted_at": utcnow()}, "deleted")):
        with database.unit_of_work() as session:
            session.execute(update(Integration).values(**change))
        with database.unit_of_work() as session, pytest.raises(Conflict, match=words):
            dead_letters.replay(session, h.ctx, letter["id"])
    assert show(h, letter["id"])["replay_count"] == 0


def test_an_invalid_events_letter_replays_through_intake_again(database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=FIXED)
    bad = qalita_event(7)
    del bad["issue"]["title"]
    h.sync(bad)
    letter = only_letter(h)
    assert letter["kind"] == "invalid_event" and letter["integration_id"] is None

    # Replayed as it is it is still invalid: the same letter, open, its count up.
    failed = replay(h, letter["id"])
    assert failed.failed and failed.letter["replay_count"] == 1
    assert "title" in failed.letter["reason"]

    # The event as kept is fixed (standing in for a schema that now accepts it).
    with database.unit_of_work() as session:
        stored = session.get(DeadLetter, letter["id"])
        stored.payload = {**stored.payload, "issue": {**stored.payload["issue"], "title": "t"}}
    replayed = replay(h, letter["id"])
    assert replayed.letter["state"] == "resolved" and replayed.letter["replay_count"] == 2
    assert h.issue_of(7)
    with database.unit_of_work() as session:
        assert session.scalar(select(DeadLetter.id).where(DeadLetter.id != letter["id"])) \
            is None


def test_filters_paging_and_errors(database, sim):
    h = Harness(database, sim.base_url, "cloud", mapping=BROKEN)
    h.sync(qalita_event(1), qalita_event(2), "not an event")
    with database.unit_of_work() as session:
        integration_id = session.scalar(select(Integration.id))
        every = dead_letters.list_letters(session)
        first = dead_letters.list_letters(session, limit=2)
        rest = dead_letters.list_letters(session, limit=2, cursor=first.next_cursor)
        owned = dead_letters.list_letters(session, integration_id=integration_id)
        invalid = dead_letters.list_letters(session, kind="invalid_event")
        newest = session.scalar(select(DeadLetter.created_at).order_by(DeadLetter.id.desc()))
        later = dead_letters.list_letters(session, since=newest.replace(tzinfo=None))
        with pytest.raises(NotFound):
            dead_letters.show(session, 999999)
        with pytest.raises(NotFound):
            dead_letters.list_letters(session, integration_id=999999)
        with pytest.raises(Invalid, match="state"):
            dead_letters.list_letters(session, state="lost")
        with pytest.raises(Invalid, match="cursor"):
            dead_letters.list_letters(session, cursor="nonsense")
    assert len(every.items) == 3 and rest.next_cursor is None
    assert [i["id"] for i in first.items + rest.items] == [i["id"] for i in every.items]
    assert len(owned.items) == 2 and len(invalid.items) == 1 and len(later.items) == 1
    assert invalid.items[0]["link"] is None


def test_credentials_a_remote_echoes_are_masked():
    answer = {"status": 502, "body": {"headers": {"Authorization": "Basic c3ZjOnRvay0xMjM="},
                                      "text": "proxy saw Bearer qalita-tok-secret at "
                                              "https://svc:hunter22@jira.example.com/",
                                      "api_token": "tok-123"}}
    text = str(masked(answer))
    for secret in ("c3ZjOnRvay0xMjM=", "qalita-tok-secret", "hunter22", "tok-123"):
        assert secret not in text
