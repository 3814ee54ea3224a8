"""Eight workers find the same expired access token at once: exactly one refreshes it.

RingCentral rotates refresh tokens and kills the old access token on every refresh, so a second
refresh with the old refresh token would (after the grace period) fail with invalid_grant and
break the link. The tests run real concurrency against the real database (file SQLite or
PostgreSQL) and the emulator over HTTP: threads in this process, then separate processes.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection as db_connection
from django.db import connections

from messaging.links.tokens import client_for
from messaging.models import ConnectionStatus, RingCentralConnection
from tests.rc_fixtures import (
    expire_access_token,
    journal,
    link_directly,
    reset_journal,
    token_requests,
)

WORKERS = 8

pytestmark = pytest.mark.django_db(transaction=True)


def assert_one_refresh_and_eight_successes(emulator, connection, results):
    assert results == [str(connection.extension_id)] * WORKERS
    refreshes = token_requests(emulator, "refresh_token")
    assert len(refreshes) == 1
    assert refreshes[0].status == 200
    # No invalid_grant (nor any other refusal) on the token endpoint.
    assert [e.status for e in token_requests(emulator)] == [200]
    calls = [e for e in journal(emulator) if e.path.endswith("/extension/~")]
    assert [e.status for e in calls] == [200] * WORKERS
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.LINKED


@pytest.fixture
def expired(alice, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)
    expire_access_token(connection)
    reset_journal(emulator)  # journal from here on: only what the workers do
    return connection


def test_eight_threads_with_an_expired_token_cause_exactly_one_refresh(emulator, expired):
    barrier = threading.Barrier(WORKERS)
    results: list = [None] * WORKERS

    def work(index):
        try:
            barrier.wait(timeout=30)
            results[index] = client_for(expired).get_extension().id
        except Exception as exc:  # reported through results
            results[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert_one_refresh_and_eight_successes(emulator, expired, results)


def test_concurrent_401s_cause_exactly_one_forced_refresh(emulator, expired):
    # Our clock says the token is fine; RingCentral's says it expired: every worker gets a 401.
    link_valid_for_an_hour(expired)
    emulator.advance(3700)
    barrier = threading.Barrier(WORKERS)
    results: list = [None] * WORKERS

    def work(index):
        try:
            barrier.wait(timeout=30)
            results[index] = client_for(expired).get_extension().id
        except Exception as exc:
            results[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert results == [str(expired.extension_id)] * WORKERS
    assert len(token_requests(emulator, "refresh_token")) == 1
    calls = [e for e in journal(emulator) if e.path.endswith("/extension/~")]
    assert sorted(e.status for e in calls).count(200) == WORKERS


def link_valid_for_an_hour(connection):
    from datetime import timedelta

    from django.utils import timezone

    RingCentralConnection.objects.filter(pk=connection.pk).update(
        access_expires_at=timezone.now() + timedelta(hours=1)
    )


# --- separate processes -------------------------------------------------------------------------

WORKER_CODE = """
import os, time
from pathlib import Path
from messaging.models import RingCentralConnection
from messaging.links.tokens import client_for
connection = RingCentralConnection.objects.get(pk=int(os.environ["RACE_CONNECTION_ID"]))
client = client_for(connection)
Path(os.environ["RACE_DIR"], f"ready-{os.getpid()}").touch()
go = Path(os.environ["RACE_DIR"], "go")
deadline = time.monotonic() + 90
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.002)
print("RESULT", client.get_extension().id, flush=True)
"""


def database_url() -> str:
    """The test database, as a URL the settings of a child process understand."""
    params = db_connection.settings_dict
    if params["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{params['NAME']}"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{params.get('USER') or ''}{password}@{host}:{port}/{params['NAME']}"


def test_eight_processes_with_an_expired_token_cause_exactly_one_refresh(
    emulator, expired, tmp_path
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mmsportal.settings",
        "DATABASE_URL": database_url(),
        # Real (non-demo) settings pointing at this test's emulator and app.
        "RINGCENTRAL_SERVER_URL": emulator.base_url,
        "RINGCENTRAL_CLIENT_ID": django_settings.RINGCENTRAL_CLIENT_ID,
        "RINGCENTRAL_CLIENT_SECRET": django_settings.RINGCENTRAL_CLIENT_SECRET,
        "TOKEN_ENCRYPTION_KEYS": ",".join(django_settings.TOKEN_ENCRYPTION_KEYS),
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
        "ALLOWED_HOSTS": "localhost",
        "RACE_DIR": str(tmp_path),
        "RACE_CONNECTION_ID": str(expired.pk),
        "PYTHONUNBUFFERED": "1",
    }
    manage = str(Path(django_settings.BASE_DIR) / "manage.py")
    workers = [
        subprocess.Popen(
            [sys.executable, manage, "shell", "-c", WORKER_CODE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    # Release them together once every process has started Django and read the row.
    deadline = time.monotonic() + 90
    while len(list(tmp_path.glob("ready-*"))) < WORKERS and time.monotonic() < deadline:
        if any(worker.poll() is not None for worker in workers):
            break
        time.sleep(0.05)
    (tmp_path / "go").touch()

    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        results.append(lines[-1].split()[1] if lines else out + err)

    assert_one_refresh_and_eight_successes(emulator, expired, results)
