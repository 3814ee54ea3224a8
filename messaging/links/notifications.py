"""Emails about a link: sent after the commit that made them true, never blocking it."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from messaging.models import RingCentralConnection, Role

log = logging.getLogger(__name__)


def link_broken(connection_id: int) -> None:
    """Email the team's owner and admins (and the linking user) that a link broke.

    Called once per breakage: only the transaction that moves the row to `broken` schedules it.
    """
    connection = (
        RingCentralConnection.objects.select_related("team", "linked_by")
        .filter(pk=connection_id)
        .first()
    )
    if connection is None:
        return
    admins = connection.team.memberships.filter(role__in=[Role.OWNER, Role.ADMIN]).select_related(
        "user"
    )
    recipients = {m.user.email for m in admins if m.user.email}
    if connection.linked_by and connection.linked_by.email:
        recipients.add(connection.linked_by.email)
    if not recipients:
        return
    page = reverse("ringcentral")
    context = {
        "connection": connection,
        "team": connection.team,
        "page_url": f"{settings.PUBLIC_BASE_URL}{page}" if settings.PUBLIC_BASE_URL else page,
    }
    subject = render_to_string("ringcentral/email/broken_subject.txt", context).strip()
    body = render_to_string("ringcentral/email/broken_message.txt", context)
    try:
        send_mail(subject, body, None, sorted(recipients))
    except Exception:
        # The banner still tells everyone; a mail outage must not hide the breakage itself.
        log.exception(
            "Could not email admins about broken RingCentral connection %s", connection_id
        )
