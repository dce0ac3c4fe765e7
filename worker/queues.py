"""Queue names. Each role has its own queue so slow Jira calls never starve intake."""

from jira_sync.broker import INBOUND_QUEUE, MAINTENANCE_QUEUE, OUTBOUND_QUEUE
from jira_sync.publish import QALITA_QUEUE

QALITA = QALITA_QUEUE
JIRA_INBOUND = INBOUND_QUEUE
OUTBOUND = OUTBOUND_QUEUE
MAINTENANCE = MAINTENANCE_QUEUE

ALL = (QALITA, JIRA_INBOUND, OUTBOUND, MAINTENANCE)
