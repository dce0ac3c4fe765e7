"""Who am I and what may I do, projects and their statuses, create metadata,
priorities/statuses/resolutions, and users."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from jira_sync.simulators.jira.catalog import PRIORITIES, Catalog
from jira_sync.simulators.jira.config import FieldDef, ProjectDef, UserDef
from jira_sync.simulators.jira.errors import JiraError, bad_request
from jira_sync.simulators.jira.fields import SYSTEM_CREATE_SCREEN
from jira_sync.simulators.jira.render import Renderer
from jira_sync.simulators.jira.simulator import Simulator

_SYSTEM = {  # field id -> (name, schema, operations)
    "summary": ("Summary", {"type": "string", "system": "summary"}, ["set"]),
    "issuetype": ("Issue Type", {"type": "issuetype", "system": "issuetype"}, []),
    "project": ("Project", {"type": "project", "system": "project"}, ["set"]),
    "description": ("Description", {"type": "string", "system": "description"}, ["set"]),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"},
               ["add", "set", "remove"]),
    "priority": ("Priority", {"type": "priority", "system": "priority"}, ["set"]),
    "components": ("Components", {"type": "array", "items": "component",
                                  "system": "components"}, ["add", "set", "remove"]),
    "assignee": ("Assignee", {"type": "user", "system": "assignee"}, ["set"]),
    "reporter": ("Reporter", {"type": "user", "system": "reporter"}, ["set"]),
    "resolution": ("Resolution", {"type": "resolution", "system": "resolution"}, ["set"]),
}
_CUSTOM_TYPES = {"string": ("string", "textfield"), "textarea": ("string", "textarea"),
                 "option": ("option", "select"), "number": ("number", "float")}


def custom_schema(custom: FieldDef) -> dict:
    """A custom field's ``JsonTypeBean``, the same in create metadata and the field list."""
    kind, plugin = _CUSTOM_TYPES[custom.kind]
    return {"type": kind, "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{plugin}",
            "customId": int(custom.id.rsplit("_", 1)[1])}


def field_meta(catalog: Catalog, renderer: Renderer, project: ProjectDef, issue_type_name: str,
               field_id: str, required: bool) -> dict:
    """One FieldCreateMetadata entry (also used for transition screens)."""
    custom = Catalog.custom_field(project, field_id)
    if custom is not None:
        name, schema, operations = custom.name, custom_schema(custom), ["set"]
    else:
        name, schema, operations = _SYSTEM[field_id]
    out = {"required": required, "schema": schema, "name": name, "key": field_id,
           "fieldId": field_id, "hasDefaultValue": field_id == "priority",
           "operations": operations}
    allowed = {
        "issuetype": lambda: [renderer.issue_type(catalog.issue_types[issue_type_name])],
        "project": lambda: [renderer.project(project)],
        "priority": lambda: [renderer.priority(p, full=True) for p in PRIORITIES],
        "components": lambda: [renderer.component(c)
                               for c in catalog.components[project.key].values()],
        "resolution": lambda: [renderer.resolution(r) for r in catalog.resolutions.values()],
    }
    if field_id in allowed:
        out["allowedValues"] = allowed[field_id]()
    elif custom is not None and custom.kind == "option":
        out["allowedValues"] = [renderer.custom("option", value, custom.options)
                                for value in custom.options]
    if field_id == "priority":
        out["defaultValue"] = renderer.priority(catalog.priorities["3"], full=True)
    if field_id in ("assignee", "reporter"):
        out["autoCompleteUrl"] = f"{renderer.rest}/user/search?query="
    if field_id == "labels":
        out["autoCompleteUrl"] = f"{renderer.base}/rest/api/1.0/labels/suggest?query="
    return out


