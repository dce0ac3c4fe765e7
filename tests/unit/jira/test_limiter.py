"""The shared limiter: its decisions (pure, at given instants), and both stores sharing them
between processes."""

import time

import fakeredis
import pytest

from jira_sync.jira import limiter
from jira_sync.jira.limiter import (
    BACKOFF,
    MIN_RATE,
    SAFETY,
    Call,
    DatabaseStore,
    RateLimiter,
    RedisStore,
    State,
    advertised_rate,
)
from jira_sync.store.db import Database

SITE = "https://acme.atlassian.net"
OTHER = "https://other.atlassian.net"
NO_LIMIT = 1000.0
EDIT = Call(SITE, "PUT", "/issue/DATA-1")
EDIT_2 = Call(SITE, "PUT", "/issue/DATA-2")
READ = Call(SITE, "GET", "/issue/DATA-1")
BURST = {"RateLimit-Reason": "jira-burst-based"}


class Decisions:
    """The pure decisions over an in-memory store, at instants the test chooses."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}

    def _states(self, call: Call) -> dict[str, State]:
        return {key: self.states.setdefault(key, State()) for key in call.pause_keys()}

    def reserve(self, call: Call, now: float, rate: float | None = 10,
                max_wait: float = NO_LIMIT) -> limiter.Slot:
        return limiter.reserve(self._states(call), call, rate, max_wait, now)

    def answered(self, call: Call, now: float, status: int = 200, headers=None,
                 retry_after: float | None = None, busy: bool = False, rate: float = 10) -> None:
        limiter.answered(self._states(call), call, rate, status, headers or {}, retry_after,
                         busy, now)

    def pace(self, call: Call, now: float, rate: float = 10) -> float:
        return self._states(call)[call.bucket].pace(rate, now)


@pytest.fixture
def decide() -> Decisions:
    return Decisions()


def test_calls_are_bucketed_by_endpoint_and_method_as_jira_cloud_counts_them():
    assert EDIT.bucket == EDIT_2.bucket == f"bucket {SITE} PUT /issue/{{id}}"
    assert READ.bucket != EDIT.bucket
    assert Call(SITE, "POST", "/issue/10001/comment").endpoint == "/issue/{id}/comment"
    assert Call(SITE, "GET", "/search/jql?jql=x").endpoint == "/search/jql"
    # Data Center limits a user across the whole site: one bucket.
    assert Call(SITE, "PUT", "/issue/A-1", "server").bucket == \
        Call(SITE, "GET", "/myself", "server").bucket


def test_writes_name_the_issue_they_count_against_and_reads_do_not():
    assert EDIT.issue == "DATA-1"
    assert Call(SITE, "POST", "/issue/DATA-1/transitions").issue == "DATA-1"
    assert READ.issue is None
    assert Call(SITE, "POST", "/issue").issue is None  # a create targets no existing issue
    assert Call(SITE, "POST", "/issue/bulk").issue is None


def test_slots_of_one_bucket_are_spaced_by_the_configured_rate(decide):
    waits = [decide.reserve(EDIT_2 if n % 2 else EDIT, now=100.0).wait for n in range(5)]
    assert waits == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert decide.reserve(READ, now=100.0).wait == 0  # another bucket, its own pace


def test_without_any_rate_nobody_waits(decide):
    assert [decide.reserve(EDIT, now=1.0, rate=None).wait for _ in range(3)] == [0, 0, 0]


def test_a_wait_too_long_for_the_caller_reserves_nothing(decide):
    for _ in range(10):
        decide.reserve(EDIT, now=0.0, rate=1)  # the schedule is now 10 s ahead
    parked = [decide.reserve(EDIT, now=0.0, rate=1, max_wait=5).wait for _ in range(50)]
    assert parked == [10.0] * 50
    assert decide.reserve(EDIT, now=0.0, rate=1).wait == 10.0


def test_an_advertised_limit_sets_the_pace_just_under_it(decide):
    decide.answered(EDIT, now=0.0, headers={"X-RateLimit-Limit": "50",
                                            "X-RateLimit-Remaining": "49"})
    assert decide.pace(EDIT, now=1.0) == pytest.approx(50 * SAFETY)
    assert decide.pace(READ, now=1.0) == 10  # told for PUTs only
    assert decide.pace(EDIT, now=1.0 + limiter.RATE_TTL_SECONDS) == 10  # forgotten unused


def test_data_centers_fill_rate_is_the_pace_of_the_whole_site(decide):
    dc_edit, dc_read = (Call(SITE, m, "/issue/A-1", "server") for m in ("PUT", "GET"))
    decide.answered(dc_edit, now=0.0, headers={"X-RateLimit-FillRate": "20",
                                               "X-RateLimit-Interval-Seconds": "2",
                                               "X-RateLimit-Limit": "100"})
    assert decide.pace(dc_read, now=1.0) == pytest.approx(10 * SAFETY)


def test_a_burst_429_pauses_and_slows_only_its_bucket(decide):
    decide.answered(EDIT, now=0.0, status=429, headers=BURST, retry_after=3)
    assert decide.reserve(EDIT_2, now=0.0).wait == pytest.approx(3)
    assert decide.reserve(EDIT_2, now=0.0).wait == pytest.approx(3 + 1 / (10 * BACKOFF * SAFETY))
    assert decide.reserve(READ, now=0.0).wait == 0


def test_a_per_issue_429_pauses_that_issues_writes_only(decide):
    decide.answered(EDIT, now=0.0, status=429, retry_after=2,
                    headers={"RateLimit-Reason": "jira-per-issue-on-write"})
    assert decide.reserve(EDIT, now=0.0).wait == pytest.approx(2)
    assert decide.reserve(EDIT_2, now=0.0).wait < 1  # another issue: the bucket's pace only
    assert decide.reserve(READ, now=0.0).wait == 0
    assert decide.pace(EDIT, now=0.0) == 10  # nothing slowed


@pytest.mark.parametrize("reason, elsewhere_waits", [
    ("jira-quota-global-based", True), ("jira-quota-tenant-based", False)])
def test_a_quota_429_pauses_every_call_it_covers_until_the_reset(decide, reason,
                                                                 elsewhere_waits):
    app_edit = Call(SITE, "PUT", "/issue/DATA-1", app="app-1")
    decide.answered(app_edit, now=0.0, status=429, retry_after=1200,
                    headers={"RateLimit-Reason": reason})
    slot = decide.reserve(Call(SITE, "GET", "/myself", app="app-1"), now=0.0)
    assert slot.wait == pytest.approx(1200) and slot.quota
    on_other_site = decide.reserve(Call(OTHER, "GET", "/myself", app="app-1"), now=0.0)
    assert (on_other_site.wait > 0) is elsewhere_waits
    assert decide.reserve(Call(SITE, "GET", "/myself", app="app-2"), now=0.0).wait == 0
    assert decide.pace(app_edit, now=0.0) == 10  # a quota is not a pace


def test_a_hidden_limit_grows_while_busy_and_clean(decide):
    now = 0.0
    decide.answered(EDIT, now=now, busy=False)
    assert decide.pace(EDIT, now) == 10  # an idle bucket proves nothing
    for _ in range(3):
        now += limiter.GROWTH_EVERY_SECONDS
        decide.answered(EDIT, now=now, busy=True)
        decide.answered(EDIT, now=now, busy=True)  # at most one step per interval
    assert decide.pace(EDIT, now) == pytest.approx(10 * limiter.GROWTH ** 3)


def test_a_hidden_limit_is_read_from_the_busy_stretch_a_429_ends(decide):
    """A bucket of 20/s (and a burst of 20) paced at 30/s empties after 2 s and 60 calls:
    60 / (2 + 1) is its rate, and the pace goes just under it and stays there."""
    for n in range(60):
        decide.reserve(EDIT, now=100.0 + n / 30, rate=30)
    decide.answered(EDIT, now=102.0, status=429, headers=BURST, retry_after=1, rate=30)
    assert decide.pace(EDIT, now=102.0, rate=30) == pytest.approx(20 * SAFETY)
    now = 103.0
    for _ in range(20):
        now += limiter.GROWTH_EVERY_SECONDS
        decide.answered(EDIT, now=now, busy=True, rate=30)
    assert decide.pace(EDIT, now, rate=30) == pytest.approx(20 * SAFETY)


def test_a_429_on_an_advertised_bucket_backs_off_from_its_pace(decide):
    decide.answered(EDIT, now=0.0, headers={"X-RateLimit-Limit": "50"})
    decide.answered(EDIT, now=0.0, status=429, headers=BURST, retry_after=1)
    assert decide.pace(EDIT, now=0.0) == pytest.approx(50 * SAFETY * BACKOFF)


def test_repeated_429s_never_stop_a_bucket(decide):
    for n in range(150):
        decide.answered(EDIT, now=2.0 * n, status=429, headers=BURST)
    assert decide.pace(EDIT, now=300.0) == MIN_RATE * SAFETY


def test_a_429_just_after_a_pause_backs_off_rather_than_guess_from_one_call(decide):
    for n in range(60):
        decide.reserve(EDIT, now=100.0 + n / 30, rate=30)
    decide.answered(EDIT, now=102.0, status=429, headers=BURST, retry_after=1, rate=30)
    decide.reserve(EDIT, now=103.05, rate=30)
    decide.answered(EDIT, now=103.1, status=429, headers=BURST, retry_after=1, rate=30)
    assert decide.pace(EDIT, now=103.1) == pytest.approx(20 * SAFETY * BACKOFF * SAFETY)


def test_429s_of_calls_sent_before_the_pause_count_once(decide):
    for _ in range(4):  # four workers' calls in flight when the bucket emptied
        decide.answered(EDIT, now=5.0, status=429, headers=BURST, retry_after=1)
    assert decide.pace(EDIT, now=5.0) == pytest.approx(10 * BACKOFF * SAFETY)


def test_rates_are_read_from_either_deployments_headers():
    assert advertised_rate({"X-RateLimit-FillRate": "20",
                            "X-RateLimit-Interval-Seconds": "2"}) == 10
    assert advertised_rate({"X-RateLimit-Limit": "100"}) == 100
    assert advertised_rate({"X-RateLimit-FillRate": "zero"}) is None
    assert advertised_rate({}) is None


# -- the stores: what one process decides, the others see ------------------------------------


@pytest.fixture(params=["redis", "database"])
def limiters(request, sqlite_url):
    """Two limiters over one store, as two worker processes would have."""
    if request.param == "redis":
        server = fakeredis.FakeServer()
        yield [RateLimiter(RedisStore(fakeredis.FakeRedis(server=server))) for _ in range(2)]
    else:
        databases = [Database(sqlite_url) for _ in range(2)]
        yield [RateLimiter(DatabaseStore(db)) for db in databases]
        for db in databases:
            db.dispose()


def test_slots_are_shared_between_processes(limiters):
    """Each reservation's slot is the instant it was decided plus its wait; wherever in its
    call that instant fell, the slots must be 0.1 s apart across both processes."""
    lows, highs = [], []
    for n in range(10):
        before = time.time()
        wait = limiters[n % 2].reserve(EDIT, 10, NO_LIMIT).wait
        after = time.time()
        lows.append(before + wait - n / 10)
        highs.append(after + wait - n / 10)
    assert max(lows) <= min(highs) + 1e-3


def test_pauses_and_paces_learned_by_one_process_hold_for_the_other(limiters):
    first, second = limiters
    first.answered(EDIT, 10, 429, BURST, retry_after=3, busy=False)
    assert 2.5 < second.reserve(EDIT_2, 10, NO_LIMIT).wait <= 3
    first.answered(READ, 10, 200, {"X-RateLimit-Limit": "2"}, None, busy=False)
    second.reserve(READ, 10, NO_LIMIT)
    assert second.reserve(READ, 10, NO_LIMIT).wait == pytest.approx(1 / (2 * SAFETY),
                                                                     abs=0.05)


def test_only_what_differs_from_untouched_is_stored(limiters):
    """A read of an issue no 429 ever concerned stores its bucket, not a row per issue."""
    first, _ = limiters
    for n in range(5):
        first.reserve(Call(SITE, "PUT", f"/issue/DATA-{n}"), 10, NO_LIMIT)
    store = first.store
    if isinstance(store, RedisStore):
        keys = store._client.keys(f"{RedisStore.PREFIX}*")
    else:
        from sqlalchemy import select

        from jira_sync.store.models import RateLimitState
        with store._database.unit_of_work() as session:
            keys = list(session.scalars(select(RateLimitState.key)))
    assert len(keys) == 1


def test_a_new_pace_reschedules_the_slots_already_handed_out(decide):
    for _ in range(10):
        decide.reserve(EDIT, now=0.0, rate=10)  # ten calls waiting, up to 1 s out
    decide.answered(EDIT, now=0.0, headers={"X-RateLimit-Limit": "100"})
    assert decide.reserve(EDIT, now=0.0).wait == pytest.approx(10 / (100 * SAFETY))
