"""One delivery attempt: sign the event, post it to the checked address, log what happened,
and decide when to try again.

Every attempt is signed afresh per Standard Webhooks (the `standardwebhooks` package):
`webhook-id` is the delivery's event id (the same on every retry, so a receiver can drop
duplicates), `webhook-timestamp` the time of this attempt and `webhook-signature` the HMAC-SHA256
of `id.timestamp.body` with the endpoint's secret. A 2xx answer is a success; anything else,
including a redirect (never followed), a timeout or a refused address, is a failure.

Retries wait `RETRY_SCHEDULE[n]` after the n-th failed attempt (5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h: a little over a day in all); after the last the delivery is failed. An endpoint
whose attempts have all failed for `DISABLE_AFTER` is disabled and the team's admins emailed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from messaging.hooks import addresses, endpoints, notifications
from messaging.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
DISABLE_AFTER = timedelta(hours=24)
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
# A claimed delivery is not claimed again before this, even if its worker died mid-attempt.
LEASE = timedelta(seconds=60)
USER_AGENT = "mmsportal-webhooks/1"


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def body_of(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, event_id: str, body: str) -> dict[str, str]:
    now = timezone.now()
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }


@dataclass(frozen=True)
class Answer:
    code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def post(url: str, body: str, headers: dict[str, str]) -> Answer:
    """POST to `url` at an address checked by `addresses.resolve` (see its module)."""
    started = time.monotonic()

    def answer(code, error=""):
        return Answer(code, error[:300], int((time.monotonic() - started) * 1000))

    try:
        scheme, host, port = addresses.split(url)
        checked = addresses.resolve(host, port)
    except addresses.UnsafeAddress as refused:
        return answer(None, str(refused))
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    last_error = ""
    for address in checked:
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
                timeout=TIMEOUT,
                retries=False,
                maxsize=1,
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                address, port, timeout=TIMEOUT, retries=False, maxsize=1
            )
        try:
            response = pool.urlopen(
                "POST",
                path,
                body=body.encode(),
                headers={**headers, "host": host_header},
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
            )
            # Only the status counts: the body is never read, so a receiver cannot hold a
            # worker by sending one slowly (the pool, and with it the connection, is closed).
            code = response.status
            return answer(code, "" if 200 <= code < 300 else f"HTTP {code}")
        except urllib3.exceptions.NewConnectionError as exc:
            last_error = f"Could not connect: {exc.__class__.__name__}"
        except urllib3.exceptions.HTTPError as exc:
            return answer(None, f"{exc.__class__.__name__}: {exc}")
        finally:
            pool.close()
    return answer(None, last_error or "Could not connect.")


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > now):
            return None
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["next_attempt_at"])
    return delivery


def attempt(delivery_id: int) -> float | None:
    """Try a due delivery once; the seconds until its next try, or None when it is done (or
    was not due: another worker has it, or it was settled meanwhile)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="The endpoint is disabled.",
        )
        return None
    body = body_of(delivery.payload)
    result = post(endpoint.url, body, signed_headers(endpoint.secret, delivery.event_id, body))
    return _record(delivery, endpoint, result)


def _record(delivery: WebhookDelivery, endpoint: WebhookEndpoint, result: Answer) -> float | None:
    now = timezone.now()
    tried = delivery.attempts + 1
    fields = {
        "attempts": tried,
        "last_response_code": result.code,
        "last_error": result.error,
        "next_attempt_at": None,
    }
    delay = None
    disabled = False
    with transaction.atomic():
        if result.ok:
            fields["status"] = DeliveryStatus.SUCCEEDED
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
                failing_since=None
            )
        else:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
                failing_since=now
            )
            failing_since = (
                WebhookEndpoint.objects.filter(pk=endpoint.pk)
                .values_list("failing_since", flat=True)
                .first()
            )
            if failing_since and now - failing_since >= DISABLE_AFTER:
                disabled = _disable(endpoint)
                fields["status"] = DeliveryStatus.FAILED
            elif tried > len(RETRY_SCHEDULE):
                fields["status"] = DeliveryStatus.FAILED
            else:
                delay = RETRY_SCHEDULE[tried - 1]
                fields["status"] = DeliveryStatus.PENDING
                fields["next_attempt_at"] = now + timedelta(seconds=delay)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            succeeded=result.ok,
            response_code=result.code,
            duration_ms=result.duration_ms,
            error=result.error,
            next_attempt_at=fields["next_attempt_at"],
        )
    if disabled:
        transaction.on_commit(lambda: notifications.endpoint_disabled(endpoint.pk), robust=True)
    return delay


def _disable(endpoint: WebhookEndpoint) -> bool:
    """Disable a failing endpoint once (True only for the call that disabled it) and fail its
    other waiting deliveries."""
    won = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False,
        disabled_reason="Every delivery failed for a day.",
        updated_at=timezone.now(),
    )
    if won:
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="The endpoint was disabled after a day of failures.",
        )
        endpoints.forget(endpoint.team_id)
    return bool(won)


def redeliver(delivery: WebhookDelivery) -> None:
    """Try a delivery again now, whatever became of it, with a fresh round of retries."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None
    )
