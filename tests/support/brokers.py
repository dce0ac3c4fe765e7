"""What a test asks of its broker, the same on Redis and on RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import redis

from tests.support import rabbitmq
from worker import queues


def idle(broker_url: str, names: Iterable[str] = queues.ALL) -> bool:
    """No message waits on the queues ``names``, and none taken from them is still held by a
    worker (a message waiting for its countdown is held): nothing is left to run."""
    names = list(names)
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        client = redis.Redis.from_url(broker_url)
        return client.hlen("unacked") == 0 and all(client.llen(name) == 0 for name in names)
    # RabbitMQ counts a queue's messages ready and unacknowledged together.
    held = rabbitmq.queues(unquote(urlsplit(broker_url).path[1:]))
    return all(held.get(name, {}).get("messages", 0) == 0 for name in names)
