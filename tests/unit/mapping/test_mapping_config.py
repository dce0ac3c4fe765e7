"""Loading the mapping: packaged defaults, the operator's file, stored overrides, routing."""

from __future__ import annotations

import configparser
from dataclasses import fields
from pathlib import Path

import pytest

from jira_sync.events.qalita_event import Person
from jira_sync.mapping import (
    Mapping,
    MappingError,
    Route,
    RouteRule,
    desired_issue,
    load_mapping,
    packaged_mapping_file,
)
from jira_sync.mapping.inbound import qalita_status
from tests.unit.mapping import snapshot

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(MappingError) as caught:
        load_mapping(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- defaults --------------------------------------------------------------------------------

def test_packaged_file_is_the_dataclass_default_and_is_packaged():
    mappings = load_mapping()
    assert mappings.default == Mapping()
    assert mappings.for_project("DATA") == Mapping()
    assert mappings.routing == ()
    assert packaged_mapping_file() == ROOT / "config" / "mapping.yaml"
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "*.yaml" in setup["options.package_data"]["config"]


def test_defaults_are_those_the_contract_documents():
    mapping = Mapping()
    assert mapping.title_template == "[QALITA] {dataset}: {rule_or_metric}"
    assert mapping.labels == ("qalita",)
    assert mapping.severity_label == "severity:{severity}"
    assert mapping.domain_label == "domain:{domain}"
    assert mapping.tag_labels is False
    assert mapping.ignored_label == "ignored"
    assert dict(mapping.priorities) == {"critical": "Highest", "high": "High",
                                        "medium": "Medium", "low": "Low", "info": "Lowest"}
    assert dict(mapping.statuses) == {"open": "new", "active": "indeterminate",
                                      "resolved": "done"}
    assert mapping.comment_prefix == "QALITA comment by {author}:"
    assert (mapping.on_jira_delete, mapping.on_qalita_delete) == ("recreate", "close")
    # QALITA's guide: title and description are QALITA's, assignees go one way by default.
    assert dict(mapping.inbound) == {"status": True, "ignored": True, "labels": True,
                                     "comments": True, "assignee": False, "title": False,
                                     "description": False}
    assert dict(mapping.inbound_statuses) == {}
    assert dict(mapping.conflicts) == {"status": "latest", "assignee": "latest",
                                       "title": "qalita", "description": "qalita"}
    assert not mapping.components_by_domain and not mapping.components_by_owner
    assert not mapping.field_defaults


def test_every_setting_is_documented_in_the_packaged_file_and_the_docs():
    packaged = packaged_mapping_file().read_text()
    docs = (ROOT / "docs" / "mapping.md").read_text()
    for name in [f.name for f in fields(Mapping)] + ["projects"]:
        assert f"\n{name}:" in packaged, name
        assert f"| `{name}` |" in docs, name


def test_a_mapping_cannot_be_changed_behind_the_back_of_its_users():
    source = {"high": "P1"}
    mapping = Mapping(priorities=source)
    source["high"] = "P9"
    assert mapping.priorities["high"] == "P1"
    with pytest.raises(TypeError):
        mapping.priorities["high"] = "P2"  # type: ignore[index]


def test_an_empty_file_keeps_the_defaults(tmp_path):
    assert load_mapping(write(tmp_path, "# nothing here\n")).default == Mapping()


# -- merging ---------------------------------------------------------------------------------

def test_file_merges_dictionaries_by_entry_and_replaces_lists(tmp_path):
    path = write(tmp_path, """
labels: [qalita, data-quality]
priorities:
  high: Urgent
  info: null
components_by_domain:
  billing: Billing
components_by_owner:
  Ana@Example.COM: [Data, Platform]
inbound:
  assignee: true
inbound_statuses:
  "Won't Do": ignored
conflicts:
  title: latest
""")
    mapping = load_mapping(path).default
    assert mapping.labels == ("qalita", "data-quality")
    assert dict(mapping.priorities) == {"critical": "Highest", "high": "Urgent",
                                        "medium": "Medium", "low": "Low"}
    assert dict(mapping.components_by_domain) == {"billing": ("Billing",)}
    assert dict(mapping.components_by_owner) == {"ana@example.com": ("Data", "Platform")}
    assert mapping.inbound["assignee"] is True and mapping.inbound["title"] is False
    assert dict(mapping.inbound_statuses) == {"Won't Do": "ignored"}
    assert mapping.conflicts["title"] == "latest" and mapping.conflicts["description"] == \
        "qalita"


def test_overrides_come_after_the_file(tmp_path):
    path = write(tmp_path, "priorities: {high: Urgent, low: Minor}\ntag_labels: true\n")
    mapping = load_mapping(path, {"priorities": {"high": "P1"}, "tag_labels": False}).default
    assert mapping.priorities["high"] == "P1"
    assert mapping.priorities["low"] == "Minor"
    assert mapping.tag_labels is False


def test_per_project_settings_merge_on_top_of_the_global_ones(tmp_path):
    path = write(tmp_path, """
priorities: {high: Urgent}
field_defaults: {customfield_1: global}
projects:
  DATA:
    priorities:
      critical: Blocker
      low: null
  ops:
    field_defaults:
      resolution: {name: Done}
""")
    mappings = load_mapping(path, {"projects": {"DATA": {"title_template": "{title}"}}})
    data = mappings.for_project("DATA")
    assert dict(data.priorities) == {"critical": "Blocker", "high": "Urgent",
                                     "medium": "Medium", "info": "Lowest"}
    assert data.title_template == "{title}"
    ops = mappings.for_project("OPS")
    assert dict(ops.field_defaults) == {"customfield_1": "global",
                                        "resolution": {"name": "Done"}}
    assert mappings.for_project("ops") == ops
    assert ops.priorities["critical"] == "Highest"
    assert mappings.for_project("OTHER") == mappings.default
    assert mappings.for_project(None) == mappings.default
    assert mappings.default.title_template == Mapping().title_template


def test_a_field_default_value_is_replaced_whole_not_merged(tmp_path):
    path = write(tmp_path, "field_defaults: {resolution: {name: Done}}\n")
    mapping = load_mapping(path, {"field_defaults": {"resolution": {"id": "10000"}}}).default
    assert mapping.field_defaults["resolution"] == {"id": "10000"}


def test_a_later_routing_list_replaces_the_earlier_one(tmp_path):
    path = write(tmp_path, "routing:\n  - {domain: billing, project: FIN}\n")
    mappings = load_mapping(path, {"routing": [{"tag": "pii", "project": "SEC"}]})
    assert mappings.routing == (RouteRule(project="SEC", tag=("pii",)),)
    assert mappings.for_project("SEC").routing == mappings.routing


# -- routing ---------------------------------------------------------------------------------

ROUTING = """
routing:
  - domain: billing
    severity: [high, critical]
    project: fin
    issue_type: Task
  - tag: [pii, gdpr]
    project: SEC
  - owner: Bo@Example.com
    project: OPS
  - domain: billing
    project: LEDGER
"""


@pytest.mark.parametrize(("changes", "route"), [
    ({}, Route("FIN", "Task")),
    ({"severity": "low"}, Route("LEDGER", "Bug")),
    ({"severity": "low", "tags": ("x", "gdpr")}, Route("SEC", "Bug")),
    ({"domain": "sales", "tags": ()}, Route("DATA", "Bug")),
    ({"domain": None, "tags": (), "owner": Person("bo@EXAMPLE.com", None)}, Route("OPS", "Bug")),
    ({"domain": None, "tags": (), "owner": Person(None, "Bo")}, Route("DATA", "Bug")),
    ({"domain": None, "tags": (), "owner": None, "severity": None}, Route("DATA", "Bug")),
], ids=["all-conditions", "second-domain-rule", "any-tag", "no-match", "owner-any-case",
        "owner-without-email", "bare-issue"])
def test_first_matching_rule_wins(tmp_path, changes, route):
    mappings = load_mapping(write(tmp_path, ROUTING))
    assert mappings.route(snapshot(**changes), "DATA", "Bug") == route


def test_a_rule_without_conditions_catches_everything_after_the_rules_before_it():
    mappings = load_mapping(overrides={"routing": [{"severity": "info", "project": "LOW"},
                                                   {"project": "ALL"}]})
    assert mappings.route(snapshot(severity="info"), "DATA", None) == Route("LOW", None)
    assert mappings.route(snapshot(), "DATA", "Bug") == Route("ALL", "Bug")


def test_without_rules_the_integration_defaults_apply():
    assert load_mapping().route(snapshot(), "DATA", "Bug") == Route("DATA", "Bug")
    assert load_mapping().route(snapshot(), None, None) == Route(None, None)


def test_route_rules_built_in_code_take_single_strings():
    rule = RouteRule(project="SEC", owner="Ana@Example.com", tag="pii")
    assert rule.owner == ("ana@example.com",) and rule.tag == ("pii",)
    assert rule.matches(snapshot(tags=("pii",)))
    assert not rule.matches(snapshot(tags=("finance",)))


# -- errors ----------------------------------------------------------------------------------

def test_a_wrong_type_names_the_key_path_and_the_file(tmp_path):
    message = error(tmp_path, "projects:\n  DATA:\n    priorities:\n      high: 3\n")
    assert message.startswith(
        "mapping.projects.DATA.priorities.high: expected a string, got a number")
    assert str(tmp_path / "mapping.yaml") in message


@pytest.mark.parametrize(("text", "start"), [
    ("prioritys: {high: P1}", "mapping.prioritys: unknown key (known keys: comment_prefix,"),
    ("priorities: {hgih: P1}", "mapping.priorities.hgih: unknown key"),
    ("inbound: {stauts: false}", "mapping.inbound.stauts: unknown key"),
    ("projects: {DATA: {routing: []}}", "mapping.projects.DATA.routing: only allowed at the top"),
    ("projects: {DATA: {projects: {}}}", "mapping.projects.DATA.projects: only allowed at the"),
    ("projects: {DATA: {labls: [x]}}", "mapping.projects.DATA.labls: unknown key"),
    ("routing: [{domain: x, projet: FIN}]", "mapping.routing[0].projet: unknown key"),
    ("routing: [{domain: x}]", "mapping.routing[0].project: required"),
    ("routing: [{project: A}, {severity: [high, urgent], project: B}]",
     "mapping.routing[1].severity[1]: expected one of info, low, medium, high, critical"),
    ("routing: [{domain: [], project: A}]", "mapping.routing[0].domain: expected a string or"),
    ("routing: {domain: x, project: A}", "mapping.routing: expected a list of rules"),
    ("tag_labels: 'yes'", "mapping.tag_labels: expected true or false, got a string"),
    ("labels: [qalita, 5]", "mapping.labels[1]: expected a string, got a number"),
    ("ignored_label: ' '", "mapping.ignored_label: expected a non-empty string"),
    ("statuses: {muted: done}", "mapping.statuses.muted: muted issues get the ignored label"),
    ("statuses: {open: todo}", "mapping.statuses.open: expected one of new, indeterminate, done"),
    ("on_jira_delete: delete", "mapping.on_jira_delete: expected one of recreate, tombstone"),
    ("on_qalita_delete: null", "mapping.on_qalita_delete: expected one of close, comment"),
    ("inbound: {status: null}", "mapping.inbound.status: expected true or false, got null"),
    ("inbound_statuses: {Done: finished}", "mapping.inbound_statuses.Done: expected one of "
                                           "open, active, resolved, muted, ignored"),
    ("conflicts: {labels: qalita}", "mapping.conflicts.labels: unknown key"),
    ("conflicts: {title: newest}", "mapping.conflicts.title: expected one of qalita, latest"),
    ("title_template: '{datset}'", "mapping.title_template: unknown placeholder {datset}"),
    ("title_template: '{dataset.__class__}'", "mapping.title_template: unknown placeholder"),
    ("title_template: '{dataset:>99999999}'", "mapping.title_template: placeholder {dataset} "
                                              "takes no conversion or format spec"),
    ("title_template: '{dataset!r}'", "mapping.title_template: placeholder {dataset} takes no"),
    ("title_template: '{0}'", "mapping.title_template: unknown placeholder {0}"),
    ("title_template: '{dataset'", "mapping.title_template: not a valid template"),
    ("severity_label: 'sev:{domain}'", "mapping.severity_label: unknown placeholder {domain}"),
    ("comment_prefix: \"by {author}\\nsecond line\"", "mapping.comment_prefix: must be one line"),
    ("field_defaults: {duedate: 2026-01-01}", "mapping.field_defaults.duedate: expected a JSON"),
    ("projects: {NO: {tag_labels: true}}", "mapping.projects: keys must be strings, got False"),
    ("projects: [DATA]", "mapping.projects: expected a mapping of keys to values, got a list"),
    ("projects: {DATA: {}, data: {}}", "mapping.projects.data: the same project is configured"),
    ("components_by_domain:\n  # none yet\n", "mapping.components_by_domain: expected a "
                                                "mapping of keys to values, got null (write {}"),
    ("- a list", "mapping: expected a mapping of keys to values, got a list"),
    ("priorities: {high: [", "mapping: "),
])
def test_mistakes_stop_the_load_with_one_line_naming_the_key(tmp_path, text, start):
    assert error(tmp_path, text).startswith(start)


def test_an_unreadable_file_is_a_mapping_error(tmp_path):
    with pytest.raises(MappingError, match=r"^mapping: cannot read .*missing\.yaml"):
        load_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"labels: [caf\xe9]\n")
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(bad)


