"""The WSGI app: Jira's REST API under /rest, the inspection API under /_sim.

Every /rest call goes through the same gate, in Jira's order: logged, delayed, limited by its
token bucket, authenticated, limited by the OAuth app's quota and the issue's write limit, then
possibly failed on purpose (before or after the change is applied). Each write is logged with
whether it changed the site, each 429 with its reason, each OAuth call with its cost.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from jira_sync.simulators.jira import api_issues, api_meta, api_search, api_site, sim_api
from jira_sync.simulators.jira.config import SimulatorConfig
from jira_sync.simulators.jira.errors import JiraError
from jira_sync.simulators.jira.faults import Fault
from jira_sync.simulators.jira.ratelimits import (
    Refusal,
    call_cost,
    endpoint_template,
    limit_headers,
)
from jira_sync.simulators.jira.simulator import Simulator, logged_body

log = logging.getLogger(__name__)

NOT_AUTHENTICATED = ("You are not authenticated. Authentication required to perform this "
                     "operation.")
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
READ_POSTS = frozenset({"search_jql", "search", "bulk_fetch"})  # POSTs that only read


def make_app(config: SimulatorConfig) -> Flask:
    """A Flask (WSGI) app simulating one Jira site; ``simulator_of(app)`` reaches its state."""
    sim = Simulator(config)
    app = Flask("jira_simulator")
    app.json.sort_keys = False  # keep Jira's field order
    app.extensions["jira_simulator"] = sim
    rest = _rest_blueprint(sim)
    if sim.cloud:
        app.register_blueprint(rest, url_prefix="/rest/api/3")
        app.register_blueprint(_cloud_v2_blueprint(sim), url_prefix="/rest/api/2")
    else:
        app.register_blueprint(rest, url_prefix="/rest/api/2")
        app.register_blueprint(rest, url_prefix="/rest/api/latest", name="rest_latest")
    app.register_blueprint(sim_api.blueprint(sim))
    _install_gate(app, sim)
    _install_error_handlers(app)
    return app


def simulator_of(app: Flask) -> Simulator:
    return app.extensions["jira_simulator"]


def _rest_blueprint(sim: Simulator) -> Blueprint:
    """The REST API of this deployment only: Cloud serves v3, Server v2 (and its alias)."""
    bp = Blueprint("rest", __name__)
    api_site.register(bp, sim)
    api_meta.register(bp, sim)
    api_issues.register(bp, sim)
    api_search.register(bp, sim)
    return bp


def _cloud_v2_blueprint(sim: Simulator) -> Blueprint:
    """The few reads Cloud's v2 API is modelled for: what clients call there (serverInfo,
    fields, bulk fetch), and the removed search, answered with the same 410 as v3's."""
    bp = Blueprint("rest_v2", __name__)
    api_site.register(bp, sim)
    api_issues.register_bulk_fetch(bp, sim)
    bp.add_url_rule("/search", "gone_search", api_search.gone, methods=["GET", "POST"])
    return bp


def _endpoint() -> str:
    """The view's own name, whichever blueprint (REST version) serves it."""
    return (request.endpoint or "").rsplit(".", 1)[-1]


def _is_write() -> bool:
    return request.method in WRITE_METHODS and _endpoint() not in READ_POSTS


def _bucket_key(sim: Simulator) -> str:
    """Cloud keeps a bucket per endpoint and method; Data Center one per user, told apart by
    the credentials the call bears (checked only afterwards, as the gate's order has it)."""
    if not sim.cloud:
        return request.headers.get("Authorization", "")
    rule = request.url_rule.rule if request.url_rule is not None else "(no such endpoint)"
    return f"{request.method} {endpoint_template(rule)}"


def _written_issue(sim: Simulator) -> str | None:
    """The id of the existing issue a write targets, whichever key names it (a create targets
    none; an unknown issue is the view's 404)."""
    id_or_key = (request.view_args or {}).get("id_or_key")
    if id_or_key is None or not _is_write():
        return None
    try:
        return sim.store.find(id_or_key).id
    except JiraError:
        return None


