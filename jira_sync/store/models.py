"""The tables behind the sync, one class per table.

Columns hold state the design needs (see docs/architecture.md): the link row is the unit
of idempotency and serialisation, the inbox makes every received event durable before it
is acknowledged, and dead letters plus the integration log make every failure visible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jira_sync.store.types import JSONDocument, UTCDateTime, utcnow

# Deterministic constraint names, so migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Integration(Timestamped, Base):
    """One Jira site serving one QALITA tenant; credentials live sealed in ``secrets_sealed``."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), unique=True)
    # The tenant as it appears in marker labels; two tenants may not share one.
    tenant_label: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    deployment: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str] = mapped_column(String(2048))
    auth_method: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    cloud_id: Mapped[str | None] = mapped_column(String(64))
    oauth_client_id: Mapped[str | None] = mapped_column(String(200))
    project_key: Mapped[str | None] = mapped_column(String(64))
    issue_type: Mapped[str | None] = mapped_column(String(64))
    qalita_api_url: Mapped[str | None] = mapped_column(String(2048))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets_sealed: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the token in the integration's webhook URL; the token itself is never kept.
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # CIDRs that may deliver this integration's webhooks; None lets any address deliver.
    ip_allowlist: Mapped[list[str] | None] = mapped_column(JSONDocument)
    # When the last reconciliation sweep of this site completed: the next one reads from here.
    reconciled_at: Mapped[datetime | None]
    # Soft delete: links and history stay; a POST of the same tenant revives the row.
    deleted_at: Mapped[datetime | None]
    # The fields the environment set at the last start: they are its, not the admin API's.
    env_fields: Mapped[list[str] | None] = mapped_column(JSONDocument)
    # An integration-wide refusal (CONTRACT §3 admin API): a Jira 401, or a 403 ``myself``
    # confirms, stops both directions; a QALITA 401 stops the inbound one. Work parks until
    # a call succeeds again or the settings change.
    jira_paused_at: Mapped[datetime | None]
    jira_paused_reason: Mapped[str | None] = mapped_column(Text)
    qalita_paused_at: Mapped[datetime | None]
    qalita_paused_reason: Mapped[str | None] = mapped_column(Text)


LIVE_LINK = text("state <> 'severed'")


