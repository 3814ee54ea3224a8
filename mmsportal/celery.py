"""The Celery app. Configuration lives in settings.py under the CELERY_ prefix."""

import os

from celery import Celery, signals
from django.db import close_old_connections
from kombu.transport import sqlalchemy as kombu_sqlalchemy

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mmsportal.settings")

# The embedded broker (kombu's SQLAlchemy transport) polls its table, once a second by default.
# It passes every broker_transport_options key to SQLAlchemy's create_engine, so the interval
# cannot go there; set it on the transport instead to keep the queue responsive.
kombu_sqlalchemy.Transport.polling_interval = 0.1

app = Celery("mmsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each room of the messaging app keeps its tasks beside the code that schedules them.
app.autodiscover_tasks(
    [
        "messaging.api",
        "messaging.campaigns",
        "messaging.compose",
        "messaging.contacts",
        "messaging.inbox",
        "messaging.links",
        "messaging.sending",
        "messaging.tracking",
    ]
)


@signals.task_postrun.connect
def _drop_broken_connections(**kwargs) -> None:
    # Workers keep their database connection across tasks (CELERY_DB_REUSE_MAX); as after a web
    # request, one that failed or outlived CONN_MAX_AGE is closed here and the next task opens a
    # fresh one, instead of every later task failing on it.
    close_old_connections()