def _page(sim: Simulator, items: list, cloud_key: str) -> dict:
    start = request.args.get("startAt", 0, type=int)
    size = request.args.get("maxResults", 50, type=int)
    if sim.cloud and size > 200:
        raise bad_request(None, "The maximum allowed value for 'maxResults' is 200.")
    page = items[start:start + size]
    if sim.cloud:
        return {cloud_key: page, "maxResults": size, "startAt": start, "total": len(items)}
    return {"maxResults": size, "startAt": start, "total": len(items),
            "isLast": start + size >= len(items), "values": page}


# key: (id, name, description, type), as ``GET /permissions`` lists them.
PERMISSIONS = {
    "ADMINISTER": ("0", "Administer Jira", "Ability to perform most administration functions "
                   "(excluding Import & Export, SMTP Configuration, etc.).", "GLOBAL"),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and the issues "
                        "within them.", "PROJECT"),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues.", "PROJECT"),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues.", "PROJECT"),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues to other people.",
                      "PROJECT"),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues.", "PROJECT"),
    "ADMINISTER_PROJECTS": ("23", "Administer Projects", "Ability to administer a project in "
                            "Jira.", "PROJECT"),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues.",
                          "PROJECT"),
}
# Everyone here may do everything in a project they can browse, except administer.
_NOT_GRANTED = frozenset({"ADMINISTER", "ADMINISTER_PROJECTS"})


def _my_permissions(sim: Simulator) -> dict:
    """``GET /mypermissions``: Cloud requires ``permissions`` (comma-separated keys), Data
    Center answers every permission without it; a project context the account cannot see is
    a 404, and without one a project permission held in any project counts."""
    raw = request.args.get("permissions")
    if raw is None and sim.cloud:
        raise bad_request(None, "The 'permissions' query parameter is required.")
    keys = [k.strip() for k in raw.split(",") if k.strip()] if raw is not None \
        else list(PERMISSIONS)
    unknown = [k for k in keys if k not in PERMISSIONS]
    if unknown or not keys:
        raise bad_request(None, f"Invalid permission key(s): {', '.join(unknown) or '(none)'}.")
    catalog = sim.catalog
    ref = request.args.get("projectId") or request.args.get("projectKey")
    if ref is not None:
        project = catalog.project(ref)
        if project is None:
            raise JiraError(404, [f"No project could be found with key '{ref}'."])
        projects = [project]
    else:
        projects = catalog.visible_projects()
    out = {}
    for key in keys:
        permission_id, name, description, kind = PERMISSIONS[key]
        have = key not in _NOT_GRANTED and (kind == "GLOBAL" or any(
            key != "CREATE_ISSUES" or p.key not in catalog.switches.deny_create
            for p in projects))
        out[key] = {"id": permission_id, "key": key, "name": name, "type": kind,
                    "description": description, "havePermission": have}
    return out


def _user_matches(user: UserDef, text: str) -> bool:
    text = text.lower()
    words = [user.display_name.lower(), *user.display_name.lower().split(),
             user.email.lower()]
    return any(word.startswith(text) for word in words)


