"""Both halves of the sync in-process, against both simulators over HTTP on a real database.

QALITA changes are made as a QALITA user (the QALITA simulator's ``/_sim/``), which publishes
real events to a real Redis; Jira changes are made as a person through Jira's REST API
(Basic auth as ana@example.com) or the simulator's ``/_sim/``, and the simulator delivers
signed webhooks to the real Flask receiver, served in a thread. ``settle`` then plays the
worker: it takes the queued QALITA events and the stored deliveries and runs every flush
they cause, in time order, until nothing is left, so a test sees what workers would do.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
import json
import threading
import time
from typing import Any

import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select
from werkzeug.serving import make_server

from config.settings import SyncTimings, load
from jira_sync import intake
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from jira_sync.publish import QALITA_QUEUE
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent
from jira_sync.sync import inbound, jira_changes
from jira_sync.sync.context import SyncContext
from jira_sync.sync.outbound import flush_link
from jira_sync.sync.state import Due
from tests.support.people import People
from tests.support.processes import free_port
from tests.support.sync import bootstrap
from webhook_app import create_app

SECRET = "hook-secret"
QALITA_TOKEN = "qalita-tok"
TIMINGS = SyncTimings(sweep_seconds=1.0, lease_seconds=5.0, index_lag_seconds=0.5,
                      backoff_base_seconds=0.05, backoff_cap_seconds=0.5,
                      max_retry_age_seconds=3600.0, jira_rate_limit=1000.0)


class TwoWay(People):
    """One integration between a Jira simulator and a QALITA simulator, and a worker's work
    done on demand."""

    def __init__(self, database: Database, jira: Any, qalita: Any, broker_url: str, *,
                 mapping: dict[str, Any] | None = None, timings: SyncTimings = TIMINGS,
                 debounce: float = 0.0) -> None:
        self.database, self.jira, self.qalita, self.broker_url = database, jira, qalita, \
            broker_url
        self.deployment = jira.config.deployment
        key = self.box_key = Fernet.generate_key().decode()
        self.box = SecretBox((key,))
        self.ctx = SyncContext(database=database, box=self.box, debounce_seconds=debounce,
                               timings=timings)
        described = bootstrap(jira.base_url, self.deployment)
        described = dataclasses.replace(
            described, qalita_api_url=qalita.base_url,
            secrets={**described.secrets, "webhook_secret": SECRET,
                     "qalita_api_token": QALITA_TOKEN})
        with database.unit_of_work() as session:
            integration = upsert_from_env(session, described, self.box)
            if mapping is not None:
                integration.options = {"mapping": mapping}
            self.integration_id = integration.id
        self.queue: list[tuple[float, int, int, bool]] = []
        self.holding = False
        self._seq = 0
        self._redis = redis.Redis.from_url(broker_url)
        self._serve_receiver(key)
        self.configure_jira(webhook_url=self.receiver_url, webhook_secret=SECRET,
                            webhook_retry_delay_ms=200)

    # -- the receiver ---------------------------------------------------------------------

    def _serve_receiver(self, key: str) -> None:
        settings = load({"JIRA_SYNC_DATABASE_URL": self.database.url,
                         "JIRA_SYNC_BROKER_URL": self.broker_url, "JIRA_SYNC_SECRET_KEY": key})
        self._app = create_app(settings)
        port = free_port()
        self._server = make_server("127.0.0.1", port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        self.receiver_url = f"http://127.0.0.1:{port}/api/v2/integrations/jira/webhook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._app.extensions["jira_sync"]["database"].dispose()

    # -- playing the worker ------------------------------------------------------------------

    def settle(self, timeout: float = 60.0, quiet: float = 0.3) -> None:
        """Take every QALITA event and Jira delivery, run every flush they cause, and go on
        until both simulators have nothing more to send for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            worked = self.take_events() + self.take_deliveries()
            worked += self.drain(deadline)
            if worked:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > quiet:
                return
            time.sleep(0.05)
        raise AssertionError(f"still busy after {timeout}s")

    def take_events(self) -> int:
        """The QALITA events published on the broker, as the intake task takes them."""
        events = []
        while (raw := self._redis.rpop(QALITA_QUEUE)) is not None:
            message = json.loads(raw)
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            events.append(args[0])
        if events:
            self.schedule(intake.receive_batch(self.ctx, events))
        return len(events)

    def take_deliveries(self) -> int:
        # Until the simulator has sent everything (a test holding deliveries waits for none).
        requests.post(f"{self.jira.base_url}/_sim/webhooks/flush",
                      params={"timeout": 0 if self.holding else 10}, timeout=30)
        with self.database.unit_of_work() as session:
            ids = list(session.scalars(select(InboxEvent.id).where(
                InboxEvent.source == "jira", InboxEvent.state == "received")
                .order_by(InboxEvent.id)))
        if ids:
            self.schedule(jira_changes.receive_deliveries(self.ctx, ids))
        return len(ids)

    def schedule(self, dues: list[Due]) -> None:
        for due in dues:
            self._seq += 1
            heapq.heappush(self.queue, (due.at.timestamp(), self._seq, due.link_id,
                                        due.inbound))

    def drain(self, deadline: float) -> int:
        """Run the flushes due by now (a later one waits for the next round)."""
        runs = 0
        while self.queue and self.queue[0][0] <= time.time():
            if time.monotonic() > deadline:
                raise AssertionError("flushes still scheduled at the deadline")
            _, _, link_id, lane = heapq.heappop(self.queue)
            if not lane:
                self.schedule(flush_link(self.ctx, link_id))
            else:  # the inbound flushes due together run as one, as the worker runs them
                ids = {link_id}
                while self.queue and self.queue[0][0] <= time.time() and self.queue[0][3]:
                    ids.add(heapq.heappop(self.queue)[2])
                self.schedule(inbound.flush_inbound(self.ctx, sorted(ids)))
            runs += 1
        return runs

    # -- QALITA, as its users and as the sync sees it ----------------------------------------

    def qalita_change(self, issue_id: int, **changes: Any) -> None:
        response = requests.patch(f"{self.qalita.base_url}/_sim/issues/{issue_id}",
                                  json=changes, timeout=10)
        assert response.status_code == 200, response.text

    def qalita_writes(self) -> list[dict[str, Any]]:
        """jira-sync's writes to QALITA."""
        calls = requests.get(f"{self.qalita.base_url}/_sim/calls", timeout=10).json()
        return [c for c in calls if c["method"] != "GET" and c["origin"] == "jira-sync"]

    # -- Jira, as people and as the sync sees it ---------------------------------------------

    def hold(self) -> None:
        """Jira's deliveries go nowhere (the simulator keeps their bodies): the test hands
        them to the receiver itself."""
        self.configure_jira(webhook_url=f"http://127.0.0.1:{free_port()}/",
                            webhook_retry_delay_ms=3_600_000)
        self.holding = True

    def jira_issue_of(self, qalita_id: int) -> dict[str, Any]:
        marker = f"qalita-id-default-{qalita_id}"
        found = [i for i in requests.get(f"{self.jira.base_url}/_sim/issues", timeout=10).json()
                 if not i["deleted"] and marker in i["labels"]]
        assert len(found) == 1, f"{len(found)} Jira issues carry {marker}"
        return found[0]

    def jira_writes(self) -> list[dict[str, Any]]:
        """jira-sync's writes to Jira (its service account's)."""
        calls = requests.get(f"{self.jira.base_url}/_sim/calls", timeout=10).json()
        return [c for c in calls if c["method"] != "GET" and c.get("actor") == "svc"
                and "/search" not in c["path"]]
