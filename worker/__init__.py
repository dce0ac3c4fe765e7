"""The Celery side: app, queues, beat scheduler, thin task wrappers over jira_sync."""
