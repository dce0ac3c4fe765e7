"""The mapping settings: how a QALITA issue becomes a Jira issue, and where it goes.

Three layers are merged, each validated on its own so an error names the layer that made it:
the packaged ``config/mapping.yaml`` (the documented defaults), the operator's file
(``JIRA_SYNC_MAPPING_FILE``) and the integration's overrides stored in the database. A typo
or a wrong type stops the load with one line naming the key path, because a silently ignored
``prioritys:`` would only show up weeks later as issues without a priority.

Merging is one level deep: settings that are dictionaries (``priorities``, ``statuses``...)
merge entry by entry, and ``null`` removes an entry an earlier layer set; every other value,
lists included (``labels``, ``routing``), is replaced whole. Per-project sections merge the
same way on top of the global settings.
"""

from __future__ import annotations

import string
from collections import abc
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

import config

if TYPE_CHECKING:
    from jira_sync.events.qalita_event import IssueSnapshot

SEVERITIES = ("info", "low", "medium", "high", "critical")
MAPPED_STATUSES = ("open", "active", "resolved")
IGNORED_STATUSES = ("muted", "ignored")
STATUS_CATEGORIES = ("new", "indeterminate", "done")
ON_JIRA_DELETE = ("recreate", "tombstone")
ON_QALITA_DELETE = ("close", "comment", "nothing")
INBOUND_FLAGS = ("status", "assignee", "title", "description", "labels", "comments", "ignored")
# QALITA's own integration guide: QALITA is the source of truth for title and description,
# and assignees go one way unless two-way is enabled.
INBOUND_DEFAULTS = {"status": True, "ignored": True, "labels": True, "comments": True,
                    "assignee": False, "title": False, "description": False}
QALITA_STATUSES = (*MAPPED_STATUSES, *IGNORED_STATUSES)
# Who wins when both sides changed a field since the link's last sync: QALITA, or whichever
# change happened last. Labels have no entry: each side's additions and removals both apply.
CONFLICT_FIELDS = ("status", "assignee", "title", "description")
CONFLICT_POLICIES = ("qalita", "latest")
CONFLICT_DEFAULTS = {"status": "latest", "assignee": "latest", "title": "qalita",
                     "description": "qalita"}
TITLE_PLACEHOLDERS = ("id", "title", "dataset", "rule", "metric", "rule_or_metric", "domain",
                      "severity")

_ROOT = "mapping"


