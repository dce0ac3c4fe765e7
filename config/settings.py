"""Every environment variable the service reads, parsed and validated in one place.

Processes call :func:`load` once at start. A wrong value stops the process with a
one-line :class:`SettingsError` that names the variable, instead of surfacing later as
an obscure failure inside a worker.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from kombu.transport import resolve_transport
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEPLOYMENTS = ("cloud", "server")
LOG_FORMATS = ("text", "json")
AUTH_METHODS = ("basic", "pat", "oauth2")
# The integration's secrets (sealed at rest) and the bootstrap variables that carry them.
SECRET_VARIABLES = {
    "api_token": "JIRA_API_TOKEN",
    "pat": "JIRA_PAT",
    "oauth_client_secret": "JIRA_OAUTH_CLIENT_SECRET",
    "oauth_refresh_token": "JIRA_OAUTH_REFRESH_TOKEN",
    "webhook_secret": "JIRA_WEBHOOK_SECRET",
    "qalita_api_token": "QALITA_API_TOKEN",
}
# Schemes people copy from their provider; both mean Postgres through psycopg2 here.
BARE_POSTGRES_SCHEMES = ("postgresql", "postgres")
TENANT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62})\Z", re.IGNORECASE)


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message is one line naming the variable."""


def var_dir() -> Path:
    """Where embedded defaults (SQLite database, demo broker, demo key) live: ``./var``."""
    return Path.cwd() / "var"


def default_database_url() -> str:
    return f"sqlite:///{var_dir() / 'jira-sync.db'}"


