"""The local RabbitMQ node as the tests use it: a virtual host of each test's own, and what a
test inspects or breaks in it, through ``rabbitmqctl`` (the node serves no management API).

``rabbitmqctl`` starts an Erlang VM for every call (about half a second), so the tests call
it only where the AMQP protocol cannot do the same: making and removing virtual hosts,
listing queues with their type, closing connections.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

RABBITMQ_URL = os.environ.get("JIRA_SYNC_TEST_RABBITMQ_URL",
                              "amqp://guest:guest@127.0.0.1:5672")


def available() -> str | None:
    """Why the tests cannot use the node, or None."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    try:
        rabbitmqctl("await_startup", "--timeout", "5")
    except RuntimeError as exc:
        return str(exc)
    return None


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    if result.returncode:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: "
                           f"{(result.stderr or result.stdout).strip()}")
    return result.stdout


def add_vhost(name: str) -> None:
    """Make virtual host ``name``, open to the user of ``RABBITMQ_URL``."""
    user = urlsplit(RABBITMQ_URL).username or "guest"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


def delete_vhost_in_background(name: str) -> subprocess.Popen:
    """Start removing ``name`` with everything in it (queues, connections) without waiting:
    the next test need not pay for it."""
    return subprocess.Popen(["rabbitmqctl", "-q", "delete_vhost", name],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def connections(vhost: str) -> list[str]:
    """The names of the client connections open on ``vhost``."""
    listed = json.loads(rabbitmqctl("list_connections", "vhost", "name",
                                    "--formatter", "json") or "[]")
    return [c["name"] for c in listed if c["vhost"] == vhost]


def close_connections(vhost: str, reason: str = "test: broker cut") -> int:
    """Close every client connection of ``vhost`` at once, as a broker cut does to the
    service, without restarting the node that other tests share; returns how many.

    The node sends each client its close at once, but lists a connection until the client
    reads that: an idle producer's stays listed until its next publish finds it closed.
    """
    said = rabbitmqctl("close_all_connections", "--vhost", vhost, "--limit", "1000", reason)
    closed = re.search(r"Closed (\d+) connection", said)
    if closed is None:
        raise RuntimeError(f"rabbitmqctl close_all_connections said {said!r}")
    return int(closed.group(1))


def queues(vhost: str) -> dict[str, dict[str, Any]]:
    """Each queue of ``vhost`` by name: ``durable``, ``type``, ``messages``, ``arguments``."""
    listed = json.loads(rabbitmqctl("list_queues", "-p", vhost, "name", "durable", "type",
                                    "messages", "arguments", "--formatter", "json") or "[]")
    return {queue.pop("name"): queue for queue in listed}
