"""Beat is a singleton: a second `jira-sync beat` waits, and takes over when the first stops."""

import time

import pytest

from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.integration,
              pytest.mark.both_brokers(own_broker={"beat_env": "database"})]
LEASE_SECONDS = 3.0


@pytest.fixture(params=["redis", "database"])
def beat_env(request, service_env, tmp_path):
    env = {**service_env, "JIRA_SYNC_BEAT_LOCK_SECONDS": str(LEASE_SECONDS),
           "JIRA_SYNC_HEARTBEAT_SECONDS": "1"}
    if request.param == "database":
        # A broker that is not Redis puts the lock in the database (as in the demo).
        env["JIRA_SYNC_BROKER_URL"] = f"filesystem://localhost{tmp_path / 'broker'}"
    return env


def test_second_beat_waits_then_takes_over(beat_env, tmp_path):
    first = ServiceProcess(["beat"], beat_env, tmp_path / "beat-1.log")
    second = None
    try:
        first.wait_for(r"beat: lock acquired")
        second = ServiceProcess(["beat"], beat_env, tmp_path / "beat-2.log")
        second.wait_for(r"beat: another beat holds the lock; waiting")
        first.wait_for(r"Sending due task send-heartbeats")
        assert "lock acquired" not in second.output
        assert "Sending due task" not in second.output
        assert first.stop() == 0
        assert "beat: lock released" in first.output
        second.wait_for(r"beat: lock acquired", timeout=10)
        assert second.stop() == 0
    finally:
        first.kill()
        if second:
            second.kill()


def test_a_killed_beat_is_replaced_within_the_lease(beat_env, tmp_path):
    first = ServiceProcess(["beat"], beat_env, tmp_path / "beat-1.log")
    second = None
    try:
        first.wait_for(r"beat: lock acquired")
        second = ServiceProcess(["beat"], beat_env, tmp_path / "beat-2.log")
        second.wait_for(r"beat: another beat holds the lock")
        first.kill()  # SIGKILL: no release, the lease must expire
        killed = time.monotonic()
        second.wait_for(r"beat: lock acquired", timeout=10)
        # The holder renewed at most a third of a lease before it died, and the waiting beat
        # looks again every third of a lease: it takes over when the lease runs out, at most
        # a third of a lease later (and some scheduling).
        taken_over = time.monotonic() - killed
        assert LEASE_SECONDS / 2 <= taken_over <= LEASE_SECONDS * 4 / 3 + 0.5, taken_over
    finally:
        first.kill()
        if second:
            second.kill()
