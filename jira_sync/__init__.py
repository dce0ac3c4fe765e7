"""jira-sync: keeps QALITA data-quality issues and Jira issues in step, both ways."""
