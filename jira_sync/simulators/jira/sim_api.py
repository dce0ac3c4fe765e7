"""``/_sim/...``: the inspection and control API (no auth), for tests, the demo and benchmarks.

Path filters on calls are exact unless they contain a glob character: ``*`` matches anything,
``/`` included (``/rest/api/3/issue/*/comment`` or ``/rest/api/3/issue*``). People working in
Jira act through ``people``, registered here too. ``/_sim/quota`` moves the OAuth app's hourly
points so that a test of the quota need not spend 65,000 points or wait for the hour.
"""

from __future__ import annotations

import dataclasses

from flask import Blueprint, jsonify, request

from jira_sync.simulators.jira import people
from jira_sync.simulators.jira.config import RUNTIME_SETTINGS
from jira_sync.simulators.jira.errors import bad_request
from jira_sync.simulators.jira.simulator import Simulator, json_body


def blueprint(sim: Simulator) -> Blueprint:
    bp = Blueprint("sim", __name__, url_prefix="/_sim")

    def call_filters() -> dict:
        return {"method": request.args.get("method"), "path": request.args.get("path"),
                "status": request.args.get("status", type=int),
                "rate_limit_reason": request.args.get("rate_limit_reason")}

    @bp.get("/issues")
    def issues():
        return jsonify(sim.store.inspect())

    @bp.get("/issues/<id_or_key>")
    def issue(id_or_key: str):
        return jsonify(sim.store.view(id_or_key))

    people.register(bp, sim)

    @bp.get("/calls")
    def calls():
        return jsonify(sim.calls.select(**call_filters()))

    @bp.get("/calls/count")
    def calls_count():
        return jsonify({"count": len(sim.calls.select(**call_filters()))})

    @bp.post("/reset")
    def reset():
        sim.reset()
        return jsonify({"reset": True})

    @bp.get("/config")
    def get_config():
        return jsonify(_config(sim))

    @bp.post("/config")
    def set_config():
        changes = json_body()
        if not isinstance(changes, dict):
            raise bad_request(None, "Send a JSON object of settings.")
        unknown = sorted(set(changes) - set(RUNTIME_SETTINGS))
        if unknown:
            raise bad_request(None, f"Not changeable at run time: {', '.join(unknown)}. "
                              f"Changeable: {', '.join(RUNTIME_SETTINGS)}.")
        if "webhook_events" in changes:
            changes["webhook_events"] = tuple(changes["webhook_events"] or ())
        if "issue_write_limits" in changes:
            try:
                changes["issue_write_limits"] = tuple(
                    (count, seconds) for count, seconds in changes["issue_write_limits"] or ())
            except (TypeError, ValueError):
                raise bad_request(None, "issue_write_limits: a list of [writes, seconds] "
                                  "pairs.") from None
        try:
            dataclasses.replace(sim.config, **changes)  # validates the combination
        except (TypeError, ValueError) as exc:
            raise bad_request(None, str(exc)) from None
        for name, value in changes.items():
            setattr(sim.config, name, value)
        return jsonify(_config(sim))

    @bp.get("/quota")
    def get_quota():
        return jsonify(sim.limits.quota_state())

    @bp.post("/quota")
    def set_quota():
        changes = json_body()
        if not isinstance(changes, dict) or set(changes) - {"used", "reset_in_seconds"}:
            raise bad_request(None, "Send {\"used\": N} and/or {\"reset_in_seconds\": S}: "
                              "the points used this window, and when the window ends.")
        used, reset_in = changes.get("used"), changes.get("reset_in_seconds")
        if used is not None and (isinstance(used, bool) or not isinstance(used, int)
                                 or used < 0):
            raise bad_request(None, "used: a whole number of points, 0 or more.")
        if reset_in is not None and (isinstance(reset_in, bool)
                                     or not isinstance(reset_in, int | float) or reset_in < 0):
            raise bad_request(None, "reset_in_seconds: a number of seconds, 0 or more.")
        sim.limits.quota_pool().set(used, reset_in)
        return jsonify(sim.limits.quota_state())

    @bp.get("/switches")
    def get_switches():
        return jsonify(sim.catalog.switches.as_dict())

    @bp.post("/switches")
    def set_switches():
        changes = json_body()
        if not isinstance(changes, dict):
            raise bad_request(None, "Send a JSON object of switches.")
        try:
            sim.catalog.switches.update(changes)
        except ValueError as exc:
            raise bad_request(None, str(exc)) from None
        return jsonify(sim.catalog.switches.as_dict())

    @bp.get("/webhooks")
    def webhooks():
        idle = True
        if request.args.get("wait", "0") not in ("0", "false", ""):
            idle = sim.dispatcher.wait_idle(request.args.get("timeout", 10.0, type=float))
        with_payload = request.args.get("payload", "0") not in ("0", "false", "")
        pending = sim.dispatcher.pending()
        return jsonify({"pending": pending, "idle": idle and pending == 0,
                        "drop_next": sim.dispatcher.drops_pending(),
                        "deliveries": sim.dispatcher.deliveries(with_payload=with_payload)})

    @bp.post("/webhooks/drop")
    def drop():
        body = json_body()
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad_request(None, "Send {\"count\": N}: how many of the next deliveries to "
                              "lose (0 cancels).")
        sim.dispatcher.drop(count)
        return jsonify({"drop_next": count})

    @bp.post("/webhooks/flush")
    def flush():
        idle = sim.dispatcher.wait_idle(request.args.get("timeout", 10.0, type=float))
        return jsonify({"pending": sim.dispatcher.pending(), "idle": idle})

    return bp


def _config(sim: Simulator) -> dict:
    config = sim.config
    return {
        "deployment": config.deployment, "api_version": config.api_version,
        "credentials": list(config.credentials), "pat": config.pat,
        "seed": config.seed, "projects": [p.key for p in config.projects],
        "users": [u.email for u in sim.catalog.users],
        **{name: getattr(config, name) for name in RUNTIME_SETTINGS},
        "webhook_events": list(config.webhook_events),
    }