def _quota_or_issue_limit(sim: Simulator) -> Refusal | None:
    """The OAuth app's quota first: a call it refuses takes no place in the issue's window."""
    if g.oauth:
        refused = sim.limits.quota()
        if refused is not None:
            return refused
    issue_id = _written_issue(sim)
    return None if issue_id is None else sim.limits.issue_write(issue_id)


def _refuse(refused: Refusal) -> Response:
    g.refusal = refused
    return _json({"errorMessages": ["Rate limit exceeded."], "errors": {}}, 429)


def _install_gate(app: Flask, sim: Simulator) -> None:
    @app.before_request
    def _gate() -> Response | None:
        if not request.path.startswith("/rest/"):
            return None
        g.call = sim.calls.start(request.method, request.path, request.args.to_dict(flat=False),
                                 logged_body())
        sim.store.watch()
        if sim.config.latency_ms:
            time.sleep(sim.config.latency_ms / 1000)
        g.bucket = sim.limits.burst(_bucket_key(sim))
        if g.bucket is not None and g.bucket.refusal is not None:
            return _refuse(g.bucket.refusal)
        g.user = sim.authenticate()
        anonymous = ("Authorization" not in request.headers
                     and _endpoint() in api_site.ANONYMOUS_ENDPOINTS)
        if g.user is None and not anonymous:
            response = _json({"errorMessages": [NOT_AUTHENTICATED], "errors": {}}, 401)
            response.headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
            if "Authorization" in request.headers:
                response.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            return response
        g.call["actor"] = g.user.name if g.user else None
        g.oauth = sim.oauth_client() is not None
        refused = _quota_or_issue_limit(sim)
        if refused is not None:
            return _refuse(refused)
        g.fault = sim.faults.draw(sim.config.fail_rate)
        if g.fault is not None and not g.fault.after:
            return Response(status=500)  # replaced below, before anything is changed
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        call = g.get("call")
        if call is None:
            return response
        if sim.config.reply_delay_ms and request.method != "GET":
            time.sleep(sim.config.reply_delay_ms / 1000)
        refused: Refusal | None = g.get("refusal")
        near_limit = False
        if g.get("oauth") and refused is None:
            call["cost"] = call_cost(_endpoint(), _is_write(), response.status_code,
                                     response.get_json(silent=True))
            near_limit = sim.limits.charge(call["cost"])
        fault: Fault | None = g.get("fault")
        if fault is not None:
            call["fault"] = "after" if fault.after else "before"
            response = _fault_response(fault)
        headers = limit_headers(sim.cloud, sim.config.advertise_rate_limit, g.get("bucket"),
                                refused)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if near_limit:
            response.headers["X-RateLimit-NearLimit"] = "true"
        call["rate_limit_reason"] = refused.reason if refused is not None else None
        call["status"] = None if fault is not None and fault.kind == "drop" else \
            response.status_code
        call["dropped"] = fault is not None and fault.kind == "drop"
        if _is_write():
            call["changed"] = sim.store.changed()
        return response


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(JiraError)
    def _jira_error(error: JiraError) -> Response:
        return _json(error.body(), error.status)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return _json({"errorMessages": [error.description or error.name], "errors": {}},
                     error.code or 500)

    @app.errorhandler(Exception)
    def _crash(error: Exception) -> Response:
        log.exception("jira simulator: unexpected error on %s %s", request.method, request.path)
        return _json({"errorMessages": [f"Internal server error: {error}"], "errors": {}}, 500)


def _json(body: dict, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "drop":
        return _drop_connection()
    if fault.kind == 502:
        return Response("<html><head><title>502 Bad Gateway</title></head><body><h1>Bad "
                        "Gateway</h1></body></html>", status=502, mimetype="text/html")
    if fault.kind == 503:
        response = _json({"message": "Service Unavailable", "status-code": 503}, 503)
        response.headers["Retry-After"] = "1"
        return response
    return _json({"errorMessages": ["Internal server error"], "errors": {}}, 500)


def _drop_connection() -> Response:
    """Close the socket without a response; the server's write then fails and is ignored."""
    connection = request.environ.get("werkzeug.socket")
    if connection is None:  # not behind werkzeug's server (e.g. a test client): nearest thing
        return Response(status=502)
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    response = Response(status=500)
    response.headers["Connection"] = "close"
    return response
