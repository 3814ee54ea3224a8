"""Emails people act on. Each function is called after the commit that made it true, and never
lets a mail failure undo or block the state change that caused it."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from messaging.core.addresses import absolute_url
from messaging.models import OutboundMessage

log = logging.getLogger(__name__)


def _email_author(message_id: int, subject: str, template: str, extra_context) -> None:
    """Email the person who wrote message `message_id`, if they still have an address."""
    message = (
        OutboundMessage.objects.select_related("created_by", "team")
        .prefetch_related("recipients")
        .filter(pk=message_id)
        .first()
    )
    if message is None or message.created_by is None or not message.created_by.email:
        return
    recipients = list(message.recipients.all())
    context = {
        "message": message,
        "url": absolute_url(reverse("message_detail", args=[message.pk]), message.origin),
        **extra_context(recipients),
    }
    try:
        send_mail(
            f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
            render_to_string(template, context),
            None,
            [message.created_by.email],
        )
    except Exception:
        log.exception("Could not email the author of message %s (%s)", message_id, subject)


def message_failed(message_id: int) -> None:
    """Tell the person who wrote a message that it failed for good, why, and what to do."""
    _email_author(
        message_id,
        "Your message could not be sent",
        "email/message_failed.txt",
        lambda recipients: {"recipients": [r.phone_number for r in recipients]},
    )


def message_undelivered(message_id: int) -> None:
    """Tell the person who wrote a message that RingCentral accepted it but could not deliver
    it to some or all recipients (opted out, landline, spam filter…), with each reason and fix.

    Called once per message: only the transition into a delivery failure schedules it."""
    _email_author(
        message_id,
        "Your message was not delivered",
        "email/message_not_delivered.txt",
        lambda recipients: {
            "failed": [r for r in recipients if r.error_reason and r.status != "delivered"],
            "delivered": [r.phone_number for r in recipients if r.status == "delivered"],
        },
    )
