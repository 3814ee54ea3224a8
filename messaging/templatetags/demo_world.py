"""`{% demo_world as demo %}`: what the built-in emulator's demo world does, for the welcome page.

Read from the demo world itself (emulator/demo.py seeded into an emulator that is never
started), so the page names the same users, numbers and outcomes the emulator will act out.
"""

from __future__ import annotations

import functools

from django import template
from django.conf import settings
from django.core.mail.backends import console
from django.utils.module_loading import import_string

from messaging.core.phones import format_number
from messaging.models import MessageStatus
from messaging.outbox import delivery_errors
from messaging.ringcentral.emulator import Emulator, demo

register = template.Library()

# The status the outbox ends with for each emulated outcome (see the emulator's README).
_FINAL_STATUS = {
    "delivered": MessageStatus.DELIVERED,
    "delivery_failed": MessageStatus.DELIVERY_FAILED,
    "sending_failed": MessageStatus.SENDING_FAILED,
    "no_receipt": MessageStatus.SENT,
}


@register.simple_tag
def demo_world() -> dict:
    """Keys: `office` (name, extension, email of the user to pick on the sign-in page),
    `main_number` and `main_label` (the number that sends texts and pictures), `recipients`
    (number, status, later, reason, code — one per scripted recipient: delivered first, then
    the failures, then the one that never settles),
    `emails_in_terminal` (sign-up emails go to the console)."""
    world = dict(_world())
    world["emails_in_terminal"] = issubclass(
        import_string(settings.EMAIL_BACKEND), console.EmailBackend
    )
    return world


def _later(outcome: str) -> str:
    """What a message that never settles becomes once tracking gives up on it."""
    if outcome != "no_receipt":
        return ""
    hours = round(settings.TRACKING_GIVE_UP_AFTER / 3600)
    return f"{MessageStatus.NO_RECEIPT.label} after {hours} hours"


@functools.cache
def _world() -> dict:
    emu = Emulator()
    seeded = demo.seed_demo(emu)
    main = seeded.office.number(demo.DEMO_NUMBER_SMS_MMS)
    found = []
    for name in dir(demo):
        if not name.startswith("DEMO_RECIPIENT_"):
            continue
        number = getattr(demo, name)
        behaviour = emu.world.behaviour_for(number, emu.config.default_outcome)
        if behaviour.error_code:
            reason = delivery_errors.explain(behaviour.error_code).reason
        elif behaviour.outcome == "no_receipt":
            reason = delivery_errors.NO_RECEIPT_REASON
        else:
            reason = ""
        found.append(
            (
                list(_FINAL_STATUS).index(behaviour.outcome),
                {
                    "number": format_number(number),
                    "status": _FINAL_STATUS[behaviour.outcome].label,
                    "reason": reason,
                    "code": behaviour.error_code or "",
                    "later": _later(behaviour.outcome),
                },
            )
        )
    # Delivered first, then the failures, then the one that never settles.
    recipients = [entry for _, entry in sorted(found, key=lambda item: item[0])]
    return {
        "office": {
            "name": seeded.office.name,
            "extension": seeded.office.extension_number,
            "email": seeded.office.email,
        },
        "main_number": format_number(main.phone_number),
        "main_label": main.label,
        "recipients": recipients,
    }
