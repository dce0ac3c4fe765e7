"""``jira-sync integration``: the integrations, managed without the HTTP API."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from config.settings import SECRET_VARIABLES
from jira_sync.admin.schemas import OPTIONAL_FIELDS, SECRET_FIELDS
from jira_sync.cli.common import (
    admin_refusals,
    echo_json,
    fail,
    schedule,
    tenant_database,
    tenant_option,
)

# How each check's outcome is shown: passed, or failed at its level.
MARKS = {"error": "FAILED", "warning": "warning", "skipped": "skipped"}


@click.group()
def integration() -> None:
    """Configure, inspect and test the Jira integrations (by tenant)."""


@integration.command("test")
@tenant_option
def test_connection(tenant: str | None) -> None:
    """Test Connection: every check of the integration, one a line, with the fix under each
    one that fails; exit 1 when an error-level check fails."""
    from jira_sync.admin import integrations as core
    from jira_sync.admin.connection import test_connection as run_checks
    from jira_sync.crypto import SecretBox

    with tenant_database(tenant) as (settings, database, tenant):
        with admin_refusals(), database.unit_of_work() as session:
            found = core.by_tenant(session, tenant)
            session.expunge(found)
        click.echo(f"Jira {found.base_url} ({found.deployment}), tenant {tenant}")
        with database.unit_of_work() as session:  # connected after the remote calls
            report = run_checks(session, found, SecretBox(settings.secret_keys),
                                public_url=settings.public_url,
                                mapping_file=settings.mapping_file)
    for check in report.checks:
        click.echo(f"  {'ok' if check.ok else MARKS[check.level]:<8} {check.name}: "
                   f"{check.detail}")
        if check.fix and not check.ok:
            click.echo(f"           fix: {check.fix}")
    if not report.ok:
        click.echo("not ok: an error-level check failed")
        raise SystemExit(1)
    click.echo("ok: every error-level check passed")


# The fields ``update --clear`` sets back to none.
CLEARABLE = (*OPTIONAL_FIELDS, "mapping", "ip_allowlist", *SECRET_FIELDS)


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The integration's settings as options; secrets never: they would sit in the shell's
    history and in every process listing (see ``--secrets-from``)."""
    options = [
        click.option("--name", default=None),
        click.option("--base-url", default=None, help="e.g. https://acme.atlassian.net"),
        click.option("--deployment", type=click.Choice(["cloud", "server"]), default=None),
        click.option("--auth-method", type=click.Choice(["basic", "pat", "oauth2"]),
                     default=None),
        click.option("--email", default=None),
        click.option("--cloud-id", default=None),
        click.option("--oauth-client-id", default=None),
        click.option("--project-key", default=None, help="e.g. DATA"),
        click.option("--issue-type", default=None, help="e.g. Bug"),
        click.option("--qalita-api-url", default=None),
        click.option("--mapping", "mapping_file", type=click.File("r"), default=None,
                     help="A YAML or JSON file of mapping overrides (docs/mapping.md)."),
        click.option("--ip-allowlist", default=None,
                     help="Comma-separated CIDRs that may deliver webhooks."),
        click.option("--secrets-from", type=click.Choice(["env", "stdin"]), default=None,
                     help="env: read " + ", ".join(SECRET_VARIABLES.values()) + "; stdin: "
                     "lines of name=value (" + ", ".join(SECRET_VARIABLES) + ")."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _body(options: dict[str, Any], secrets_from: str | None,
          clear: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options given as an API body: what was not given is not sent."""
    import yaml

    body = {name: value for name, value in options.items()
            if value is not None and name not in ("mapping_file", "ip_allowlist")}
    if options.get("mapping_file") is not None:
        try:
            body["mapping"] = yaml.safe_load(options["mapping_file"])
        except yaml.YAMLError as exc:
            fail(f"--mapping: not YAML or JSON ({str(exc).splitlines()[0]})", code=2)
    if options.get("ip_allowlist") is not None:
        body["ip_allowlist"] = [part.strip() for part in options["ip_allowlist"].split(",")
                                if part.strip()]
    body.update(_secrets(secrets_from))
    body.update(dict.fromkeys(clear))
    return body


def _secrets(source: str | None) -> dict[str, str]:
    if source == "env":
        return {name: os.environ[variable].strip()
                for name, variable in SECRET_VARIABLES.items()
                if os.environ.get(variable, "").strip()}
    if source != "stdin":
        return {}
    found = {}
    for number, line in enumerate(click.get_text_stream("stdin").read().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() not in SECRET_VARIABLES:
            # Never the line itself: it holds a secret.
            fail(f"stdin line {number}: expected name=value with a name among "
                 f"{', '.join(SECRET_VARIABLES)}", code=2)
        found[name.strip()] = value.strip()
    return found


def _show(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(view)
        return
    for name, value in view.items():
        if name != "webhook_url":
            click.echo(f"{name:24} {value if value is not None else '-'}")


@integration.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON, as the admin API answers.")
def list_command(as_json: bool) -> None:
    """List the integrations (deleted ones left out)."""
    from jira_sync.admin import integrations as core
    from jira_sync.crypto import SecretBox

    with tenant_database(None) as (settings, database, _), database.unit_of_work() as session:
        box = SecretBox(settings.secret_keys)
        views, cursor = [], None
        while True:
            page = core.list_integrations(session, box, limit=500, cursor=cursor)
            views.extend(page.items)
            if (cursor := page.next_cursor) is None:
                break
    if as_json:
        echo_json(views)
        return
    for view in views:
        paused = "; paused: " + ", ".join(view["paused"]) if view["paused"] else ""
        click.echo(f"{view['id']:>4} {view['tenant']:20} {view['base_url']} "
                   f"{view['project_key'] or '-'} "
                   f"{'enabled' if view['enabled'] else 'disabled'}{paused}")


@integration.command("show")
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="JSON, as the admin API answers.")
def show(tenant: str | None, as_json: bool) -> None:
    """Show one integration's settings (a secret only as whether it is set)."""
    from jira_sync.admin import integrations as core
    from jira_sync.crypto import SecretBox

    with tenant_database(tenant) as (settings, database, tenant), admin_refusals(), \
            database.unit_of_work() as session:
        view = core.view(core.by_tenant(session, tenant), SecretBox(settings.secret_keys))
    _show(view, as_json)


@integration.command("add")
@click.option("--tenant", required=True, help="The QALITA tenant this integration serves.")
@_settings_options
@click.option("--disabled", is_flag=True, help="Create it disabled (work is held).")
def add(tenant: str, secrets_from: str | None, disabled: bool, **options: Any) -> None:
    """Create an integration (or revive a deleted one of the same tenant) and print its
    webhook URL, shown this once."""
    from jira_sync.admin import integrations as core
    from jira_sync.admin.schemas import IntegrationCreate
    from jira_sync.crypto import SecretBox

    body = {"tenant": tenant, **_body(options, secrets_from)}
    if disabled:
        body["enabled"] = False
    with admin_refusals():
        data = IntegrationCreate().load(body)
    with tenant_database(tenant) as (settings, database, _):
        with admin_refusals(), database.unit_of_work() as session:
            created, url, dues = core.create(session, data, SecretBox(settings.secret_keys),
                                             public_url=settings.public_url)
            click.echo(f"created integration {created.id} for tenant {tenant}")
        schedule(settings, dues)
    click.echo(f"webhook URL (shown once): {url}")


@integration.command("update")
@tenant_option
@_settings_options
@click.option("--clear", multiple=True, type=click.Choice(CLEARABLE),
              help="Set an optional field back to none (repeatable).")
def update(tenant: str | None, secrets_from: str | None, clear: tuple[str, ...],
           **options: Any) -> None:
    """Change the settings given, and only those."""
    from jira_sync.admin.schemas import IntegrationWrite

    body = _body(options, secrets_from, clear)
    if not body:
        fail("nothing to change: give the settings to change (see --help)", code=2)
    with admin_refusals():
        data = IntegrationWrite().load(body, partial=True)
    changed = _change(tenant, data)
    click.echo(f"changed: {', '.join(changed)}" if changed else "nothing changed")


@integration.command("enable")
@tenant_option
def enable(tenant: str | None) -> None:
    """Enable the integration: the work held while it was disabled is released."""
    click.echo("enabled" if _change(tenant, {"enabled": True}) else "already enabled")


@integration.command("disable")
@tenant_option
def disable(tenant: str | None) -> None:
    """Disable the integration: events and deliveries are still stored, their work held."""
    click.echo("disabled" if _change(tenant, {"enabled": False}) else "already disabled")


@integration.command("delete")
@tenant_option
@click.option("--sever", is_flag=True, help="Also sever every link (the Jira issues stay).")
@click.confirmation_option(prompt="Delete the integration? (links and history stay)")
def delete(tenant: str | None, sever: bool) -> None:
    """Delete the integration (soft: its links and history stay; `add` revives it)."""
    from jira_sync.admin import integrations as core
    from jira_sync.admin import links

    with tenant_database(tenant) as (_, database, tenant), admin_refusals(), \
            database.unit_of_work() as session:
        integration = core.by_tenant(session, tenant, lock=True)
        core.delete(session, integration)
        if sever:
            links.sever_all(session, integration)
    click.echo(f"deleted the integration of tenant {tenant}")


def _change(tenant: str | None, data: dict[str, Any]) -> list[str]:
    from jira_sync.admin import integrations as core
    from jira_sync.crypto import SecretBox

    with tenant_database(tenant) as (settings, database, tenant):
        with admin_refusals(), database.unit_of_work() as session:
            integration = core.by_tenant(session, tenant, lock=True)
            changed, dues = core.update(session, integration, data,
                                        SecretBox(settings.secret_keys))
        schedule(settings, dues)
    return changed