def register(bp: Blueprint, sim: Simulator) -> None:
    catalog = sim.catalog

    def project_or_400(key: str) -> ProjectDef:
        project = catalog.project(key)
        if project is None:
            raise bad_request(None, f"No project could be found with key '{key}'.")
        return project

    @bp.get("/myself")
    def myself():
        return jsonify(sim.renderer().myself(g.user))

    @bp.get("/project")
    def projects():
        renderer = sim.renderer()
        return jsonify([renderer.project(p, full=True) for p in catalog.visible_projects()])

    @bp.get("/project/<key>")
    def project(key: str):
        found = catalog.project(key)
        if found is None:
            raise JiraError(404, [f"No project could be found with key '{key}'."])
        return jsonify(sim.renderer().project(found, full=True))

    @bp.get("/project/<key>/statuses")
    def project_statuses(key: str):
        """Per issue type, the statuses its workflow holds (each project here has one
        workflow for all its issue types)."""
        found = catalog.project(key)
        if found is None:
            raise JiraError(404, [f"No project could be found with key '{key}'."])
        renderer = sim.renderer()
        used = catalog.statuses_of(found)
        statuses = [renderer.status(s) for s in catalog.statuses.values() if s.id in used]
        return jsonify([{"self": f"{renderer.rest}/issueType/{issue_type.id}",
                         "id": issue_type.id, "name": issue_type.name, "subtask": False,
                         "statuses": statuses}
                        for issue_type in (catalog.issue_types[n] for n in found.issue_types)])

    @bp.get("/mypermissions")
    def my_permissions():
        return jsonify({"permissions": _my_permissions(sim)})

    @bp.get("/project/<key>/components")
    def components(key: str):
        found = catalog.project(key)
        if found is None:
            raise JiraError(404, [f"No project could be found with key '{key}'."])
        renderer = sim.renderer()
        return jsonify([renderer.component(c) for c in catalog.components[found.key].values()])

    @bp.get("/issue/createmeta/<key>/issuetypes")
    def createmeta_types(key: str):
        found, renderer = project_or_400(key), sim.renderer()
        # Only the issue types the account may create: none without Create Issues.
        creatable = () if found.key in catalog.switches.deny_create else found.issue_types
        types = [renderer.issue_type(catalog.issue_types[name]) for name in creatable]
        return jsonify(_page(sim, types, "issueTypes"))

    @bp.get("/issue/createmeta/<key>/issuetypes/<type_id>")
    def createmeta_fields(key: str, type_id: str):
        found, renderer = project_or_400(key), sim.renderer()
        issue_type = catalog.issue_type(found, type_id=type_id)
        if issue_type is None:
            raise bad_request(None, f"The issue type with id '{type_id}' does not exist in "
                              f"project '{found.key}'.")
        fields = [field_meta(catalog, renderer, found, issue_type.name, field_id,
                             field_id in ("summary", "issuetype", "project"))
                  for field_id in SYSTEM_CREATE_SCREEN]
        fields += [field_meta(catalog, renderer, found, issue_type.name, custom.id,
                              custom.required) for custom in found.fields]
        return jsonify(_page(sim, fields, "fields"))

    @bp.get("/priority")
    def priorities():
        renderer = sim.renderer()
        return jsonify([renderer.priority(p, full=True) for p in PRIORITIES])

    @bp.get("/resolution")
    def resolutions():
        renderer = sim.renderer()
        return jsonify([renderer.resolution(r) for r in catalog.resolutions.values()])

    @bp.get("/status")
    def statuses():
        renderer = sim.renderer()
        return jsonify([renderer.status(s) for s in catalog.statuses.values()])

    @bp.get("/issuetype")
    def issue_types():
        renderer = sim.renderer()
        return jsonify([renderer.issue_type(t) for t in catalog.issue_types.values()])

    @bp.get("/user/search")
    def user_search():
        if sim.cloud:
            account_id, text = request.args.get("accountId"), request.args.get("query")
            if account_id is None and text is None:
                raise bad_request(None, "One of 'accountId' or 'query' must be specified.")
            found = [u for u in catalog.users
                     if (account_id is None or u.account_id == account_id)
                     and (text is None or _user_matches(u, text))]
        else:
            text = request.args.get("username")
            if text is None:
                raise bad_request(None, "The username query parameter was not provided")
            found = [u for u in catalog.users
                     if u.name.lower().startswith(text.lower()) or _user_matches(u, text)]
        start = request.args.get("startAt", 0, type=int)
        size = request.args.get("maxResults", 50, type=int)
        renderer = sim.renderer()
        return jsonify([renderer.user(u) for u in found[start:start + size]])

    @bp.get("/user")
    def user():
        wanted = request.args.get("accountId" if sim.cloud else "username", "")
        found = (catalog.user_by_account_id(wanted) if sim.cloud
                 else catalog.user_by_name(wanted))
        if found is None:
            raise JiraError(404, ["Specified user does not exist or you do not have required "
                                  "permissions"])
        return jsonify(sim.renderer().user(found))
