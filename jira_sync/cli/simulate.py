"""``jira-sync simulate jira|qalita``: the stand-ins for Jira and QALITA, by command line alone.

The defaults are part of the contract (CONTRACT §7): outside checks start the simulators
with nothing but these options.
"""

from __future__ import annotations

import click


@click.group()
def simulate() -> None:
    """Run a Jira or QALITA simulator for tests, the demo and benchmarks."""


def _credentials(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, str]:
    email, sep, token = value.partition(":")
    if not sep or not email or not token:
        raise click.BadParameter("expected EMAIL:TOKEN")
    return email, token


@simulate.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), required=True)
@click.option("--deployment", type=click.Choice(["cloud", "server"]), default="cloud",
              show_default=True)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Requests per second of each endpoint and method (Server: of each user) "
                   "before 429; on Cloud also limits writes per issue (default: unlimited).")
@click.option("--hide-rate-limit", is_flag=True,
              help="Enforce the rate limit without X-RateLimit-Limit/-Remaining headers.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of API calls that fail; half of them after applying the change.")
@click.option("--index-lag-ms", type=click.IntRange(min=0), default=1000, show_default=True,
              help="How long a new issue stays out of search results.")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--credentials", default="svc@example.com:tok-123", show_default=True,
              callback=_credentials, help="Basic credentials of the service account.")
@click.option("--pat", default="pat-123", show_default=True,
              help="Bearer token of the service account (Server only).")
@click.option("--webhook-url", default=None, help="Where to deliver webhooks.")
@click.option("--webhook-secret", default=None, help="Signs deliveries (X-Hub-Signature).")
@click.option("--webhook-order", type=click.Choice(["inorder", "shuffle", "duplicate"]),
              default="inorder", show_default=True)
@click.option("--webhook-drop-rate", type=click.FloatRange(0, 1), default=0.0,
              show_default=True,
              help="Fraction of webhook deliveries lost (never sent), as a sweep must repair.")
@click.option("--seed", type=int, default=None,
              help="Makes faults, shuffling and dropped deliveries repeatable.")
def jira(host: str, port: int, deployment: str, rate_limit: float | None,
         hide_rate_limit: bool, fail_rate: float, index_lag_ms: int, latency_ms: int,
         credentials: tuple[str, str], pat: str,
         webhook_url: str | None, webhook_secret: str | None, webhook_order: str,
         webhook_drop_rate: float, seed: int | None) -> None:
    """A faithful Jira (Cloud REST v3 or Server/DC v2) with an inspection API under /_sim."""
    from jira_sync.simulators.jira import SimulatorConfig, serve

    config = SimulatorConfig(
        deployment=deployment, credentials=credentials, pat=pat, rate_limit=rate_limit,
        advertise_rate_limit=not hide_rate_limit, fail_rate=fail_rate,
        index_lag_ms=index_lag_ms, latency_ms=latency_ms,
        webhook_url=webhook_url, webhook_secret=webhook_secret, webhook_order=webhook_order,
        webhook_drop_rate=webhook_drop_rate, seed=seed)
    click.echo(f"Jira simulator ({deployment}) on http://{host}:{port}", err=True)
    serve(config, host=host, port=port)


@simulate.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), required=True)
@click.option("--token", default="qalita-tok", show_default=True,
              help="The Bearer token QALITA's API requires.")
@click.option("--broker-url", default=None,
              help="Publish QALITA events there for changes made through /_sim and the API.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--api-events/--no-api-events", default=True, show_default=True,
              help="Whether changes made through the API publish events (with the writer's "
                   "X-Qalita-Origin), as QALITA's do.")
def qalita(host: str, port: int, token: str, broker_url: str | None, tenant: str,
           api_events: bool) -> None:
    """QALITA's API as jira-sync uses it (CONTRACT §5), recording every call."""
    from jira_sync.simulators.qalita import QalitaSimulatorConfig, serve

    config = QalitaSimulatorConfig(token=token, broker_url=broker_url, tenant=tenant,
                                   publish_api_writes=api_events)
    click.echo(f"QALITA simulator on http://{host}:{port}", err=True)
    serve(config, host=host, port=port)