class MappingError(ValueError):
    """The mapping configuration is wrong; one line that starts with the key path."""

    def __init__(self, path: str, problem: str, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        where = f" (in {source})" if source else ""
        super().__init__(f"{path}: {problem}{where}")


def _proxy(values: abc.Mapping[str, Any]) -> abc.Mapping[str, Any]:
    # A copy behind a read-only view: one Mapping is shared by every flush of a project.
    return MappingProxyType(dict(values))


def _strings(value: str | abc.Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class RouteRule:
    """Sends the QALITA issues it matches to another project (and maybe issue type).

    Every condition given must hold; a condition lists alternatives, any of which will do
    (for ``tag``: any of the issue's tags). A rule without conditions matches everything.
    Owners compare case-insensitively because e-mail addresses are typed by people.
    """

    project: str
    issue_type: str | None = None
    domain: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("domain", "tag", "severity"):
            object.__setattr__(self, name, _strings(getattr(self, name)))
        object.__setattr__(self, "owner", tuple(o.lower() for o in _strings(self.owner)))

    def matches(self, snapshot: IssueSnapshot) -> bool:
        owner = snapshot.owner.email if snapshot.owner and snapshot.owner.email else None
        return all((
            not self.domain or snapshot.domain in self.domain,
            not self.tag or any(tag in self.tag for tag in snapshot.tags or ()),
            not self.severity or snapshot.severity in self.severity,
            not self.owner or (owner is not None and owner.lower() in self.owner),
        ))


@dataclass(frozen=True)
class Route:
    """Where a new Jira issue is created."""

    project_key: str | None
    issue_type: str | None


@dataclass(frozen=True)
class Mapping:
    """The settings that apply to one Jira project. ``Mapping()`` is the packaged default.

    Dictionaries are stored as read-only views and lists as tuples, so a mapping can be
    shared between flushes without one of them changing it for the others.
    """

    title_template: str = "[QALITA] {dataset}: {rule_or_metric}"
    labels: tuple[str, ...] = ("qalita",)
    severity_label: str | None = "severity:{severity}"
    domain_label: str | None = "domain:{domain}"
    tag_labels: bool = False
    ignored_label: str = "ignored"
    priorities: abc.Mapping[str, str] = field(default_factory=lambda: {
        "critical": "Highest", "high": "High", "medium": "Medium", "low": "Low",
        "info": "Lowest"})
    components_by_domain: abc.Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    components_by_owner: abc.Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    field_defaults: abc.Mapping[str, Any] = field(default_factory=dict)
    statuses: abc.Mapping[str, str] = field(default_factory=lambda: {
        "open": "new", "active": "indeterminate", "resolved": "done"})
    routing: tuple[RouteRule, ...] = ()
    comment_prefix: str = "QALITA comment by {author}:"
    on_jira_delete: str = "recreate"
    on_qalita_delete: str = "close"
    inbound: abc.Mapping[str, bool] = field(default_factory=lambda: dict(INBOUND_DEFAULTS))
    # Jira status name -> QALITA status, before the status category decides.
    inbound_statuses: abc.Mapping[str, str] = field(default_factory=dict)
    conflicts: abc.Mapping[str, str] = field(default_factory=lambda: dict(CONFLICT_DEFAULTS))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "labels", _strings(self.labels))
        set_(self, "routing", tuple(self.routing))
        set_(self, "priorities", _proxy(self.priorities))
        set_(self, "components_by_domain", _proxy(
            {key: _strings(value) for key, value in self.components_by_domain.items()}))
        set_(self, "components_by_owner", _proxy(
            {key.lower(): _strings(value) for key, value in self.components_by_owner.items()}))
        set_(self, "field_defaults", _proxy(self.field_defaults))
        set_(self, "statuses", _proxy(self.statuses))
        set_(self, "inbound", _proxy({**INBOUND_DEFAULTS, **self.inbound}))
        set_(self, "inbound_statuses", _proxy(self.inbound_statuses))
        set_(self, "conflicts", _proxy({**CONFLICT_DEFAULTS, **self.conflicts}))


class MappingSet:
    """The global mapping, each project's merged mapping, and the routing rules."""

    def __init__(self, default: Mapping, projects: abc.Mapping[str, Mapping]) -> None:
        self.default = default
        self.projects = _proxy({key.upper(): value for key, value in projects.items()})

    @property
    def routing(self) -> tuple[RouteRule, ...]:
        return self.default.routing

    def for_project(self, key: str | None) -> Mapping:
        """Project keys compare upper-cased, as Jira stores them whatever was typed."""
        if key is None:
            return self.default
        return self.projects.get(key.upper(), self.default)

    def route(self, snapshot: IssueSnapshot, default_project: str | None,
              default_issue_type: str | None) -> Route:
        for rule in self.routing:
            if rule.matches(snapshot):
                return Route(rule.project, rule.issue_type or default_issue_type)
        return Route(default_project, default_issue_type)


# -- loading ---------------------------------------------------------------------------------

def packaged_mapping_file() -> Path:
    return Path(config.__file__).parent / "mapping.yaml"


def load_mapping(path: Path | str | None = None,
                 overrides: abc.Mapping[str, Any] | None = None) -> MappingSet:
    """The packaged defaults, then the file at ``path``, then ``overrides``, merged."""
    layers = [_packaged_layer()]
    if path is not None:
        layers.append(_validate(_read(Path(path)), f"mapping file {path}"))
    if overrides:
        layers.append(_validate(dict(overrides), "the integration's mapping overrides"))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge_layer(merged, layer)
    projects = merged.pop("projects", {})
    default = _build(merged)
    built = {key: _build(_merge_settings(merged, settings)) for key, settings in projects.items()}
    return MappingSet(default, built)


@cache
def _packaged_layer() -> dict[str, Any]:
    source = packaged_mapping_file()
    return _validate(_read(source), f"packaged {source.name}")


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(_ROOT, f"cannot read {path}: {_one_line(str(exc))}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(_ROOT, f"{path} is not valid YAML: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _merge_layer(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    merged = _merge_settings(base, layer)
    projects = dict(base.get("projects", {}))
    for key, settings in layer.get("projects", {}).items():
        projects[key] = _merge_settings(projects.get(key, {}), settings)
    if projects:
        merged["projects"] = projects
    return merged


def _merge_settings(base: abc.Mapping[str, Any], layer: abc.Mapping[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in base.items() if key != "projects"}
    for key, value in layer.items():
        if key == "projects":
            continue
        if key in _DICT_SETTINGS and key in merged:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _build(settings: abc.Mapping[str, Any]) -> Mapping:
    values = {}
    for key, value in settings.items():
        if key in _DICT_SETTINGS:
            value = {entry: v for entry, v in value.items() if v is not None}
        values[key] = value
    return Mapping(**values)


# -- validation ------------------------------------------------------------------------------
# Each checker takes the value and its key path and returns the normalized value; the layer
# keeps ``None`` entries of dictionary settings so a later merge can remove an entry.

def _validate(raw: Any, source: str) -> dict[str, Any]:
    try:
        if raw is None:
            return {}
        document = _dict(raw, _ROOT)
        layer = _settings(document, _ROOT, top_level=True)
        if "projects" in document:
            layer["projects"] = _projects(document["projects"], f"{_ROOT}.projects")
        return layer
    except MappingError as error:
        raise MappingError(error.path, error.problem, source) from None


def _settings(document: dict[str, Any], path: str, *, top_level: bool) -> dict[str, Any]:
    checks = {**_CHECKS, "routing": _routing} if top_level else _CHECKS
    known = (*checks, "projects") if top_level else tuple(checks)
    layer = {}
    for key, value in document.items():
        if not top_level and key in _GLOBAL_ONLY:
            raise MappingError(f"{path}.{key}", "only allowed at the top level")
        if key not in known:
            raise MappingError(f"{path}.{key}", _unknown(known))
        if key in checks:
            layer[key] = checks[key](value, f"{path}.{key}")
    return layer


def _unknown(known: abc.Iterable[str]) -> str:
    return f"unknown key (known keys: {', '.join(sorted(known))})"


def _projects(value: Any, path: str) -> dict[str, dict[str, Any]]:
    projects: dict[str, dict[str, Any]] = {}
    for key, settings in _dict(value, path).items():
        if not key.strip() or key != key.strip():
            raise MappingError(f"{path}.{key}", "a project key cannot be empty or padded")
        if key.upper() in projects:
            raise MappingError(f"{path}.{key}", "the same project is configured twice")
        where = f"{path}.{key}"
        document = _dict(settings, where) if settings is not None else {}
        projects[key.upper()] = _settings(document, where, top_level=False)
    return projects


def _dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        hint = " (write {} for none)" if value is None else ""
        raise MappingError(path, f"expected a mapping of keys to values, got {_kind(value)}{hint}")
    for key in value:
        if not isinstance(key, str):
            # YAML 1.1 reads bare NO, yes, off, 1.0 as booleans and numbers: make that visible.
            raise MappingError(path, f"keys must be strings, got {key!r} (quote it)")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise MappingError(path, f"expected a string, got {_kind(value)}")
    return value


def _name(value: Any, path: str) -> str:
    if not _string(value, path).strip():
        raise MappingError(path, "expected a non-empty string")
    return value.strip()


def _optional_name(value: Any, path: str) -> str | None:
    return None if value is None else _name(value, path)


def _names(value: Any, path: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings, as YAML lets people write one or several."""
    if isinstance(value, str):
        return (_name(value, path),)
    if not isinstance(value, list) or not value:
        raise MappingError(path, f"expected a string or a non-empty list of strings, "
                                 f"got {_kind(value)}")
    return tuple(_name(item, f"{path}[{index}]") for index, item in enumerate(value))


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise MappingError(path, f"expected true or false, got {_kind(value)}")
    return value


def _choice(choices: tuple[str, ...]) -> abc.Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if value not in choices:
            raise MappingError(path, f"expected one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def _template(placeholders: tuple[str, ...], *, optional: bool = False,
              one_line: bool = False) -> abc.Callable[[Any, str], str | None]:
    """Only bare ``{name}`` placeholders: attribute access, indexing, conversions and format
    specs would let a template stored through the admin API read or inflate more than the
    value it names."""
    def check(value: Any, path: str) -> str | None:
        if value is None and optional:
            return None
        template = _string(value, path)
        if one_line and ("\n" in template or "\r" in template):
            raise MappingError(path, "must be one line")
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise MappingError(path, f"not a valid template: {exc}") from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in placeholders:
                raise MappingError(path, f"unknown placeholder {{{name}}} (known: "
                                         f"{', '.join('{' + p + '}' for p in placeholders)})")
            if spec or conversion:
                raise MappingError(path, f"placeholder {{{name}}} takes no conversion or "
                                         "format spec")
        return template
    return check


def _entries(keys: tuple[str, ...] | None, check: abc.Callable[[Any, str], Any],
             lower_keys: bool = False) -> abc.Callable[[Any, str], dict[str, Any]]:
    """A dictionary setting; ``null`` values stay so the merge can remove the entry."""
    def validate(value: Any, path: str) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        for key, item in _dict(value, path).items():
            where = f"{path}.{key}"
            if keys is not None and key not in keys:
                raise MappingError(where, _unknown(keys))
            if not key.strip():
                raise MappingError(where, "keys cannot be empty")
            entries[key.lower() if lower_keys else key] = \
                None if item is None else check(item, where)
        return entries
    return validate


def _status(value: Any, path: str) -> str:
    return _choice(STATUS_CATEGORIES)(value, path)


def _statuses(value: Any, path: str) -> dict[str, Any]:
    for key in _dict(value, path):
        if key in IGNORED_STATUSES:
            raise MappingError(f"{path}.{key}", f"{key} issues get the ignored label "
                                                "(ignored_label), never a transition")
    return _entries(MAPPED_STATUSES, _status)(value, path)


def _inbound(value: Any, path: str) -> dict[str, bool]:
    flags = _entries(INBOUND_FLAGS, _bool)(value, path)
    for key, flag in flags.items():
        if flag is None:
            raise MappingError(f"{path}.{key}", "expected true or false, got null")
    return flags


def _routing(value: Any, path: str) -> tuple[RouteRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MappingError(path, f"expected a list of rules, got {_kind(value)}")
    return tuple(_rule(rule, f"{path}[{index}]") for index, rule in enumerate(value))


_RULE_KEYS = ("domain", "tag", "severity", "owner", "project", "issue_type")


def _rule(value: Any, path: str) -> RouteRule:
    rule = _dict(value, path)
    for key in rule:
        if key not in _RULE_KEYS:
            raise MappingError(f"{path}.{key}", _unknown(_RULE_KEYS))
    if "project" not in rule:
        raise MappingError(f"{path}.project", "required: the Jira project key to route to")
    conditions = {key: _names(rule[key], f"{path}.{key}")
                  for key in ("domain", "tag", "severity", "owner") if key in rule}
    for index, severity in enumerate(conditions.get("severity", ())):
        where = f"{path}.severity" + (f"[{index}]" if isinstance(rule["severity"], list) else "")
        _choice(SEVERITIES)(severity, where)
    return RouteRule(project=_name(rule["project"], f"{path}.project").upper(),
                     issue_type=_optional_name(rule.get("issue_type"), f"{path}.issue_type"),
                     **conditions)


def _json(value: Any, path: str) -> Any:
    """Field values go to Jira as JSON; YAML dates and the like must be quoted."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_json(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _json(item, f"{path}.{key}") for key, item in _dict(value, path).items()}
    raise MappingError(path, f"expected a JSON value, got {_kind(value)} (quote it)")


_CHECKS: dict[str, abc.Callable[[Any, str], Any]] = {
    "title_template": _template(TITLE_PLACEHOLDERS),
    "labels": lambda value, path: () if value is None else _names(value, path),
    "severity_label": _template(("severity",), optional=True),
    "domain_label": _template(("domain",), optional=True),
    "tag_labels": _bool,
    "ignored_label": _name,
    "priorities": _entries(SEVERITIES, _name),
    "components_by_domain": _entries(None, _names),
    "components_by_owner": _entries(None, _names, lower_keys=True),
    "field_defaults": _entries(None, _json),
    "statuses": _statuses,
    "comment_prefix": _template(("author",), one_line=True),
    "on_jira_delete": _choice(ON_JIRA_DELETE),
    "on_qalita_delete": _choice(ON_QALITA_DELETE),
    "inbound": _inbound,
    "inbound_statuses": _entries(None, _choice(QALITA_STATUSES)),
    "conflicts": _entries(CONFLICT_FIELDS, _choice(CONFLICT_POLICIES)),
}
_GLOBAL_ONLY = ("routing", "projects")
_DICT_SETTINGS = frozenset({"priorities", "components_by_domain", "components_by_owner",
                            "field_defaults", "statuses", "inbound", "inbound_statuses",
                            "conflicts"})
