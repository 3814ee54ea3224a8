"""`POST /ringcentral/webhook/`: RingCentral's notifications about sent messages.

Three kinds of request arrive here:

1. The creation handshake: a `Validation-Token` header and no body. The answer echoes the
   header with HTTP 200 and `{}` (RingCentral wants it within 3 s and under 1 KB, headers
   included); it touches nothing, not even the database.
2. A delivery: a JSON body and the subscription's verification token, in `Verification-Token`
   (RingCentral's API reference) or `Validation-Token` (its current guide). The token names its
   subscription by prefix and is compared in constant time with the stored one. Wrong or missing:
   403 and nothing changes. A body that is not a JSON object: 400.
3. Anything else: 403 or 400 by the same rules.

A verified delivery is answered 200 at once, whatever subscription or message ids it names;
the reading of the message store happens later in a Celery task (webhooks.py). A consents
notification carries the changed records whole: they go into the consent ledger at once
(consents.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import re

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from messaging.core.crypto import TokenDecryptError
from messaging.ringcentral import consents as rc_consents
from messaging.tracking import consents, subscriptions, webhooks

log = logging.getLogger(__name__)

# A handshake token is echoed in a header: only plain, short values are.
_ECHOABLE = re.compile(r"^[A-Za-z0-9._~+/=-]{1,256}$")
# Compared against when no subscription matches, so a miss takes as long as a near-miss.
_NO_TOKEN = "0." + "x" * 43


@sensitive_variables("presented", "expected")
@csrf_exempt
@require_POST
def ringcentral_webhook(request):
    validation = request.headers.get("Validation-Token", "")
    verification = request.headers.get("Verification-Token", "")
    body = request.body
    if validation and not verification and not body.strip():
        return _handshake(validation)

    subscription = None
    for presented in (verification, validation):
        if not presented:
            continue
        candidate = subscriptions.subscription_for_token(presented)
        try:
            expected = candidate.verification_token if candidate else _NO_TOKEN
        except TokenDecryptError:
            expected = _NO_TOKEN
        if hmac.compare_digest(expected.encode(), presented.encode()) and candidate:
            subscription = candidate
            break
    if subscription is None:
        log.warning("Webhook delivery refused: missing or wrong verification token")
        return JsonResponse({"error": "forbidden"}, status=403)

    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: JSON nested past Python's stack
        payload = None
    if not isinstance(payload, dict):
        return JsonResponse({"error": "body is not a JSON object"}, status=400)

    if str(payload.get("subscriptionId") or "") != subscription.rc_subscription_id:
        # Expected while a subscription is being (re-)created; harmless otherwise.
        log.info("Webhook delivery for subscription %s", subscription.pk)
    if rc_consents.is_event(payload):
        if consents.event_received(subscription, payload) == "no records":
            return JsonResponse({"error": "the delivery carries no consent records"}, status=400)
        return JsonResponse({})
    if webhooks.is_instant(payload):
        if webhooks.instant_received(subscription, payload) == "no message":
            return JsonResponse({"error": "the delivery carries no message"}, status=400)
        return JsonResponse({})
    webhooks.webhook_received(subscription, payload)
    return JsonResponse({})


def _handshake(token: str) -> HttpResponse:
    if not _ECHOABLE.match(token):
        return JsonResponse({"error": "bad Validation-Token"}, status=400)
    response = HttpResponse(b"{}", content_type="application/json", status=200)
    response["Validation-Token"] = token
    return response