def test_stored_overrides_are_validated_and_named_as_such():
    with pytest.raises(MappingError) as caught:
        load_mapping(overrides={"priorities": {"high": None, "low": {"name": "Low"}}})
    assert str(caught.value) == ("mapping.priorities.low: expected a string, "
                                 "got a mapping (in the integration's mapping overrides)")
    assert caught.value.path == "mapping.priorities.low"
    assert isinstance(caught.value, ValueError)


# -- the documented example ------------------------------------------------------------------

def test_the_example_in_the_docs_does_what_the_docs_say(tmp_path):
    docs = (ROOT / "docs" / "mapping.md").read_text()
    example = docs.split("\n## Example\n", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    mappings = load_mapping(write(tmp_path, example))
    pii = snapshot(severity="high", domain="billing", tags=("pii",))
    route = mappings.route(pii, "DATA", "Bug")
    assert route == Route("SEC", "Task")
    issue = desired_issue(mappings.for_project(route.project_key), pii, "default")
    assert issue.summary == "[QALITA][high] Orders table is stale"
    assert issue.priority == "Highest"
    assert issue.labels == ("domain:billing", "pii", "qalita", "qalita-id-default-4211",
                            "security", "severity:high")
    assert issue.components == ("Billing", "Data", "Data platform")
    assert mappings.route(snapshot(severity="critical", tags=()), "DATA", "Bug") == \
        Route("FIN", "Bug")
    assert mappings.for_project("OPS").field_defaults["resolution"] == {"name": "Done"}
    assert mappings.default.priorities.get("info") is None


def test_the_back_from_jira_example_in_the_docs_does_what_the_docs_say(tmp_path):
    docs = (ROOT / "docs" / "mapping.md").read_text()
    section = docs.split("\n## Back from Jira\n", 1)[1].split("\n## ", 1)[0]
    mappings = load_mapping(write(tmp_path, section.split("```yaml\n", 1)[1].split("```")[0]))
    ops, data = mappings.for_project("OPS"), mappings.for_project("DATA")
    assert ops.inbound["assignee"] and ops.conflicts["assignee"] == "qalita"
    assert not data.inbound["assignee"] and data.conflicts["assignee"] == "latest"
    assert data.inbound_statuses == {"Won't Do": "ignored", "Blocked": "active"}
    assert qalita_status(data, "done", "Won't Do", False) == "ignored"
    assert qalita_status(data, "done", "Done", False) == "resolved"

