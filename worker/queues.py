"""Queue names and how the worker declares them. Each role has its own queue so slow Jira
calls never starve intake."""

from kombu import Exchange, Queue

from jira_sync.broker import INBOUND_QUEUE, MAINTENANCE_QUEUE, OUTBOUND_QUEUE
from jira_sync.publish import QALITA_QUEUE

QALITA = QALITA_QUEUE
JIRA_INBOUND = INBOUND_QUEUE
OUTBOUND = OUTBOUND_QUEUE
MAINTENANCE = MAINTENANCE_QUEUE

ALL = (QALITA, JIRA_INBOUND, OUTBOUND, MAINTENANCE)


def declarations() -> list[Queue]:
    """Each queue durable, on a durable direct exchange of its own name, and classic by name.

    Classic is said rather than left to the broker: on a RabbitMQ whose virtual host makes
    quorum queues by default, Celery's countdowns would need its native delayed delivery,
    which does not work with these direct exchanges, and a queue cannot change type once
    declared. RabbitMQ takes a queue declared classic as the same as one declared with no
    type (so plain Celery producers still match), and Redis and the demo's spool ignore the
    argument.
    """
    return [Queue(name, Exchange(name, type="direct", durable=True), routing_key=name,
                  durable=True, queue_arguments={"x-queue-type": "classic"})
            for name in ALL]
