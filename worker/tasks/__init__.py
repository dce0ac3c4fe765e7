"""Task wrappers, one module per role; each task is a few lines over jira_sync."""
