"""Dead letters: list, show, replay one or all that match, discard; and the replay jobs."""

from __future__ import annotations

from typing import Any

from flask import abort

from jira_sync.admin import dead_letters as core
from jira_sync.admin import jobs
from jira_sync.admin.schemas import (
    BulkReplay,
    DeadLetterQuery,
    DeadLetterView,
    JobView,
    page_of,
)
from jira_sync.broker import send_job
from webhook_app import context
from webhook_app.admin.api import api
from webhook_app.producer import hand_over

TAG = "dead letters"


@api.route("/dead-letters", "GET", summary="Every dead letter, also those no integration owns "
           "(invalid events)", tag=TAG, query=DeadLetterQuery,
           responses={200: page_of(DeadLetterView)})
def list_all(query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.list_letters(session, **query).as_dict(), 200


@api.route("/integrations/jira/<id:id>/dead-letters", "GET", summary="The integration's "
           "dead letters", tag=TAG, query=DeadLetterQuery,
           responses={200: page_of(DeadLetterView)})
def list_of_integration(id: int, query: dict[str, Any]) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.list_letters(session, integration_id=id, **query).as_dict(), 200


@api.route("/dead-letters/<bigid:dl_id>", "GET", summary="One dead letter", tag=TAG,
           responses={200: DeadLetterView})
def show(dl_id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.show(session, dl_id), 200


@api.route("/dead-letters/<bigid:dl_id>/replay", "POST", summary="Queue the letter's work again "
           "(today's code and configuration)", tag=TAG,
           responses={202: DeadLetterView, 409: None})
def replay(dl_id: int) -> tuple[Any, int]:
    return _replay(dl_id, None)


@api.route("/integrations/jira/<id:id>/dead-letters/<bigid:dl_id>/replay", "POST",
           summary="Queue the letter's work again (CONTRACT §3's path)", tag=TAG,
           responses={202: DeadLetterView, 409: None})
def replay_of_integration(id: int, dl_id: int) -> tuple[Any, int]:
    return _replay(dl_id, id)


@api.route("/dead-letters/<bigid:dl_id>", "DELETE", summary="Discard (kept, marked discarded)",
           tag=TAG, responses={200: DeadLetterView, 409: None})
def discard(dl_id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return core.discard(session, dl_id), 200


@api.route("/dead-letters/replay", "POST", summary="Replay every open letter the filter "
           "matches, as a job", tag=TAG, body=BulkReplay, responses={202: JobView})
def replay_matching(body: dict[str, Any]) -> tuple[Any, int]:
    filters = {**body, "since": body["since"].isoformat() if body.get("since") else None}
    with context.database().unit_of_work() as session:
        job_id = jobs.start_bulk_replay(session, filters).id
    if not hand_over(lambda app: send_job(app, job_id), f"replay job {job_id}"):
        with context.database().unit_of_work() as session:
            jobs.never_sent(session, job_id, "the broker could not be reached")
        abort(503, "the broker could not be reached: start the replay again")
    with context.database().unit_of_work() as session:
        return jobs.job_view(session, job_id), 202


@api.route("/jobs/<bigid:job_id>", "GET", summary="A job's progress", tag="jobs",
           responses={200: JobView})
def show_job(job_id: int) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        return jobs.job_view(session, job_id), 200


def _replay(dl_id: int, integration_id: int | None) -> tuple[Any, int]:
    with context.database().unit_of_work() as session:
        replayed = core.replay(session, context.sync_context(), dl_id,
                               integration_id=integration_id)
    hand_over(replayed.send, f"the replay of dead letter {dl_id}")
    return replayed.as_dict(), 202
