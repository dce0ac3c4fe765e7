"""Fixtures for the Jira simulator tests: a running simulator per test, a plain HTTP client for
it, and a tiny webhook receiver. Everything talks HTTP, as the service will."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from jira_sync.simulators.jira import SimulatorConfig, running_simulator

SVC = ("svc@example.com", "tok-123")
ANA = ("ana@example.com", "tok-ana")
BO = ("bo@example.com", "tok-bo")


def adf(text: str) -> dict:
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}


class Jira:
    """A bare REST client: the simulator is checked with requests alone, never with the
    service's own Jira client."""

    def __init__(self, base_url: str, deployment: str, auth: tuple[str, str] = SVC) -> None:
        self.base_url, self.deployment = base_url, deployment
        self.cloud = deployment == "cloud"
        self.api = f"{base_url}/rest/api/{3 if self.cloud else 2}"
        self.session = requests.Session()
        self.session.auth = auth

    def as_user(self, auth: tuple[str, str]) -> Jira:
        return Jira(self.base_url, self.deployment, auth)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.api + path, timeout=10, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.api + path, json=body, timeout=10, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.put(self.api + path, json=body, timeout=10, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.api + path, timeout=10, **kwargs)

    def text(self, text: str) -> Any:
        """Rich text in this deployment's format: ADF on Cloud v3, wiki on Server v2."""
        return adf(text) if self.cloud else text

    def user_ref(self, who: str) -> dict:
        account_ids = {"ana": "712020:ana-0001", "bo": "712020:bo-0002"}
        return {"accountId": account_ids[who]} if self.cloud else {"name": who}

    def create(self, project: str = "DATA", summary: str = "Orders table is stale",
               **fields: Any) -> dict:
        body = {"fields": {"project": {"key": project}, "issuetype": {"name": "Bug"},
                           "summary": summary, **fields}}
        response = self.post("/issue", body)
        assert response.status_code == 201, response.text
        return response.json()

    def sim(self, path: str, **kwargs: Any) -> Any:
        response = requests.get(f"{self.base_url}/_sim{path}", timeout=15, **kwargs)
        response.raise_for_status()
        return response.json()

    def sim_post(self, path: str, body: Any = None) -> requests.Response:
        return requests.post(f"{self.base_url}/_sim{path}", json=body, timeout=15)

    def sim_put(self, path: str, body: Any = None) -> requests.Response:
        return requests.put(f"{self.base_url}/_sim{path}", json=body, timeout=15)

    def sim_delete(self, path: str, **params: str) -> requests.Response:
        return requests.delete(f"{self.base_url}/_sim{path}", params=params, timeout=15)

    def act(self, path: str, body: Any) -> dict:
        """A person's action under /_sim/issues/...; it must succeed."""
        response = self.sim_post(f"/issues/{path}", body)
        assert response.ok, response.text
        return response.json()

    def flush(self) -> dict:
        """Wait until every webhook delivery is done; the deliveries as /_sim shows them."""
        state = self.sim("/webhooks", params={"wait": 1, "timeout": 10})
        assert state["idle"], state
        return state

    def search(self, jql: str, **params: Any) -> requests.Response:
        path = "/search/jql" if self.cloud else "/search"
        return self.get(path, params={"jql": jql, **params})


@pytest.fixture
def simulate() -> Iterator:
    """Start simulators with any configuration; each is stopped at the end of the test."""
    running = []

    def start(deployment: str = "cloud", **settings: Any) -> Jira:
        settings.setdefault("index_lag_ms", 0)
        sim = running_simulator(SimulatorConfig(deployment=deployment, **settings))
        sim.__enter__()
        running.append(sim)
        return Jira(sim.base_url, deployment)

    yield start
    for sim in running:
        sim.__exit__(None, None, None)


@pytest.fixture(params=["cloud", "server"])
def jira(request: pytest.FixtureRequest, simulate) -> Jira:
    return simulate(request.param)


@pytest.fixture
def cloud(simulate) -> Jira:
    return simulate("cloud")


@pytest.fixture
def server(simulate) -> Jira:
    return simulate("server")


class Receiver:
    """Records webhook deliveries (headers and raw body); answers ``plan`` statuses first."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.plan: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.deliveries.append((dict(self.headers.items()), body))
                    status = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(body) for _, body in self.deliveries]

    def events(self) -> list[str]:
        return [body["webhookEvent"] for body in self.bodies()]

    def wait_for(self, count: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            assert time.monotonic() < deadline, f"only {len(self.deliveries)} of {count} came"
            time.sleep(0.01)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


RETRY_FAST = {"webhook_retry_delay_ms": 30, "webhook_shuffle_window_ms": 100}


@pytest.fixture
def hooked(simulate, receiver: Receiver):
    """A simulator whose webhook points at the test's receiver."""

    def start(deployment: str = "cloud", **settings: Any) -> Jira:
        return simulate(deployment, webhook_url=receiver.url, **{**RETRY_FAST, **settings})

    return start
