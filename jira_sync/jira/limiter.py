"""A rate limiter shared by every process that calls Jira, modelled on Jira's own limits.

Each worker process discovering the limits on its own means N times the 429s, so every call
first takes a slot from a shared schedule (GCRA: slots ``1 / rate`` apart), and what Jira
answers feeds back into it. Jira Cloud applies three limits at once (reference notes §9), and
each is paced or paused where it applies:

- the burst limit is a token bucket per site, endpoint and method: each such bucket has its
  own pace. It is the rate the answers advertise (``X-RateLimit-Limit`` on Cloud,
  ``X-RateLimit-FillRate`` / ``-Interval-Seconds`` on Data Center) when they carry one; when
  they do not, it starts at the configured rate, grows while the bucket is busy and clean,
  and on a 429 falls to just under the limit that the calls of the busy stretch show (a
  bucket empties after its burst plus its rate for each second), which it then stays under;
- the per-issue write limit pauses writes to that one issue for the ``Retry-After``;
- the hourly points quota pauses every call it covers (the OAuth app everywhere, or the app on
  one site) until the reset, without slowing any pace.

Data Center's limit is one token bucket per user for the whole site, so there a site is one
bucket. A wait longer than the caller accepts reserves nothing, so parked work never pushes
the schedule ahead of the work that runs. The state lives in Redis when the broker is Redis,
else in the database; either way one pure function decides each change, so the two stores
cannot disagree on what a 429 means.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import redis
from sqlalchemy import select, update

from jira_sync.store.db import Database
from jira_sync.store.models import RateLimitState
from jira_sync.store.upsert import insert

# Pace this close under an advertised rate: the bucket's burst absorbs the jitter.
SAFETY = 0.97
MIN_RATE = 0.5
# State nobody used this long is dropped (Redis expires it; retention prunes the rows).
KEEP_SECONDS = 3600
# A discovered or advertised pace is forgotten after this long unused (the limit may change).
RATE_TTL_SECONDS = 600
# While a bucket is busy and clean its pace grows by this factor, at most once per interval.
GROWTH = 1.2
GROWTH_EVERY_SECONDS = 1.0
# A 429 of a bucket whose limit Jira advertises drops its pace to this fraction.
BACKOFF = 0.8
# A bucket unused this long has refilled: its busy stretch starts again.
IDLE_SECONDS = 1.0
# A busy stretch this long at least tells the limit; one 429 never more than halves a pace.
MIN_STRETCH_SECONDS = 2.0
QUOTA_REASONS = ("jira-quota-global-based", "jira-quota-tenant-based")
PER_ISSUE_REASON = "jira-per-issue-on-write"
# The ``limit_reason`` of work parked by the limiter itself: for its own pace, or for a
# quota's pause (which is waiting, not failing).
LIMITER_PAUSE = "jira-sync-limiter"
QUOTA_PAUSE = "jira-sync-quota"
_ID_SEGMENT = re.compile(r"\d")

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One call as the limiter sees it: where it goes, and what else it counts against."""

    site: str
    method: str
    path: str
    deployment: str = "cloud"
    # The OAuth app it is made as (None for API tokens and PATs, which no quota covers).
    app: str | None = None

    @cached_property
    def _segments(self) -> list[str]:
        return self.path.split("?")[0].split("/")

    @cached_property
    def endpoint(self) -> str:
        """The path with its ids and keys as placeholders: Jira's buckets are per endpoint,
        not per issue."""
        return "/".join("{id}" if _ID_SEGMENT.search(part) else part
                        for part in self._segments)

    @cached_property
    def bucket(self) -> str:
        if self.deployment != "cloud":
            return f"site {self.site}"  # Data Center: one bucket per user for the whole site
        return f"bucket {self.site} {self.method} {self.endpoint}"

    @cached_property
    def issue(self) -> str | None:
        """The issue a write targets, which the per-issue write limit counts."""
        parts = self._segments
        if self.method == "GET" or "issue" not in parts:
            return None
        after = parts.index("issue") + 1
        # Issue keys and ids have digits; ``/issue/bulk`` and the like are no issue.
        if after < len(parts) and _ID_SEGMENT.search(parts[after]):
            return parts[after]
        return None

    def quota_scopes(self) -> tuple[str, str]:
        """The app's global pool, and the app on this site."""
        app = self.app or self.site
        return f"quota {app}", f"quota {app} {self.site}"

    def pause_keys(self) -> list[str]:
        keys = [self.bucket, *self.quota_scopes()]
        if self.issue is not None:
            keys.append(f"issue {self.site} {self.issue}")
        return keys


