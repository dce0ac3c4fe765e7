"""Jira webhook deliveries in: authenticated, attributed to integrations, stored durably.

This is all the web process does with a delivery, so it answers Jira fast and never calls
Jira or QALITA inside the request. A delivery proves where it comes from by its signature
(``X-Hub-Signature``, an HMAC of the raw body with an integration's webhook secret) or, for
Jira versions that cannot sign, by the unguessable token in its URL; it is then stored in
the inbox, once per integration it belongs to, deduplicated on Jira's delivery identifier
(which stays the same across Jira's retries). Only the inbox id goes to the broker.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets as token_source
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Text, bindparam, select, update
from sqlalchemy.orm import Session

from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.inbox_writer import InboxWriter
from jira_sync.store import upsert
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent, Integration
from jira_sync.store.types import utcnow
from jira_sync.sync.journal import storable

logger = logging.getLogger("jira_sync.deliveries")

JIRA = "jira"
# Inbox states of a delivery: waiting for a worker, done, held for a disabled integration
# (by versions before disabled integrations took their deliveries and held the flushes:
# ``release_held`` sends such rows on), or kept as a dead letter.
RECEIVED, PROCESSED, HELD, FAILED = "received", "processed", "held", "failed"
SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
KEPT_HEADERS = (IDENTIFIER_HEADER, "X-Atlassian-Webhook-Retry", "X-Atlassian-Webhook-Flow")
# Atlassian says the method may change from sha256, so it is read from the header.
DIGESTS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
           "sha1": hashlib.sha1}
# How long the integrations' webhook credentials are trusted before they are read again, and
# how often a delivery no integration recognises may make them be read at once (a new
# integration or secret takes effect at its first delivery, an attacker cannot make every
# bad request cost a query).
REFRESH_SECONDS = 2.0
MISS_REFRESH_SECONDS = 0.5
MAX_IDENTIFIER = 200
_PRINTABLE = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDENTIFIER}}}")
# What makes a body unfit to store as it came, found in one scan (``_document``): a NUL or
# half a UTF-16 pair (an escape, or surrogate bytes json lets through; a UTF-16 or UTF-32
# body has NUL bytes), a byte-order mark, and numbers Postgres would refuse (an exponent
# past its numeric's range) or give back with more digits than Python reads.
_STORE_AS_PARSED = re.compile(
    rb"\x00|\\u0000|\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]|\A\xef\xbb\xbf|\d[eE][+-]?\d{3}|\d{301}")
SWEEP_BATCH = 1000
TOKEN_URL_PATH = "/api/v2/integrations/jira/webhook/"
UNSIGNED_HINT = ("for a Jira that cannot sign its webhooks, deliver to the integration's "
                 "token URL instead (`jira-sync webhook url`)")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The delivery is not accepted; ``status`` and ``reason`` are the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Target:
    """What one integration needs to recognise and admit its deliveries."""

    integration_id: int
    tenant: str
    host: str | None
    secret: bytes | None = field(repr=False)
    token_hash: str | None = field(repr=False)
    allowlist: tuple[Network, ...] | None = None

    def admits(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        if self.allowlist is None:
            return True
        return address is not None and any(address in network for network in self.allowlist)


class Targets:
    """Every integration's webhook credentials, opened once and kept while unchanged.

    Decrypting each integration's secrets per request would cost more than the request; the
    rows are re-read every ``REFRESH_SECONDS`` and only changed ones are opened again.
    """

    def __init__(self, database: Database, box: SecretBox) -> None:
        self._database, self._box = database, box
        self._lock = threading.Lock()
        self._opened: dict[int, tuple[Any, Target]] = {}
        self._read_at = float("-inf")

    def current(self, *, fresh: bool = False, force: bool = False) -> list[Target]:
        with self._lock:
            age = time.monotonic() - self._read_at
            if force or age > REFRESH_SECONDS or (fresh and age > MISS_REFRESH_SECONDS):
                self._read()
            return [target for _, target in self._opened.values()]

    def _read(self) -> None:
        with self._database.unit_of_work() as session:
            rows = session.execute(select(
                Integration.id, Integration.updated_at, Integration.tenant,
                Integration.base_url, Integration.secrets_sealed,
                Integration.webhook_token_hash, Integration.ip_allowlist).where(
                Integration.deleted_at.is_(None))).all()
        opened: dict[int, tuple[Any, Target]] = {}
        for row in rows:
            known = self._opened.get(row.id)
            if known is not None and known[0] == row.updated_at:
                opened[row.id] = known
                continue
            opened[row.id] = (row.updated_at, self._target(row))
        self._opened, self._read_at = opened, time.monotonic()

    def _target(self, row: Any) -> Target:
        try:
            secret = self._box.open(row.secrets_sealed).get("webhook_secret")
        except SecretsUnreadable:
            logger.warning("integration %s: stored secrets cannot be decrypted with "
                           "JIRA_SYNC_SECRET_KEY; its signed webhooks are refused", row.id)
            secret = None
        allowlist = None
        if row.ip_allowlist is not None:
            allowlist = tuple(ipaddress.ip_network(cidr, strict=False)
                              for cidr in row.ip_allowlist)
        return Target(row.id, row.tenant, urlsplit(row.base_url).hostname,
                      secret.encode() if secret else None, row.webhook_token_hash, allowlist)

    def signed(self, header: str, body: bytes) -> list[Target]:
        """The integrations whose webhook secret signed ``body``."""
        method, _, given = header.strip().partition("=")
        digest = DIGESTS.get(method.strip().lower())
        if digest is None or not given:
            return []
        # Bytes, so a header with non-ASCII characters is a mismatch rather than an error.
        given_bytes = given.strip().lower().encode("utf-8", "replace")

        def verifying(targets: Iterable[Target]) -> list[Target]:
            return [t for t in targets if t.secret is not None and hmac.compare_digest(
                hmac.new(t.secret, body, digest).hexdigest().encode(), given_bytes)]

        return verifying(self.current()) or verifying(self.current(fresh=True))

    def by_token(self, token: str) -> Target | None:
        """The integration whose webhook URL carries ``token``, looked up in the database
        each time: a rotated token must stop working at once, not at the next refresh."""
        with self._database.unit_of_work() as session:
            found = session.scalar(select(Integration.id).where(
                Integration.webhook_token_hash == token_hash(token),
                Integration.deleted_at.is_(None)))
        if found is None:
            return None
        for force in (False, True):  # known to exist: read it now if it is new
            target = next((t for t in self.current(force=force) if t.integration_id == found),
                          None)
            if target is not None:
                return target
        return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_token(session: Session, integration: Integration) -> str:
    """Make the integration's webhook URL token; only its hash is kept, so it is shown once."""
    token = token_source.token_urlsafe(32)
    integration.webhook_token_hash = token_hash(token)
    session.flush()
    return token


