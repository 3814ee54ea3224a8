"""The least a send pipeline of one Celery task per message can do, as a benchmark baseline.

`floor_send(id)` claims the message with one conditional UPDATE, reads its recipients, POSTs
the JSON with `http.client` on a kept-alive connection and records the answer with one UPDATE:
no ORM, no limiter, no attempt rows, no events, no checks of limits or links, a token read once
per process. It is not correct enough to ship (nothing survives a crash, no error is handled);
it shows what the machine, broker, database and emulator allow a correct pipeline at best.
PostgreSQL only (`now()`, `RETURNING`).
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.db import connection

from messaging.models import RingCentralConnection
from messaging.ringcentral.paths import SEND as SEND_PATH

_process: dict = {}


@shared_task(ignore_result=True)
def floor_send(message_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_outboundmessage SET status = 'sending', sending_since = now(), "
            "attempts = attempts + 1, updated_at = now() "
            "WHERE id = %s AND status IN ('queued', 'retry_wait') "
            "RETURNING from_number, text, connection_id",
            [message_id],
        )
        claimed = cursor.fetchone()
        if claimed is None:
            return
        from_number, text, connection_id = claimed
        cursor.execute(
            "SELECT phone_number FROM messaging_recipient WHERE message_id = %s", [message_id]
        )
        recipients = [row[0] for row in cursor.fetchall()]
    if "token" not in _process:
        _process["token"] = RingCentralConnection.objects.get(pk=connection_id).access_token
        server = urlsplit(settings.RINGCENTRAL_SERVER_URL)
        _process["http"] = http.client.HTTPConnection(server.hostname, server.port, timeout=30)
    body = json.dumps(
        {
            "from": {"phoneNumber": from_number},
            "to": [{"phoneNumber": number} for number in recipients],
            "text": text,
        }
    ).encode()
    _process["http"].request(
        "POST",
        SEND_PATH,
        body=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {_process['token']}",
        },
    )
    answer = json.loads(_process["http"].getresponse().read())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_outboundmessage SET status = 'sent', sent_at = now(), "
            "rc_message_id = %s, updated_at = now() WHERE id = %s AND status = 'sending'",
            [str(answer["id"]), message_id],
        )
        cursor.execute(
            "UPDATE messaging_recipient SET status = 'queued' WHERE message_id = %s", [message_id]
        )
