"""Flushes due together share one message; the rest keep their own time."""

from datetime import UTC, datetime, timedelta

import pytest

from jira_sync.broker import (
    FLUSH_GROUP_LINKS,
    FLUSH_TASK,
    INBOUND_FLUSH_TASK,
    INBOUND_QUEUE,
    OUTBOUND_QUEUE,
    send_flushes,
)
from jira_sync.sync.state import Due


class SentTasks:
    """Records what ``send_flushes`` hands the broker client."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple, dict]] = []

    def send_task(self, name: str, args: tuple, **options) -> None:
        self.sent.append((name, args, options))


def test_a_batch_of_windows_goes_out_in_messages_of_at_most_a_group():
    at = datetime.now(UTC) + timedelta(seconds=2)
    app = SentTasks()
    send_flushes(app, [Due(link_id, at + timedelta(milliseconds=link_id % 7))
                       for link_id in range(1, 451)])
    sizes = [len(args[0]) for _, args, _ in app.sent]
    assert sizes == [FLUSH_GROUP_LINKS, FLUSH_GROUP_LINKS, 50]
    assert sorted(i for _, args, _ in app.sent for i in args[0]) == list(range(1, 451))
    for name, _, options in app.sent:
        assert name == FLUSH_TASK and options["queue"] == OUTBOUND_QUEUE
        assert 1.5 < options["countdown"] <= 2.01  # the latest window of the group


def test_flushes_due_apart_keep_their_own_times_and_the_past_is_now():
    now = datetime.now(UTC)
    app = SentTasks()
    send_flushes(app, [Due(3, now + timedelta(seconds=30)), Due(1, now - timedelta(seconds=5)),
                       Due(2, now + timedelta(seconds=30)), Due(1, now - timedelta(seconds=5))])
    assert [(args[0], options["countdown"]) for _, args, options in app.sent] == [
        ([1], None), ([2, 3], pytest.approx(30, abs=0.5))]


def test_a_countdown_never_passes_the_cap():
    app = SentTasks()
    send_flushes(app, [Due(1, datetime.now(UTC) + timedelta(days=3))])
    assert app.sent[0][2]["countdown"] == 900


def test_inbound_flushes_go_to_their_own_task_and_queue():
    now = datetime.now(UTC)
    app = SentTasks()
    send_flushes(app, (due for due in [Due(1, now), Due(1, now, inbound=True),
                                       Due(2, now, inbound=True)]))
    assert [(name, args[0], options["queue"]) for name, args, options in app.sent] == [
        (FLUSH_TASK, [1], OUTBOUND_QUEUE),
        (INBOUND_FLUSH_TASK, [1, 2], INBOUND_QUEUE)]
