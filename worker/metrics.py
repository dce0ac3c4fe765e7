"""The worker's metrics port: the pool's counters (``jira_sync.telemetry``) added up across
its processes, and the database's gauges, served from the main process.

Each pool process writes its values to files in one directory (prometheus-client's
multiprocess mode); a scrape reads them all. The directory is made fresh at every worker
start, before the pool forks and before anything in the worker imports prometheus_client
(``jira_sync.telemetry`` imports it at the first metric), so counters never carry a previous
run's values. A pool process that ends (``worker_max_tasks_per_child``, a crash) leaves its
files behind: at the next scrape its counters are folded into one file per type and its
running-task gauge is dropped, so the directory does not grow with every replaced process.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable
from typing import Any

from jira_sync.store.db import Database

logger = logging.getLogger("jira_sync.worker")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_PREFIX = "jira-sync-metrics-"
# counter_1234.db, histogram_1234.db, gauge_livesum_1234.db: what one process writes.
_PROCESS_FILE = re.compile(r"^(?P<kind>counter|histogram|gauge_\w+?)_(?P<pid>\d+)\.db$")
_FOLDED = ("counter", "histogram")  # summed across processes, so a dead one's can be added up

_served: dict[str, Any] = {}


def prepare(port: int) -> None:
    """Give this worker run a fresh multiprocess directory (none when ``port`` is 0). Called by
    `jira-sync worker` before it hands over to Celery, whose command line imports flower's
    plugin and with it prometheus_client. Directories of workers that died without cleaning
    up (SIGKILL, out of memory) are removed first: they would otherwise pile up at restarts."""
    if not port:
        return
    parent = tempfile.gettempdir()
    for stale in glob.glob(os.path.join(parent, f"{DIRECTORY_PREFIX}*")):
        owner = re.match(rf"{DIRECTORY_PREFIX}(\d+)-", os.path.basename(stale))
        if owner and not _alive(int(owner[1])):
            shutil.rmtree(stale, ignore_errors=True)
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-")


def serve(host: str, port: int, database: Database) -> None:
    """Serve ``/metrics`` on ``host:port`` from a thread of this (the main) process, before
    the pool forks. A port already taken is logged, not fatal: the worker's job is syncing."""
    from prometheus_client import CollectorRegistry, start_http_server, values

    path = os.environ.get(MULTIPROC_ENV)
    if not path or not getattr(values.ValueClass, "_multiprocess", False):
        logger.error("worker metrics are off: prometheus_client was loaded before %s was set "
                     "(start workers with `jira-sync worker`)", MULTIPROC_ENV)
        return
    from jira_sync.store.gauges import StoreCollector

    registry = CollectorRegistry()
    registry.register(PoolCollector(path))
    registry.register(StoreCollector(database))
    _served["path"] = path
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        logger.error("worker metrics are off: cannot listen on %s:%d (%s); set "
                     "JIRA_SYNC_WORKER_METRICS_PORT to a free port, or 0", host, port,
                     exc.strerror or exc)
        return
    _served["server"] = server
    logger.info("worker metrics on http://%s:%d/metrics (values in %s)", host, port, path)


def stop() -> None:
    server = _served.pop("server", None)
    if server is not None:
        server.shutdown()
        server.server_close()
    path = _served.pop("path", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


class PoolCollector:
    """prometheus-client's MultiProcessCollector over ``path``, tidying dead processes' files
    first. One lock: a scrape must not read a file while another scrape folds it away."""

    def __init__(self, path: str) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self.path = path
        self._collector = MultiProcessCollector(None, path=path)
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Any]:
        with self._lock:
            fold_dead_processes(self.path)
            return list(self._collector.collect())


def fold_dead_processes(path: str) -> None:
    """Add each ended process's counters and histograms into ``<kind>_folded.db`` and drop
    its files; its live gauges (tasks running) simply go, as the process no longer runs."""
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    for file in glob.glob(os.path.join(path, "*.db")):
        match = _PROCESS_FILE.match(os.path.basename(file))
        if match is None or _alive(int(match["pid"])):
            continue
        pid, kind = int(match["pid"]), match["kind"]
        if kind in _FOLDED:
            folded = MmapedDict(os.path.join(path, f"{kind}_folded.db"))
            try:
                for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(file):
                    total, _ = folded.read_value(key)
                    folded.write_value(key, total + value, 0.0)
            finally:
                folded.close()
            os.remove(file)
        else:
            multiprocess.mark_process_dead(pid, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
