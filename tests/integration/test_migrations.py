"""Migrations run on Postgres and SQLite, both ways, and match the models exactly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from jira_sync.store import migrate
from jira_sync.store.db import Database
from jira_sync.store.models import Base
from tests.support.processes import closed_port, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "sqlite"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("empty_postgres_url")


def tables(url: str) -> set[str]:
    database = Database(url)
    try:
        return set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    finally:
        database.dispose()


def test_upgrade_downgrade_upgrade(empty_url, service_env):
    env = {**service_env, "JIRA_SYNC_DATABASE_URL": empty_url}
    env.pop("JIRA_SYNC_SECRET_KEY")  # `db upgrade` needs no key
    assert run_cli(["db", "upgrade"], env).returncode == 0
    assert tables(empty_url) == set(Base.metadata.tables)
    downgraded = run_cli(["db", "downgrade", "base"], env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables(empty_url) == set()
    assert run_cli(["db", "upgrade"], env).returncode == 0
    database = Database(empty_url)
    try:
        assert migrate.schema_problem(database) is None
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        database.dispose()


def test_db_upgrade_on_an_unreachable_database_fails_in_one_line(service_env):
    env = {**service_env, "JIRA_SYNC_DATABASE_URL":
           f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nothing"}
    result = run_cli(["db", "upgrade"], env)
    assert result.returncode != 0
    assert result.stderr.startswith("jira-sync: database unreachable: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_db_upgrade_takes_the_url_as_providers_write_it(empty_postgres_url, service_env,
                                                         scheme):
    """``postgresql://`` and ``postgres://``, copied from a provider's console, name no
    driver; they reach Postgres through the installed psycopg2."""
    bare = make_url(empty_postgres_url).set(drivername=scheme).render_as_string(
        hide_password=False)
    env = {**service_env, "JIRA_SYNC_DATABASE_URL": bare}
    result = run_cli(["db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    assert tables(empty_postgres_url) == set(Base.metadata.tables)
