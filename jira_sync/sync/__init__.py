"""The sync itself: pure decisions over the store, with calls through the Jira adapter.

``state`` turns QALITA events into the desired state of links; ``outbound`` and ``creates``
close the difference between desired and written state in Jira; ``sweep`` finds work a lost
worker left behind. Nothing here imports Celery or Flask: callers schedule what it returns.
"""
