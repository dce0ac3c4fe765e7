"""``python -m jira_sync`` is ``jira-sync``."""

from jira_sync.cli import main

main()
