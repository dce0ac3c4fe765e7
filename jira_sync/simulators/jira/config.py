"""What the simulated Jira site contains and how it misbehaves.

The defaults are part of the external contract (CONTRACT.md §7): outside checks start the
simulator by its command line alone and expect exactly these projects, workflows and accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TO_DO, IN_PROGRESS, DONE = "10000", "3", "10001"


@dataclass(frozen=True)
class StatusDef:
    id: str
    name: str
    category: str  # "new" | "indeterminate" | "done": the only keys real payloads carry
    description: str = ""


@dataclass(frozen=True)
class TransitionDef:
    """A workflow edge. ``sources`` empty means a global transition (available from anywhere)."""

    id: str
    name: str
    to: str
    sources: tuple[str, ...] = ()
    screen: tuple[str, ...] = ()  # field ids on the transition screen, e.g. ("resolution",)
    required: tuple[str, ...] = ()  # the subset of ``screen`` that must be given


@dataclass(frozen=True)
class FieldDef:
    """A custom field on a project's screens.

    ``kind`` is "string" (single line, 255 chars), "textarea" (rich text: ADF on v3, wiki on
    v2), "option" (one of ``options``) or "number".
    """

    id: str
    name: str
    kind: str = "string"
    required: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectDef:
    key: str
    name: str
    id: str
    workflow: tuple[TransitionDef, ...]
    issue_types: tuple[str, ...] = ("Bug", "Task")
    components: tuple[str, ...] = ()
    fields: tuple[FieldDef, ...] = ()
    initial_status: str = TO_DO


@dataclass(frozen=True)
class UserDef:
    """A person who can log in: Basic ``email:api_token`` anywhere, Bearer ``pat`` on server."""

    name: str  # server username and key
    display_name: str
    email: str
    account_id: str  # Cloud's opaque id
    api_token: str
    pat: str


DEFAULT_STATUSES = (
    StatusDef(TO_DO, "To Do", "new"),
    StatusDef(IN_PROGRESS, "In Progress", "indeterminate",
              "This issue is being actively worked on at the moment by the assignee."),
    StatusDef(DONE, "Done", "done"),
)

# Done is two hops from To Do: a planner that only looks one transition ahead gets stuck here.
DATA_WORKFLOW = (
    TransitionDef("21", "Start Progress", IN_PROGRESS, (TO_DO,)),
    TransitionDef("31", "Done", DONE, (IN_PROGRESS,)),
    TransitionDef("41", "Reopen", TO_DO, (DONE,)),
)

# Closing needs a resolution on the transition screen, as many company-managed projects do.
OPS_WORKFLOW = (
    TransitionDef("21", "Start Progress", IN_PROGRESS, (TO_DO,)),
    TransitionDef("31", "Done", DONE, (IN_PROGRESS,), ("resolution",), ("resolution",)),
    TransitionDef("51", "Close", DONE, (TO_DO,), ("resolution",), ("resolution",)),
    TransitionDef("41", "Reopen", TO_DO, (DONE,)),
)


def default_projects() -> tuple[ProjectDef, ...]:
    return (
        ProjectDef("DATA", "Data Quality", "10000", DATA_WORKFLOW,
                   components=("billing", "ingestion")),
        ProjectDef("OPS", "Operations", "10001", OPS_WORKFLOW),
    )


def default_users() -> tuple[UserDef, ...]:
    return (
        UserDef("ana", "Ana", "ana@example.com", "712020:ana-0001", "tok-ana", "pat-ana"),
        UserDef("bo", "Bo", "bo@example.com", "712020:bo-0002", "tok-bo", "pat-bo"),
    )


DEFAULT_WEBHOOK_EVENTS = (
    "jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
    "comment_created", "comment_updated", "comment_deleted",
)

# Settings /_sim/config may change while the simulator runs.
RUNTIME_SETTINGS = (
    "fail_rate", "rate_limit", "advertise_rate_limit", "issue_write_limits", "index_lag_ms",
    "latency_ms", "reply_delay_ms", "webhook_url", "webhook_secret", "webhook_order",
    "webhook_retry_delay_ms", "webhook_events", "comment_issue_updated", "webhook_drop_rate",
    "oauth_client_id", "oauth_token", "quota_points", "quota_scope",
)
WEBHOOK_ORDERS = ("inorder", "shuffle", "duplicate")
QUOTA_SCOPES = ("global", "tenant")
# Cloud's per-issue write limit: (writes, seconds) windows, every one enforced at once.
ISSUE_WRITE_LIMITS = ((20, 2.0), (100, 30.0))


@dataclass
class SimulatorConfig:
    deployment: str = "cloud"  # "cloud" -> /rest/api/3 (ADF); "server" -> /rest/api/2 (wiki)
    credentials: tuple[str, str] = ("svc@example.com", "tok-123")  # the service account
    pat: str = "pat-123"  # the service account's Bearer token, server only
    # Requests per second of each endpoint's (Cloud) or each user's (Server) token bucket;
    # it also turns on Cloud's per-issue write limit. None: no request-rate limit at all.
    rate_limit: float | None = None
    # Off: limits are enforced but answers hide them (no X-RateLimit-Limit/-Remaining, nor
    # Data Center's fill rate), for a client that must discover the limit from its 429s.
    advertise_rate_limit: bool = True
    issue_write_limits: tuple[tuple[int, float], ...] = ISSUE_WRITE_LIMITS  # () switches off
    # OAuth (3LO) app traffic, Cloud only: a call bearing ``oauth_token`` acts as the service
    # account for the app ``oauth_client_id`` and spends the app's hourly points quota
    # (``quota_points``, in one pool for every site of the app, or one per site).
    oauth_client_id: str = "client-123"
    oauth_token: str | None = None  # None: no OAuth traffic, so no quota
    quota_points: int = 65000  # Tier 1, the global pool's default
    quota_scope: str = "global"  # "global" | "tenant"
    fail_rate: float = 0.0  # fraction of /rest calls that fail, half of them after applying
    index_lag_ms: int = 1000  # a new issue becomes searchable this long after its creation
    latency_ms: int = 0
    # Writes hold their answer this long after applying: the window in which a client that
    # dies has changed Jira without knowing it (crash-recovery tests aim a kill into it).
    reply_delay_ms: int = 0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_order: str = "inorder"  # "inorder" | "shuffle" | "duplicate"
    # Fraction of deliveries never sent: the loss a reconciliation sweep exists to repair.
    webhook_drop_rate: float = 0.0
    webhook_retry_delay_ms: int = 1000  # real Jira waits 5-15 minutes
    webhook_timeout_ms: int = 10000
    webhook_shuffle_window_ms: int = 200  # deliveries queued within this window are shuffled
    webhook_events: tuple[str, ...] = DEFAULT_WEBHOOK_EVENTS  # what the webhook subscribes to
    # Jira also reports comment activity as jira:issue_updated (issue_commented, ...).
    comment_issue_updated: bool = True
    seed: int | None = None
    projects: tuple[ProjectDef, ...] = field(default_factory=default_projects)
    users: tuple[UserDef, ...] = field(default_factory=default_users)
    statuses: tuple[StatusDef, ...] = DEFAULT_STATUSES

    def __post_init__(self) -> None:
        if self.deployment not in ("cloud", "server"):
            raise ValueError(f"deployment must be 'cloud' or 'server', not {self.deployment!r}")
        validate_runtime(self)

    @property
    def api_version(self) -> str:
        return "3" if self.deployment == "cloud" else "2"


def validate_runtime(config: SimulatorConfig) -> None:
    """Refuse settings that would make the simulator behave unlike any Jira."""
    for name in ("fail_rate", "webhook_drop_rate"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if config.rate_limit is not None and config.rate_limit <= 0:
        raise ValueError("rate_limit must be positive (or None for unlimited)")
    if not all(isinstance(count, int) and count >= 1 and seconds > 0
               for count, seconds in config.issue_write_limits):
        raise ValueError("issue_write_limits: [writes, seconds] pairs, each positive")
    if config.quota_scope not in QUOTA_SCOPES:
        raise ValueError(f"quota_scope must be one of {', '.join(QUOTA_SCOPES)}")
    if config.quota_points < 1:
        raise ValueError("quota_points must be positive")
    if config.oauth_token is not None:
        if config.deployment != "cloud":
            raise ValueError("oauth_token is Cloud only (Server takes PATs as Bearer tokens)")
        if not config.oauth_token.strip():
            raise ValueError("oauth_token must not be empty (None for no OAuth traffic)")
    if config.webhook_order not in WEBHOOK_ORDERS:
        raise ValueError(f"webhook_order must be one of {', '.join(WEBHOOK_ORDERS)}")
    for name in ("index_lag_ms", "latency_ms", "reply_delay_ms", "webhook_retry_delay_ms"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must not be negative")