class IssueLink(Timestamped, Base):
    """The one Jira issue of one QALITA issue, with desired and last-written state."""

    __tablename__ = "issue_links"
    __table_args__ = (
        # A severed link keeps its row; the live link made after it must not clash with it.
        Index("uq_issue_links_live_qalita_issue", "tenant", "qalita_issue_id", "integration_id",
              unique=True, postgresql_where=LIVE_LINK, sqlite_where=LIVE_LINK),
        Index("uq_issue_links_live_jira_issue", "integration_id", "jira_issue_id",
              unique=True, postgresql_where=LIVE_LINK, sqlite_where=LIVE_LINK),
        Index("ix_issue_links_state_due_at", "state", "due_at"),
        Index("ix_issue_links_integration_id_jira_project_key", "integration_id",
              "jira_project_key"),
        Index("ix_issue_links_inbound_due_at", "inbound_due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(String(64))
    qalita_issue_id: Mapped[int] = mapped_column(BigInteger)
    # Jira's numeric id is the identity; the key changes when an issue moves project.
    jira_issue_id: Mapped[str | None] = mapped_column(String(32))
    jira_issue_key: Mapped[str | None] = mapped_column(String(64))
    jira_project_key: Mapped[str | None] = mapped_column(String(64))
    jira_issue_type: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    state_reason: Mapped[str | None] = mapped_column(Text)
    desired: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    desired_version: Mapped[int] = mapped_column(BigInteger, default=0)
    applied_version: Mapped[int] = mapped_column(BigInteger, default=0)
    written: Mapped[dict[str, Any]] = mapped_column(default=dict)
    managed_labels: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    # The link's last view of Jira, per field: the value, the changelog id and time that set
    # it (the watermark), and whether QALITA still has to be told (sync/jira_view.py).
    jira_view: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Inbound (Jira to QALITA) has its own schedule and failures, so a QALITA outage never
    # holds outbound writes back, nor a Jira outage inbound ones.
    inbound_due_at: Mapped[datetime | None]
    inbound_attempts: Mapped[int] = mapped_column(Integer, default=0)
    inbound_first_failure_at: Mapped[datetime | None]
    inbound_state: Mapped[str | None] = mapped_column(String(16))
    inbound_reason: Mapped[str | None] = mapped_column(Text)
    # When the reconciliation sweep last confirmed the Jira issue exists (rotating check).
    jira_checked_at: Mapped[datetime | None]
    create_attempted_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None]


class CommentLink(Timestamped, Base):
    """A comment mirrored between the two sides; a tombstone stops a late create."""

    __tablename__ = "comment_links"
    __table_args__ = (
        UniqueConstraint("link_id", "qalita_comment_id"),
        UniqueConstraint("link_id", "jira_comment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("issue_links.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(16))
    qalita_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    jira_comment_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    body_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The text the other side should show, and when the event that set it happened: comment
    # events carry no version, so the newest occurrence wins.
    body: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(255))
    desired_at: Mapped[datetime | None]
    # Set before posting: a retry then looks for the comment's marker instead of posting twice.
    attempted_at: Mapped[datetime | None]


class PendingWrite(Base):
    """A value jira-sync sent to one side and has not yet seen come back from it.

    The change it causes returns as a webhook (Jira) or an event (QALITA); matching it here
    is what tells that echo from a person's change, so nothing jira-sync wrote is written back.
    """

    __tablename__ = "pending_writes"
    __table_args__ = (Index("ix_pending_writes_link_id_side_field", "link_id", "side", "field"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("issue_links.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(8))  # where it was written: "jira" or "qalita"
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None]


class InboxEvent(Base):
    """Every received QALITA event or Jira delivery, stored before it is acknowledged."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_inbox_state_received_at", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    # event_id for QALITA, X-Atlassian-Webhook-Identifier (or a body hash) for Jira.
    dedupe_key: Mapped[str] = mapped_column(String(255))
    tenant: Mapped[str | None] = mapped_column(String(64))
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL"))
    event_type: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    state: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class DeadLetter(Base):
    """Work that will not succeed by retrying, kept with everything needed to replay it."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id", ondelete="SET NULL"),
                                                 index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("issue_links.id", ondelete="SET NULL"),
                                                index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    replayed_at: Mapped[datetime | None]
    discarded_at: Mapped[datetime | None]
    # Closed because its link synced since, however that came about.
    resolved_at: Mapped[datetime | None]


class LogEntry(Base):
    """One decision of the sync (applied, skipped as echo, stale, blocked, ...), redacted."""

    __tablename__ = "integration_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("issue_links.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    level: Mapped[str] = mapped_column(String(8), default="info")
    action: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Job(Timestamped, Base):
    """Long admin work (a bulk replay) run by a worker, its progress read by the API."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]


class UserIdentity(Base):
    """A QALITA e-mail resolved to a Jira user (accountId on Cloud, name on Server)."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("integration_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    jira_account_id: Mapped[str | None] = mapped_column(String(128))
    jira_username: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceLock(Base):
    """A named lease (e.g. the beat lock) where the broker is not Redis."""

    __tablename__ = "service_locks"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]


class QueueHeartbeat(Base):
    """When a worker last consumed the probe sent through each queue (stuck-consumer alerts)."""

    __tablename__ = "queue_heartbeats"

    queue: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime]
    seen_at: Mapped[datetime]


class RateLimitState(Base):
    """The shared state of the Jira rate limiter (a bucket's pace, or a pause), where the
    broker is not Redis; ``jira_sync.jira.limiter`` reads and writes ``state``."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    # Unix seconds after which nobody needs the row any more (pruned).
    expires_at: Mapped[float] = mapped_column(Double)
