"""`jira-sync secrets rotate` on this test's Postgres, as a real process: a new key placed first,
rotate, then the old key removed, and every stored secret still opens."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.integrations import upsert_from_env
from jira_sync.store.models import Integration, LogEntry
from jira_sync.store.types import utcnow
from tests.support.processes import run_cli, wait_until
from tests.support.sync import bootstrap

pytestmark = pytest.mark.integration


def key() -> str:
    return Fernet.generate_key().decode()


def make(database, box: SecretBox, tenant: str, *, deleted: bool = False) -> int:
    with database.unit_of_work() as session:
        integration = upsert_from_env(
            session, bootstrap("https://acme.atlassian.net", "cloud", tenant=tenant), box)
        integration.deleted_at = utcnow() if deleted else None
        return integration.id


def lock_waits(database) -> int:
    """Statements of this test's database waiting for a lock another transaction holds."""
    with database.unit_of_work() as session:
        return session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                   "wait_event_type = 'Lock' AND datname = current_database()"))


def stored(database) -> dict[str, str]:
    with database.unit_of_work() as session:
        return {row.tenant: row.secrets_sealed for row in session.scalars(select(Integration))}


def rotate(service_env, *keys: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["secrets", "rotate"], {**service_env, "JIRA_SYNC_SECRET_KEY": ",".join(keys)})


def test_a_new_key_first_then_the_old_one_removed(database, service_env):
    old, new = key(), key()
    make(database, SecretBox((old,)), "default")
    make(database, SecretBox((old,)), "gone", deleted=True)
    before = stored(database)
    result = rotate(service_env, new, old)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("re-sealed the secrets of 2 of 2 integrations under "
                                          "the first key of JIRA_SYNC_SECRET_KEY")
    after = stored(database)
    only_new = SecretBox((new,))
    for tenant in ("default", "gone"):
        assert after[tenant] != before[tenant]
        assert only_new.open(after[tenant]) == {"api_token": "tok-123"}
        with pytest.raises(SecretsUnreadable):
            SecretBox((old,)).open(after[tenant])
    again = rotate(service_env, new)  # the old key retired: everything still opens
    assert again.returncode == 0, again.stderr
    assert all(only_new.open(token) == {"api_token": "tok-123"}
               for token in stored(database).values())
    with database.unit_of_work() as session:
        logged = session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin")).all()
    assert logged.count("secrets_rotated") == 4


def test_a_row_no_key_opens_is_reported_and_the_rest_rotated(database, service_env):
    old, new, lost = key(), key(), key()
    make(database, SecretBox((old,)), "kept")
    make(database, SecretBox((lost,)), "orphan")
    orphan_before = stored(database)["orphan"]
    result = rotate(service_env, new, old)
    assert result.returncode == 1
    assert "re-sealed the secrets of 1 of 2 integrations" in result.stdout
    assert "tenant 'orphan': its secrets open with no key of JIRA_SYNC_SECRET_KEY" \
        in result.stderr
    assert orphan_before not in result.stdout + result.stderr
    after = stored(database)
    assert SecretBox((new,)).open(after["kept"]) == {"api_token": "tok-123"}
    assert after["orphan"] == orphan_before


def test_a_writer_racing_the_rotation_loses_nothing(database, service_env):
    """A refresh holding the row while rotate starts: rotate waits for it, then re-seals what
    it wrote (a rotation that read the row unlocked would write the old secrets back)."""
    old, new = key(), key()
    integration_id = make(database, SecretBox((old,)), "default")
    env = {**service_env, "JIRA_SYNC_SECRET_KEY": f"{new},{old}"}
    with database.unit_of_work() as session:
        row = session.scalars(select(Integration).where(
            Integration.id == integration_id).with_for_update()).one()
        row.secrets_sealed = SecretBox((old,)).seal({"api_token": "refreshed"})
        session.flush()
        process = subprocess.Popen([sys.executable, "-m", "jira_sync", "secrets", "rotate"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        try:
            wait_until(lambda: lock_waits(database) or process.poll() is not None, 60)
            assert process.poll() is None, process.communicate()  # rotate waits on the row
        except BaseException:
            process.kill()
            process.communicate()
            raise
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert SecretBox((new,)).open(stored(database)["default"]) == {"api_token": "refreshed"}
