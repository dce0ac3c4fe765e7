"""``jira-sync web | worker | beat``: the long-running processes."""

from __future__ import annotations

import click

from jira_sync.cli.common import load_settings, preflight

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.command()
def web() -> None:
    """Serve the HTTP endpoints (Jira webhooks, QALITA events, health, metrics) under gunicorn."""
    settings = load_settings(needs_secret_key=True)
    from webhook_app.server import WebServer

    WebServer(settings).run()


@click.command(context_settings=PASS_THROUGH)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on every queue (`-Q` names others); extra arguments go to
    `celery worker`."""
    settings = load_settings(needs_secret_key=True)
    preflight(settings)
    from worker import metrics, queues

    metrics.prepare(settings.worker_metrics_port)  # before anything loads prometheus_client
    from worker.celery_app import app

    app.worker_main(["worker", "--queues", ",".join(queues.ALL), "--events",
                     "--loglevel", settings.log_level, "--hostname", "jira-sync@%h",
                     *celery_args])


@click.command(context_settings=PASS_THROUGH)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run the (locked, one per deployment) beat scheduler for the periodic sweeps."""
    settings = load_settings(needs_secret_key=True)
    preflight(settings)
    from worker.celery_app import app

    app.start(["beat", "--scheduler", "worker.beat:LockedScheduler",
               "--loglevel", settings.log_level, *celery_args])