@dataclass
class State:
    """One key's shared state. A bucket uses the pace fields; a pause key only
    ``paused_until``. Times are Unix seconds."""

    paused_until: float = 0.0
    slot: float = 0.0  # the next free slot (GCRA's theoretical arrival time)
    rate: float = 0.0  # 0: the configured rate
    rate_until: float = 0.0
    advertised: bool = False
    ceiling: float = 0.0  # the limit a 429 showed, while remembered
    changed_at: float = 0.0  # the last change of pace
    # The current busy stretch: when it began and how many calls it has taken.
    busy_since: float = 0.0
    busy_calls: int = 0

    def pace(self, default_rate: float | None, now: float) -> float:
        if self.rate and self.rate_until > now:
            return self.rate
        return default_rate or 0.0

    def repace(self, rate: float, default_rate: float | None, now: float) -> None:
        """Change the pace, and the slots already handed out ahead of now with it: calls
        waiting at the old pace would otherwise keep it for as long as their backlog lasts."""
        old = self.pace(default_rate, now)
        if old > 0 and self.slot > now:
            self.slot = now + (self.slot - now) * old / rate
        self.rate, self.rate_until, self.changed_at = rate, now + RATE_TTL_SECONDS, now


@dataclass(frozen=True)
class Slot:
    """A reservation: how long to wait, whether the wait is a quota's (work parked for a
    quota is not failing), and whether a slot is held at its end (else reserve again)."""

    wait: float
    quota: bool = False
    reserved: bool = True


def advertised_rate(headers: Mapping[str, str]) -> float | None:
    """The sustainable rate an answer advertises: Data Center's token-bucket fill rate, else
    Cloud's ``X-RateLimit-Limit`` (the bucket's requests per second)."""
    try:
        if "X-RateLimit-FillRate" in headers:
            fill = float(headers["X-RateLimit-FillRate"])
            interval = float(headers.get("X-RateLimit-Interval-Seconds", "1"))
            return fill / interval if fill > 0 and interval > 0 else None
        limit = float(headers["X-RateLimit-Limit"])
    except (KeyError, ValueError):
        return None
    return limit if limit > 0 else None


# -- the decisions, the same for every store -------------------------------------------------


def reserve(states: dict[str, State], call: Call, default_rate: float | None,
            max_wait: float, now: float) -> Slot:
    pauses = [(states[key].paused_until, key) for key in call.pause_keys()]
    paused_until, paused_by = max(pauses)
    wait = max(0.0, paused_until - now)
    if wait > 0 and paused_by != call.bucket:
        # A paused issue or quota: no slot of the bucket is held for it meanwhile.
        return Slot(wait, quota=paused_by.startswith("quota "), reserved=False)
    bucket = states[call.bucket]
    rate = bucket.pace(default_rate, now)
    if rate > 0:
        slot = max(bucket.slot, now + wait)
        wait = slot - now
        if wait > max_wait:
            return Slot(wait, reserved=False)
        if bucket.slot < now - IDLE_SECONDS:
            bucket.busy_since, bucket.busy_calls = now, 0
        bucket.slot = slot + 1.0 / rate
        bucket.busy_calls += 1
    return Slot(wait)


def answered(states: dict[str, State], call: Call, default_rate: float | None, status: int,
             headers: Mapping[str, str], retry_after: float | None, busy: bool,
             now: float) -> None:
    bucket = states[call.bucket]
    if status == 429:
        reason = headers.get("RateLimit-Reason")
        pause = retry_after if retry_after and retry_after > 0 else 1.0
        if reason in QUOTA_REASONS:
            global_pool, on_site = call.quota_scopes()
            scope = states[global_pool if reason == QUOTA_REASONS[0] else on_site]
            scope.paused_until = max(scope.paused_until, now + pause)
            return
        if reason == PER_ISSUE_REASON and call.issue is not None:
            issue = states[f"issue {call.site} {call.issue}"]
            issue.paused_until = max(issue.paused_until, now + pause)
            return
        # The burst bucket (or a limit that does not say which): slow this bucket down.
        rate = bucket.pace(default_rate, now)
        bucket.paused_until = max(bucket.paused_until, now + pause)
        if rate <= 0 or now < bucket.busy_since:
            return  # no pace, or a call sent before the last 429's pause: nothing new
        if bucket.advertised:
            bucket.repace(max(MIN_RATE, rate * BACKOFF), default_rate, now)
        else:
            # A token bucket empties after its burst plus its rate for each second of the
            # stretch, so the calls of a long enough busy stretch say what the limit is
            # (taking the burst as one second's worth, as Jira's buckets hold). A short one
            # (a call answered late, after the last pause) says little: back off instead.
            stretch = now - bucket.busy_since
            shown = bucket.busy_calls / (stretch + 1.0) \
                if stretch >= MIN_STRETCH_SECONDS and bucket.busy_calls else rate * BACKOFF
            remembered = bucket.ceiling if bucket.rate_until > now else rate
            bucket.ceiling = max(MIN_RATE, rate / 2, min(remembered, rate, shown))
            bucket.repace(bucket.ceiling * SAFETY, default_rate, now)
        bucket.busy_since, bucket.busy_calls = now + pause, 0
        return
    told = advertised_rate(headers)
    if told:
        if bucket.rate != told * SAFETY or not bucket.advertised:
            bucket.repace(told * SAFETY, default_rate, now)
            bucket.advertised, bucket.ceiling = True, 0.0
        bucket.rate_until = now + RATE_TTL_SECONDS
        return
    rate = bucket.pace(default_rate, now)
    if not (busy and rate > 0 and now - bucket.changed_at >= GROWTH_EVERY_SECONDS):
        return
    grown = rate * GROWTH
    if bucket.ceiling and bucket.rate_until > now:
        # Close in on the pace that drew a 429, never reaching it.
        grown = min(grown, rate + (bucket.ceiling * SAFETY - rate) / 2)
    if grown > rate:
        bucket.repace(grown, default_rate, now)