def token_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{TOKEN_URL_PATH}{token}"


def client_address(remote: str | None, forwarded_for: str | None,
                   trusted: Sequence[Network]) -> ipaddress.IPv4Address | ipaddress.IPv6Address \
        | None:
    """Who sent the request: the peer, or, when the peer is a trusted proxy, the nearest
    address in ``X-Forwarded-For`` that is not one (anyone can write that header, so only
    what trusted proxies appended is believed)."""
    address = _address(remote)
    if address is None or not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        address = _address(hop)
        if address is None or not _trusted(address, trusted):
            return address
    return address


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


@dataclass(frozen=True)
class Accepted:
    """What was stored: the new inbox rows (none when every one was a duplicate)."""

    inbox_ids: list[int]
    integrations: int


def accept(targets: Targets, writer: InboxWriter, body: bytes, headers: Mapping[str, str], *,
           address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
           token: str | None = None) -> Accepted:
    """Authenticate, attribute and store one delivery; raises :class:`Refused` with the answer
    (401, 403, 400) and the database's error when it cannot be stored (the caller's 503)."""
    if token is not None:
        found = targets.by_token(token)
        if found is None:
            raise Refused(401, "unknown webhook URL token (a rotated token stops working; "
                               "`jira-sync webhook url --rotate` makes a new one)")
        matched = [found]
    else:
        header = headers.get(SIGNATURE_HEADER)
        if not header:
            raise Refused(401, f"{SIGNATURE_HEADER} is missing: set a secret on the Jira "
                               f"webhook and as the integration's webhook secret; "
                               f"{UNSIGNED_HINT}")
        matched = targets.signed(header, body)
        if not matched:
            raise Refused(401, f"{SIGNATURE_HEADER} does not verify with any integration's "
                               f"webhook secret (expected sha256=<hex HMAC-SHA256 of the raw "
                               f"body>); {UNSIGNED_HINT}")
    payload = _json(body)
    matched = _attributed(matched, payload)
    admitted = [target for target in matched if target.admits(address)]
    if not admitted:
        raise Refused(403, f"address {address or 'unknown'} may not deliver this integration's "
                           "webhooks (JIRA_WEBHOOK_IP_ALLOWLIST)")
    if not isinstance(payload, dict):
        raise Refused(400, "the body is not a JSON object")
    try:
        ids = writer.store(inbox_rows(admitted, payload, headers, body))
    except RecursionError:  # parsed, but too deep to store: no Jira body looks like that
        raise Refused(400, "the body is nested too deeply") from None
    return Accepted(ids, len(admitted))


