"""The Celery app. Configuration lives in settings.py under the CELERY_ prefix."""

import os

from celery import Celery
from kombu.transport import sqlalchemy as kombu_sqlalchemy

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mmsportal.settings")

# The embedded broker (kombu's SQLAlchemy transport) polls its table, once a second by default.
# It passes every broker_transport_options key to SQLAlchemy's create_engine, so the interval
# cannot go there; set it on the transport instead to keep the queue responsive.
kombu_sqlalchemy.Transport.polling_interval = 0.1

app = Celery("mmsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
