"""Production settings: strict about secrets, and clean under `check --deploy`."""

import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

PRODUCTION_ENV = {
    "DEBUG": "false",
    "DJANGO_SECRET_KEY": "x7-" + "k" * 60 + "-production-secret",
    "ALLOWED_HOSTS": "portal.example.com",
    "PUBLIC_BASE_URL": "https://portal.example.com",
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "RINGCENTRAL_CLIENT_ID": "client-id",
    "RINGCENTRAL_CLIENT_SECRET": "client-secret",
}


def manage(*args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_prints_no_warnings_with_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "TOKEN_ENCRYPTION_KEYS"])
def test_missing_secret_with_debug_off_stops_with_a_message_naming_it(missing):
    env = {**PRODUCTION_ENV, missing: ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_client_id_without_secret_is_refused():
    result = manage("check", env={**PRODUCTION_ENV, "RINGCENTRAL_CLIENT_SECRET": ""})
    assert result.returncode != 0
    assert "RINGCENTRAL_CLIENT_SECRET" in result.stderr


def test_no_eager_celery_anywhere_in_settings():
    assert not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


EMBEDDED = """
import json
from django.conf import settings
from kombu.transport import sqlalchemy
from mmsportal.celery import app
print(json.dumps({
    "database": settings.DATABASES["default"]["ENGINE"],
    "broker": app.conf.broker_url,
    "transport_options": app.conf.broker_transport_options,
    "polling_interval": sqlalchemy.Transport.polling_interval,
    "storage": settings.STORAGES["default"]["BACKEND"],
    "media": str(settings.MEDIA_ROOT),
    "serializers": [app.conf.task_serializer, app.conf.result_serializer, app.conf.accept_content],
    "beat": sorted(entry["task"] for entry in app.conf.beat_schedule.values()),
}))
"""


def test_embedded_defaults_need_no_server_and_keep_the_sqlite_broker_responsive():
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    result = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "shell", "-c", EMBEDDED],
        env={**base, "DATA_DIR": str(settings.BASE_DIR / "var")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["database"] == "django.db.backends.sqlite3"
    assert found["broker"].startswith("sqla+sqlite:///")
    # kombu hands every transport option to SQLAlchemy's create_engine: none may be a polling
    # interval, which is set on the transport instead.
    assert "polling_interval" not in (found["transport_options"] or {})
    assert found["polling_interval"] == pytest.approx(0.1)
    assert found["storage"] == "django.core.files.storage.FileSystemStorage"
    assert found["media"].endswith("media")
    assert found["serializers"] == ["json", "json", ["json"]]
    assert "messaging.tasks.dispatch_due" in found["beat"]


def test_the_migrations_hold_every_model_change(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"a model change has no migration:\n{out.getvalue()}")