# -- the stores ------------------------------------------------------------------------------


class Store(Protocol):
    def change(self, keys: list[str], decide: Callable[[dict[str, State], float], T]) -> T:
        """Run ``decide(states, now)`` over the keys' states as one atomic step, keeping
        what it changed."""


def _load(raw: str | bytes | None) -> State:
    return State(**json.loads(raw)) if raw else State()


def _dump(state: State) -> str:
    return json.dumps(asdict(state), separators=(",", ":"))


# What a key that was never written holds; such a key is not stored until it differs.
_UNTOUCHED = _dump(State())


class RedisStore:
    """State on the broker's Redis, timed by Redis's clock (one clock for all hosts);
    optimistic transactions, retried when another process changed a key in between."""

    PREFIX = "jira_sync:rate:"

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def change(self, keys: list[str], decide: Callable[[dict[str, State], float], T]) -> T:
        names = [self.PREFIX + key for key in dict.fromkeys(keys)]
        with self._client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*names)
                    seconds, micros = pipe.time()
                    before = dict(zip(names, pipe.mget(names), strict=True))
                    states = {name[len(self.PREFIX):]: _load(raw)
                              for name, raw in before.items()}
                    result = decide(states, seconds + micros / 1e6)
                    pipe.multi()
                    for key, state in states.items():
                        raw = before[self.PREFIX + key]
                        dumped = _dump(state)
                        if dumped != (raw.decode() if raw else _UNTOUCHED):
                            pipe.set(self.PREFIX + key, dumped, ex=KEEP_SECONDS)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue


class DatabaseStore:
    """The same state in the ``rate_limits`` table. Each step locks the call's bucket row
    first (an UPDATE, so SQLite takes its write lock at once instead of failing to upgrade),
    then its pause rows in key order; a pause row exists only once something paused."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def change(self, keys: list[str], decide: Callable[[dict[str, State], float], T]) -> T:
        bucket, *others = dict.fromkeys(keys)
        with self._database.unit_of_work() as session:
            if not session.execute(update(RateLimitState).where(RateLimitState.key == bucket)
                                   .values(key=bucket)).rowcount:
                session.execute(insert(session, RateLimitState).values(
                    key=bucket, state=_UNTOUCHED, expires_at=0.0,
                ).on_conflict_do_nothing(index_elements=["key"]))
            rows = {row.key: row for row in session.scalars(
                select(RateLimitState).where(RateLimitState.key.in_([bucket, *others]))
                .order_by(RateLimitState.key).with_for_update()
                .execution_options(populate_existing=True))}
            states = {key: _load(rows[key].state if key in rows else None)
                      for key in [bucket, *others]}
            result = decide(states, time.time())
            expires = time.time() + KEEP_SECONDS
            for key, state in states.items():
                dumped = _dump(state)
                if key in rows and dumped != rows[key].state:
                    rows[key].state, rows[key].expires_at = dumped, expires
                elif key not in rows and dumped != _UNTOUCHED:
                    session.execute(insert(session, RateLimitState).values(
                        key=key, state=dumped, expires_at=expires,
                    ).on_conflict_do_update(index_elements=["key"],
                                            set_={"state": dumped, "expires_at": expires}))
            return result


class RateLimiter:
    """The limiter every ``JiraClient`` of a process shares."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def reserve(self, call: Call, default_rate: float | None, max_wait: float) -> Slot:
        """The wait for the call's next slot, which is reserved only if that is ``max_wait``
        or less."""
        keys = call.pause_keys()
        return self.store.change(
            keys, lambda states, now: reserve(states, call, default_rate, max_wait, now))

    def answered(self, call: Call, default_rate: float | None, status: int,
                 headers: Mapping[str, str], retry_after: float | None, busy: bool) -> None:
        """Learn from an answer: a 429 pauses and slows what it concerns; an advertised rate
        sets the pace; a busy bucket answering cleanly may go faster."""
        self.store.change(call.pause_keys(), lambda states, now: answered(
            states, call, default_rate, status, headers, retry_after, busy, now))


def limiter_for(broker_url: str, database: Database) -> RateLimiter:
    """Redis when the broker is Redis (one clock, no database writes per call), else the
    database (RabbitMQ, or the demo's embedded broker)."""
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        return RateLimiter(RedisStore(redis.Redis.from_url(
            broker_url, socket_timeout=5, socket_connect_timeout=5)))
    return RateLimiter(DatabaseStore(database))
