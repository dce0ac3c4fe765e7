"""Admin jobs the API and the CLI start (jira_sync.admin.jobs): a bulk replay of dead letters."""

from __future__ import annotations

from jira_sync.admin import jobs
from jira_sync.broker import JOB_TASK, send_job
from worker import queues, runtime
from worker.celery_app import app
from worker.house import task


@task(name=JOB_TASK, queue=queues.MAINTENANCE, transactional=False)
def run_job(job_id: int, after_id: int = 0) -> None:
    """Replay the job's letters, each committed before its work is sent; a run that used up
    its budget enqueues the rest rather than meet the time limit."""
    carry_on = jobs.run_replay(runtime.sync_context(), job_id, after_id=after_id,
                               send=lambda replayed: replayed.send(app))
    if carry_on is not None:
        send_job(app, job_id, carry_on)
