"""Running the simulator: ``serve`` for the command line, ``running_simulator`` for tests.

Werkzeug's threaded server gives each connection its own thread, so benchmarks can push many
concurrent clients; the simulator's state is guarded by its own locks.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from jira_sync.simulators.jira.app import make_app, simulator_of
from jira_sync.simulators.jira.config import SimulatorConfig

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: at benchmark rates it would dominate the run."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


def _server(config: SimulatorConfig, host: str, port: int) -> BaseWSGIServer:
    return make_server(host, port, make_app(config), threaded=True,
                       request_handler=_QuietHandler)


def serve(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (blocking)."""
    server = _server(config, host, port)
    api = f"/rest/api/{config.api_version}"
    log.info("Jira simulator (%s) on http://%s:%s%s, inspection under /_sim/",
             config.deployment, host, server.port, api)

    def _stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        simulator_of(server.app).close()


class running_simulator:
    """Serve in a background thread for the duration of a ``with`` block.

    ``base_url`` is the site root (``http://127.0.0.1:<port>``); ``simulator`` gives direct
    access to the state for assertions the HTTP inspection API does not cover.
    """

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def simulator(self):
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return simulator_of(self._server.app)

    def __enter__(self) -> running_simulator:
        self._server = _server(self.config, self.host, self.port)
        self.port = self._server.port
        # A short poll interval keeps shutdown (and so every test using this) fast.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True, name=f"jira-sim-{self.port}")
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()
        simulator_of(self._server.app).close()
