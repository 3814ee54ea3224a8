"""RingCentral webhook subscriptions: the request bodies and answers of
`RingCentralClient.create_subscription`, `get_subscription`, `renew_subscription` and
`delete_subscription`.

    info = client.create_subscription(address="https://portal.example/…/webhook/", token=…)
    info = client.renew_subscription(info.id)      # Light group
    info = client.get_subscription(info.id)        # Light group; status "Active" or "Blacklisted"
    client.delete_subscription(info.id)            # Medium group

Creation makes RingCentral call `address` first with a `Validation-Token` header that the
endpoint must echo within 3 s (else HTTP 400 SUB-525); `token` comes back on every delivery in
a `Verification-Token` header. An expired subscription reads as 404 (SUB-507) and a deleted one
as 404: both raise `errors.NotFound`, which callers treat as "gone, create a new one".

Three filters: changes to the user's outbound SMS/MMS (the notifications carry counts, not the ids
of changed messages, so callers read the message store afterwards), instant notifications of
received SMS/MMS, which carry the whole message, and changes to the account's SMS consent list
(opt-outs and opt-ins, the changed records whole; consents.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from . import errors, paths
from .records import parse_time

OUTBOUND_SMS_FILTER = f"{paths.MESSAGE_STORE}?type=SMS&direction=Outbound"
INSTANT_SMS_FILTER = f"{paths.MESSAGE_STORE}/instant?type=SMS"
CONSENTS_FILTER = paths.SMS_CONSENTS
EVENT_FILTERS = (OUTBOUND_SMS_FILTER, INSTANT_SMS_FILTER, CONSENTS_FILTER)
# What a subscription asks for when RingCentral refuses consent events for the account (its
# app lacks the permission, or the account has no consent list): messages still come by webhook.
MESSAGE_FILTERS = (OUTBOUND_SMS_FILTER, INSTANT_SMS_FILTER)
# RingCentral's ceiling for a WebHook subscription's lifetime (10 years).
MAX_EXPIRES_IN = 315_360_000
ACTIVE = "Active"
BLACKLISTED = "Blacklisted"


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    status: str
    expires_in: int
    # On our clock: when the answer arrived plus `expires_in`.
    expires_at: datetime
    # RingCentral's own `expirationTime`, for display and logs.
    expiration_time: datetime | None = None
    blacklist_reason: str = ""

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE


def build_create(
    address: str, token: str, expires_in: int, filters=EVENT_FILTERS
) -> dict[str, Any]:
    """The JSON body of `POST /restapi/v1.0/subscription`."""
    if not 1 <= int(expires_in) <= MAX_EXPIRES_IN:
        raise ValueError(f"expires_in must be between 1 and {MAX_EXPIRES_IN}")
    return {
        "eventFilters": list(filters),
        "deliveryMode": {
            "transportType": "WebHook",
            "address": address,
            "verificationToken": token,
        },
        "expiresIn": int(expires_in),
    }


def checked_id(subscription_id: str) -> str:
    value = str(subscription_id)
    if not value or "/" in value or "?" in value or len(value) > 64:
        raise ValueError("not a RingCentral subscription id")
    return value


def parse_subscription(data: dict[str, Any]) -> SubscriptionInfo:
    received_at = timezone.now()
    try:
        subscription_id = str(data["id"])
        expires_in = int(data.get("expiresIn") or 0)
    except (KeyError, TypeError, ValueError):
        raise errors.UnexpectedResponse("subscription answer without id or expiresIn") from None
    expiration_time = parse_time(data.get("expirationTime"))
    blacklisted = data.get("blacklistedData") or {}
    return SubscriptionInfo(
        id=subscription_id,
        status=str(data.get("status") or ""),
        expires_in=expires_in,
        expires_at=received_at + timedelta(seconds=max(expires_in, 0)),
        expiration_time=expiration_time,
        blacklist_reason=str(blacklisted.get("reason") or "")
        if isinstance(blacklisted, dict)
        else "",
    )