@dataclass(frozen=True)
class JiraBootstrap:
    """The one integration described by ``JIRA_*`` variables, upserted at start."""

    tenant: str
    base_url: str
    deployment: str
    auth: str
    project_key: str | None
    issue_type: str | None
    email: str | None
    cloud_id: str | None
    oauth_client_id: str | None
    qalita_api_url: str | None
    secrets: dict[str, str] = field(repr=False)
    # None: the environment leaves the allowlist to what is stored.
    ip_allowlist: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SyncTimings:
    """Every interval of the outbound sync, so tests and the demo can shrink them to seconds.

    The lease outlives any one flush; a lost flush is found by the sweep once its lease or due
    time is ``sweep_seconds`` past; a create is assumed searchable ``index_lag_seconds`` after
    it was attempted (Jira's search index lags fresh issues). While the intake queue holds
    more than a batch of events, a flush waits for them, for at most ``backlog_wait_seconds``.
    """

    sweep_seconds: float = 30.0
    lease_seconds: float = 60.0
    index_lag_seconds: float = 30.0
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 600.0
    max_retry_age_seconds: float = 86400.0
    jira_rate_limit: float = 10.0
    backlog_wait_seconds: float = 60.0
    # How long a value jira-sync wrote waits for its echo: Jira retries a delivery for about
    # half an hour, so a late echo must still be recognised as one.
    echo_ttl_seconds: float = 3600.0
    reconcile_seconds: float = 300.0


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    broker_url: str = field(repr=False)
    secret_keys: tuple[str, ...] = field(repr=False)
    admin_token: str | None = field(repr=False)
    web_host: str
    web_port: int
    web_workers: int
    web_threads: int
    worker_concurrency: int
    # 0: the worker serves no metrics.
    worker_metrics_port: int
    max_body_bytes: int
    webhook_max_bytes: int
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    public_url: str
    log_level: str
    log_format: str
    debounce_seconds: float
    mapping_file: Path | None
    qalita_events_secret: str | None = field(repr=False)
    heartbeat_seconds: float
    beat_lock_seconds: float
    retention_days: int
    tenant: str
    jira: JiraBootstrap | None
    sync: SyncTimings = field(default_factory=SyncTimings)

    def require_secret_keys(self) -> tuple[str, ...]:
        """The Fernet keys, for processes that read or write credentials."""
        if not self.secret_keys:
            raise SettingsError(
                "JIRA_SYNC_SECRET_KEY: required (generate one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`)'
            )
        return self.secret_keys

    @property
    def broker_is_redis(self) -> bool:
        return urlsplit(self.broker_url).scheme in ("redis", "rediss")


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (_get(env, name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _get(env, name)
    return None if raw is None else http_url(raw, name)


def http_url(raw: str, name: str) -> str:
    """An http(s) base URL as users paste it (a trailing slash is dropped); the admin API
    checks its URL fields with this too, so both accept exactly the same forms."""
    raw = raw.strip()
    try:
        parts = urlsplit(raw)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise SettingsError(f"{name}: expected an http(s) URL with a host, got {raw!r}")
    return raw.rstrip("/")


def _database_url(env: Mapping[str, str]) -> str:
    raw = _get(env, "JIRA_SYNC_DATABASE_URL") or default_database_url()
    try:
        url = make_url(raw)
        if url.drivername in BARE_POSTGRES_SCHEMES:
            # What providers hand out (and Heroku's postgres://) names no driver; SQLAlchemy
            # would read it as psycopg 3, which is not installed: take the one that is.
            url = url.set(drivername="postgresql+psycopg2")
        dialect = url.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # The raw value may carry a password: name the variable, never echo it.
        raise SettingsError(f"JIRA_SYNC_DATABASE_URL: not a usable SQLAlchemy URL ({reason})") \
            from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise SettingsError(
            f"JIRA_SYNC_DATABASE_URL: the driver for {url.drivername!r} is not installed "
            f"({exc.name or exc}); for Postgres use postgresql://... (psycopg2)") from None
    return url.render_as_string(hide_password=False)


def _broker_url(env: Mapping[str, str]) -> str:
    raw = _get(env, "JIRA_SYNC_BROKER_URL") or DEFAULT_BROKER_URL
    scheme = urlsplit(raw).scheme
    if not scheme:
        raise SettingsError("JIRA_SYNC_BROKER_URL: expected a URL such as redis://host:6379/0")
    try:
        resolve_transport(scheme.split("+")[0])
    except KeyError:
        raise SettingsError(f"JIRA_SYNC_BROKER_URL: unknown transport {scheme!r}") from None
    return raw


def networks(raw: str, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128), as operators write them."""
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {part!r} is not an IP address or CIDR range "
                                "(e.g. 10.0.0.0/8)") from None
    return tuple(found)


def _secret_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _get(env, "JIRA_SYNC_SECRET_KEY")
    if raw is None:
        return ()
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise SettingsError(
                f"JIRA_SYNC_SECRET_KEY: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def _mapping_file(env: Mapping[str, str]) -> Path | None:
    raw = _get(env, "JIRA_SYNC_MAPPING_FILE")
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_file():
        raise SettingsError(f"JIRA_SYNC_MAPPING_FILE: no such file {raw!r}")
    return path


def _tenant(env: Mapping[str, str]) -> str:
    tenant = _get(env, "JIRA_SYNC_TENANT") or "default"
    if not TENANT_RE.match(tenant):
        raise SettingsError(
            f"JIRA_SYNC_TENANT: expected a slug (letters, digits, '-', '_'), got {tenant!r}"
        )
    return tenant


def _jira(env: Mapping[str, str], tenant: str) -> JiraBootstrap | None:
    base_url = _http_url(env, "JIRA_BASE_URL")
    if base_url is None:
        return None
    email = _get(env, "JIRA_EMAIL")
    default_auth = "pat" if _get(env, "JIRA_PAT") and not email else "basic"
    auth = _choice(env, "JIRA_AUTH", AUTH_METHODS, default_auth)
    required = {
        "basic": ("JIRA_EMAIL", "JIRA_API_TOKEN"),
        "pat": ("JIRA_PAT",),
        "oauth2": ("JIRA_OAUTH_CLIENT_ID", "JIRA_OAUTH_CLIENT_SECRET",
                   "JIRA_OAUTH_REFRESH_TOKEN", "JIRA_CLOUD_ID"),
    }[auth]
    for name in required:
        if _get(env, name) is None:
            raise SettingsError(f"{name}: required when JIRA_AUTH is {auth}")
    secrets = {key: value for key, name in SECRET_VARIABLES.items()
               if (value := _get(env, name))}
    allowlist = _get(env, "JIRA_WEBHOOK_IP_ALLOWLIST")
    return JiraBootstrap(
        tenant=tenant,
        base_url=base_url,
        deployment=_choice(env, "JIRA_DEPLOYMENT", DEPLOYMENTS, "cloud"),
        auth=auth,
        project_key=_get(env, "JIRA_PROJECT_KEY"),
        issue_type=_get(env, "JIRA_ISSUE_TYPE"),
        email=email,
        cloud_id=_get(env, "JIRA_CLOUD_ID"),
        oauth_client_id=_get(env, "JIRA_OAUTH_CLIENT_ID"),
        qalita_api_url=_http_url(env, "QALITA_API_URL"),
        secrets=secrets,
        ip_allowlist=None if allowlist is None else tuple(
            str(n) for n in networks(allowlist, "JIRA_WEBHOOK_IP_ALLOWLIST")),
    )


def _url_host(host: str) -> str:
    """A listening address as it goes into a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raises :class:`SettingsError` on the first bad value."""
    env = os.environ if env is None else env
    log_level = (_get(env, "JIRA_SYNC_LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"JIRA_SYNC_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, "
                            f"got {log_level!r}")
    tenant = _tenant(env)
    web_host = _get(env, "JIRA_SYNC_WEB_HOST") or "127.0.0.1"
    web_port = _int(env, "JIRA_SYNC_WEB_PORT", 8080, 1, 65535)
    return Settings(
        database_url=_database_url(env),
        broker_url=_broker_url(env),
        secret_keys=_secret_keys(env),
        admin_token=_get(env, "JIRA_SYNC_ADMIN_TOKEN"),
        web_host=web_host,
        web_port=web_port,
        web_workers=_int(env, "JIRA_SYNC_WEB_WORKERS", 2, 1, 64),
        web_threads=_int(env, "JIRA_SYNC_WEB_THREADS", 16, 1, 256),
        worker_concurrency=_int(env, "JIRA_SYNC_WORKER_CONCURRENCY", 4, 1, 256),
        worker_metrics_port=_int(env, "JIRA_SYNC_WORKER_METRICS_PORT", 9808, 0, 65535),
        max_body_bytes=_int(env, "JIRA_SYNC_MAX_BODY_BYTES", 10 * 1024 * 1024, 1024, 2**30),
        webhook_max_bytes=_int(env, "JIRA_SYNC_WEBHOOK_MAX_BYTES", 2 * 1024 * 1024, 1024,
                               2**30),
        trusted_proxies=networks(_get(env, "JIRA_SYNC_TRUSTED_PROXIES") or "",
                                 "JIRA_SYNC_TRUSTED_PROXIES"),
        public_url=_http_url(env, "JIRA_SYNC_PUBLIC_URL")
        or f"http://{_url_host(web_host)}:{web_port}",
        log_level=log_level,
        log_format=_choice(env, "JIRA_SYNC_LOG_FORMAT", LOG_FORMATS, "text"),
        debounce_seconds=_float(env, "JIRA_SYNC_DEBOUNCE_SECONDS", 2.0, 0.0, 3600.0),
        mapping_file=_mapping_file(env),
        qalita_events_secret=_get(env, "QALITA_EVENTS_SECRET"),
        heartbeat_seconds=_float(env, "JIRA_SYNC_HEARTBEAT_SECONDS", 60.0, 0.5, 86400.0),
        beat_lock_seconds=_float(env, "JIRA_SYNC_BEAT_LOCK_SECONDS", 30.0, 1.0, 3600.0),
        retention_days=_int(env, "JIRA_SYNC_RETENTION_DAYS", 30, 1, 3650),
        tenant=tenant,
        jira=_jira(env, tenant),
        sync=SyncTimings(
            sweep_seconds=_float(env, "JIRA_SYNC_SWEEP_SECONDS", 30.0, 0.2, 3600.0),
            lease_seconds=_float(env, "JIRA_SYNC_LEASE_SECONDS", 60.0, 1.0, 3600.0),
            index_lag_seconds=_float(env, "JIRA_SYNC_INDEX_LAG_SECONDS", 30.0, 0.0, 3600.0),
            backoff_base_seconds=_float(env, "JIRA_SYNC_BACKOFF_BASE_SECONDS", 2.0, 0.05, 3600.0),
            backoff_cap_seconds=_float(env, "JIRA_SYNC_BACKOFF_CAP_SECONDS", 600.0, 0.1, 900.0),
            max_retry_age_seconds=_float(env, "JIRA_SYNC_MAX_RETRY_AGE_SECONDS", 86400.0, 1.0,
                                         30 * 86400.0),
            jira_rate_limit=_float(env, "JIRA_SYNC_JIRA_RATE_LIMIT", 10.0, 0.1, 10000.0),
            backlog_wait_seconds=_float(env, "JIRA_SYNC_BACKLOG_WAIT_SECONDS", 60.0, 0.0,
                                        900.0),
            echo_ttl_seconds=_float(env, "JIRA_SYNC_ECHO_TTL_SECONDS", 3600.0, 1.0,
                                    7 * 86400.0),
            reconcile_seconds=_float(env, "JIRA_SYNC_RECONCILE_SECONDS", 300.0, 1.0, 86400.0),
        ),
    )


def secret_values(settings: Settings) -> list[str]:
    """Every secret the process knows, for the log redaction filter."""
    values = [*settings.secret_keys, settings.admin_token, settings.qalita_events_secret]
    if settings.jira:
        values.extend(settings.jira.secrets.values())
    return [v for v in values if v]
