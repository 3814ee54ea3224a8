"""The email telling a team's owner and admins that an endpoint was disabled (sent after the
commit that disabled it, once)."""

import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from messaging.core.addresses import absolute_url
from messaging.models import Membership, Role, WebhookEndpoint

log = logging.getLogger(__name__)


def endpoint_disabled(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.select_related("team").filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    admins = Membership.objects.filter(
        team=endpoint.team, role__in=[Role.OWNER, Role.ADMIN]
    ).select_related("user")
    recipients = sorted({m.user.email for m in admins if m.user.email})
    if not recipients:
        return
    context = {
        "endpoint": endpoint,
        "team": endpoint.team,
        "page_url": absolute_url(reverse("webhook_detail", args=[endpoint.pk])),
    }
    subject = render_to_string("hooks/email/disabled_subject.txt", context).strip()
    body = render_to_string("hooks/email/disabled_message.txt", context)
    try:
        send_mail(subject, body, None, recipients)
    except Exception:
        log.exception("Could not email admins about disabled webhook endpoint %s", endpoint_id)
