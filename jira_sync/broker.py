"""Talking to the broker without the worker: transport options and follow-up flushes.

Both the worker and the web app send flushes (the web app after a QALITA event arrives over
HTTP), and both must reach the same queues with the same transport settings, including the
embedded file-system broker of the demo. Celery is imported only inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kombu.transport import TRANSPORT_ALIASES

from config.settings import var_dir

# Every process that talks to the broker imports this module first (transport_options):
# ``filesystem://`` then means the spool that writes each message whole (jira_sync/spool.py).
TRANSPORT_ALIASES["filesystem"] = "jira_sync.spool:Transport"

if TYPE_CHECKING:
    from jira_sync.sync.state import Due

FLUSH_TASK = "jira_sync.flush_links"
# Jira's changes written to QALITA: on the inbound queue, so a Jira backlog never holds them.
INBOUND_FLUSH_TASK = "jira_sync.flush_inbound"
# Links whose flushes fall due this close together share one message (a batch's windows).
FLUSH_GROUP_SECONDS = 0.5
FLUSH_GROUP_LINKS = 200
OUTBOUND_QUEUE = "jira_sync.outbound"
# Jira webhook deliveries: one message per stored delivery, carrying only its inbox id.
DELIVERIES_PER_MESSAGE = 200
DELIVERY_TASK = "jira_sync.jira_delivery"
INBOUND_QUEUE = "jira_sync.jira_inbound"
# Tries each paused integration's refused side again; the sweep sends it while one is paused.
PROBE_TASK = "jira_sync.probe_paused"
# Admin jobs (a bulk replay): on the maintenance queue, as they call no remote themselves.
JOB_TASK = "jira_sync.run_job"
MAINTENANCE_QUEUE = "jira_sync.maintenance"
# Upper bounds that every countdown and time limit in the code base stays under. A worker
# holds a message that waits for its countdown unacknowledged, and both brokers bound that:
# Redis delivers it again after the visibility timeout, and RabbitMQ closes the channel of a
# delivery left unacknowledged past its consumer_timeout (30 min unless the node sets
# otherwise). A countdown and the run after it (the task time limit) must end well before
# either, so the cap, not the broker, decides when a long wait is looked at again.
MAX_COUNTDOWN_SECONDS = 900
VISIBILITY_TIMEOUT_SECONDS = 3600
BROKER_SOCKET_TIMEOUT_SECONDS = 10
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def transport_options(broker_url: str) -> dict[str, Any]:
    scheme = urlsplit(broker_url).scheme
    if scheme in ("redis", "rediss"):
        return {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_keepalive": True,
            "health_check_interval": 25,
            "retry_on_timeout": True,
        }
    if scheme in AMQP_SCHEMES:
        # Each publish waits for RabbitMQ's confirm: a message the broker refuses (a full
        # queue, a size limit) fails the sender instead of vanishing, and the sender's stored
        # work is then found by the sweep.
        return {"confirm_publish": True}
    if scheme == "filesystem":
        # The embedded broker of the demo: the URL path is the spool folder.
        folder = Path(urlsplit(broker_url).path or var_dir() / "broker")
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # Kombu polls the spool; its 1 s default would add a second to every hop.
            "polling_interval": 0.1,
        }
    return {}


def queue_depth(app: Any, queue: str) -> int:
    """Messages ready on ``queue``, not counting those a worker holds (Redis and RabbitMQ
    agree on that); raises when the broker cannot say, e.g. RabbitMQ for a queue nobody has
    declared yet."""
    with app.connection_for_read() as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


def send_flushes(app: Any, dues: Iterable[Due]) -> None:
    """Schedule each flush at its time; one further than the countdown cap is sent at the cap
    and parks itself again (the flush re-reads when it is due).

    Flushes due within ``FLUSH_GROUP_SECONDS`` of each other go in one message, at the
    latest of their times: the windows a batch of events starts end together, and one
    message for them costs the broker and the worker a fraction of one per link.
    """
    now = datetime.now(UTC)
    dues = list(dues)
    for inbound in (False, True):
        task, queue = (INBOUND_FLUSH_TASK, INBOUND_QUEUE) if inbound else \
            (FLUSH_TASK, OUTBOUND_QUEUE)
        ordered = sorted((due for due in dues if due.inbound == inbound), key=lambda d: d.at)
        while ordered:
            first = ordered[0].at
            group = [due for due in ordered[:FLUSH_GROUP_LINKS]
                     if (due.at - first).total_seconds() <= FLUSH_GROUP_SECONDS]
            ordered = ordered[len(group):]
            countdown = min(max((group[-1].at - now).total_seconds(), 0.0),
                            MAX_COUNTDOWN_SECONDS)
            app.send_task(task, args=(sorted({due.link_id for due in group}),), queue=queue,
                          countdown=countdown or None)


def send_deliveries(app: Any, inbox_ids: Iterable[int]) -> None:
    """Hand stored deliveries to the workers (their payload stays in the inbox): the ids
    stored together go in one message, as publishing costs more than storing a delivery."""
    ids = list(inbox_ids)
    if not ids:
        return
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), DELIVERIES_PER_MESSAGE):
            app.send_task(DELIVERY_TASK, args=(ids[start:start + DELIVERIES_PER_MESSAGE],),
                          queue=INBOUND_QUEUE, producer=producer)


def send_job(app: Any, job_id: int, after_id: int = 0) -> None:
    """Hand a recorded admin job (``jira_sync.admin.jobs``) to the workers, once the row has
    committed; ``after_id`` carries a job on where its previous run stopped."""
    app.send_task(JOB_TASK, args=(job_id, after_id), queue=MAINTENANCE_QUEUE)