def _json(body: bytes) -> Any:
    """The parsed body, or None when it is not JSON (NaN and Infinity are not JSON either)."""
    try:
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _attributed(targets: list[Target], payload: Any) -> list[Target]:
    """Several integrations may share one Jira site and secret: the delivery belongs to
    those whose base URL has the host its ``self`` links name, or to all of them when none
    has (a Server's ``self`` may name an internal host)."""
    if len(targets) < 2:
        return targets
    host = _self_host(payload)
    named = [target for target in targets if host is not None and target.host == host]
    return named or targets


def _self_host(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for part in ("issue", "comment", "user"):
        section = payload.get(part)
        link = section.get("self") if isinstance(section, dict) else None
        if isinstance(link, str):
            try:
                return urlsplit(link).hostname
            except ValueError:
                return None
    return None


def inbox_rows(targets: Sequence[Target], payload: dict[str, Any], headers: Mapping[str, str],
               body: bytes) -> list[dict[str, Any]]:
    """One inbox row per integration, keyed on Jira's delivery identifier (else the body's
    hash), which stays the same across Jira's retries."""
    identifier = (headers.get(IDENTIFIER_HEADER) or "").strip()
    if not _PRINTABLE.fullmatch(identifier):
        # Jira's identifiers are UUIDs; anything else (too long, control characters) is kept
        # as its hash, and no identifier at all as the body's.
        source = identifier.encode("utf-8", "replace") if identifier else body
        identifier = "sha256:" + hashlib.sha256(source).hexdigest()
    kept = {name: headers[name][:MAX_IDENTIFIER] for name in KEPT_HEADERS if headers.get(name)}
    event = payload.get("webhookEvent")
    now = utcnow()
    return [dict(source=JIRA, dedupe_key=f"{target.integration_id}:{identifier}",
                 tenant=target.tenant, integration_id=target.integration_id,
                 event_type=event[:64] if isinstance(event, str) else None,
                 payload_json=_document(payload, body),
                 headers_json=json.dumps(storable(kept)),
                 state=RECEIVED, attempts=0, received_at=now)
            for target in targets]


def _document(payload: dict[str, Any], body: bytes) -> str:
    """The body as the inbox's JSON column stores it: as it came, since ``payload`` was parsed
    from it (encoding it again would cost the receiver more than storing it), unless it may
    not be stored as it is; then as Python parsed it, cleaned (an infinity as text)."""
    if _STORE_AS_PARSED.search(body):
        return json.dumps(storable(payload))
    return body.decode("utf-8")


def insert_new(connection: Connection, rows: Sequence[dict[str, Any]]
               ) -> list[tuple[int, str]]:
    """Insert the rows not stored yet; ``(id, dedupe_key)`` of each new one. Their payload
    and headers come as JSON text (``payload_json``, ``headers_json``), which the columns
    take as it is.

    One statement for any number of rows, its parameters sent as a list (the compiled
    statement is cached, where a VALUES list of the batch's length would be compiled anew)."""
    statement = _insert_new_statement(connection.dialect.name)
    return [(row.id, row.dedupe_key) for row in connection.execute(statement, list(rows))]


@functools.cache
def _insert_new_statement(dialect: str) -> Any:
    """Built once per dialect: building it cost the receiver as much as running it."""
    return upsert.insert(dialect, InboxEvent.__table__).values(
        payload=bindparam("payload_json", type_=Text()),
        headers=bindparam("headers_json", type_=Text())).on_conflict_do_nothing(
        index_elements=["source", "dedupe_key"]).returning(InboxEvent.id, InboxEvent.dedupe_key)


def release_held(session: Session) -> list[int]:
    """Deliveries an earlier version held for a disabled integration, back in the queue once
    it is enabled (they are folded then; today a disabled integration folds its deliveries
    and holds the flushes)."""
    enabled = select(Integration.id).where(Integration.enabled.is_(True))
    ids = list(session.scalars(select(InboxEvent.id).where(
        InboxEvent.source == JIRA, InboxEvent.state == HELD,
        InboxEvent.integration_id.in_(enabled)).order_by(InboxEvent.id).limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)))
    if ids:
        session.execute(update(InboxEvent).where(InboxEvent.id.in_(ids))
                        .values(state=RECEIVED).execution_options(synchronize_session=False))
    return ids


def unclaimed(session: Session, older_than_seconds: float) -> list[int]:
    """Stored deliveries no worker took (the broker was down when they came, or a message
    was lost), oldest first."""
    before = utcnow() - timedelta(seconds=older_than_seconds)
    return list(session.scalars(select(InboxEvent.id).where(
        InboxEvent.source == JIRA, InboxEvent.state == RECEIVED,
        InboxEvent.received_at < before).order_by(InboxEvent.id).limit(SWEEP_BATCH)))
