"""Emails about a link: sent after the commit that made them true, never blocking it."""

import logging

from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from messaging.core.addresses import absolute_url
from messaging.models import Membership, RingCentralConnection, Role

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
    # The admins of its team and of every team it was brought into.
    admins = Membership.objects.filter(
        Q(team=connection.team) | Q(team__connection_shares__connection=connection),
        role__in=[Role.OWNER, Role.ADMIN],
    ).select_related("user")
    recipients = {m.user.email for m in admins if m.user.email}
    if connection.linked_by and connection.linked_by.email:
        recipients.add(connection.linked_by.email)
    if not recipients:
        return
    context = {
        "connection": connection,
        "team": connection.team,
        "page_url": absolute_url(reverse("ringcentral"), connection.origin),
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
