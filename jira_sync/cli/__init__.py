"""The ``jira-sync`` command: the entry layer above ``worker`` and ``webhook_app``.

Each command validates the settings first and fails with one line naming the variable;
the heavier packages (Celery, gunicorn) are imported only by the commands that run them.
"""

from __future__ import annotations

import click

from jira_sync.cli import db, demo, integration, processes, reconcile, secrets, simulate, webhook
from jira_sync.cli.dead_letters import dead_letters
from jira_sync.cli.links import links
from jira_sync.cli.logs import logs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Two-way sync between QALITA data-quality issues and Jira issues."""


main.add_command(db.db)
main.add_command(processes.web)
main.add_command(processes.worker)
main.add_command(processes.beat)
main.add_command(demo.demo)
main.add_command(simulate.simulate)
main.add_command(integration.integration)
main.add_command(webhook.webhook)
main.add_command(reconcile.reconcile)
main.add_command(secrets.secrets)
main.add_command(dead_letters)
main.add_command(logs)
main.add_command(links)
