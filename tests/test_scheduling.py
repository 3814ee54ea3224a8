"""Scheduled sends: created scheduled by compose and reply, released by the beat task when their
time comes (simulated clock) and then sent to the emulator over a real socket; changed and
canceled before their time; after downtime sent at once or held; waiting out quiet hours;
refused in the past and in a DST gap; listed in the Scheduled folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from html import unescape
from unittest import mock

import pytest
from django.utils import timezone

from messaging.compose import submission
from messaging.inbox import storing
from messaging.links import connections
from messaging.models import (
    Conversation,
    Membership,
    MessageSource,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
    TeamMessagingSettings,
)
from messaging.ringcentral.records import parse_message
from messaging.sending import tasks
from tests.rc_fixtures import NUMBER_SMS_MMS, journal, link_directly
from tests.test_inbox import inbound
from tests.test_send_task import _isolated, clear_shared_limiter  # noqa: F401 - autouse fixture

TO = "+16505550181"


@pytest.fixture
def linked(emulator, rc_user, team, alice):
    clear_shared_limiter()
    connection = link_directly(emulator, team, alice, rc_user)
    connections.sync_numbers(connection)
    emulator.reset()
    return connection


@pytest.fixture
def number(linked):
    return linked.numbers.get(phone_number=NUMBER_SMS_MMS)


@pytest.fixture
def membership(team, alice):
    return Membership.objects.get(team=team, user=alice)


def at_clock(moment):
    """The portal's clock reads `moment` (the release task and the state machine ask it)."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def schedule(membership, number, send_at, text="See you at 10"):
    (message,) = submission.send(
        membership, sender=number.pk, to=TO, text=text, send_at=send_at, schedule_zone="UTC"
    )
    message.refresh_from_db()
    return message


def posts(emu):
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def status(message):
    return OutboundMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def test_a_scheduled_message_leaves_on_time_and_is_sent_over_the_socket(
    emulator, membership, number
):
    send_at = timezone.now() + timedelta(hours=2)
    message = schedule(membership, number, send_at)
    assert message.status == MessageStatus.SCHEDULED
    assert message.scheduled_for == send_at and message.next_attempt_at == send_at
    # A worker handed it early does nothing: it is not claimable.
    assert tasks.send_message(message.pk) != "sent" and posts(emulator) == []
    with at_clock(send_at - timedelta(seconds=20)):
        assert tasks.release_scheduled() == {"queued": 0, "held": 0, "waiting": 0}
    assert status(message) == MessageStatus.SCHEDULED
    # Beat runs every 15 s: the first run after its time releases it.
    with at_clock(send_at + timedelta(seconds=14)):
        assert tasks.release_scheduled()["queued"] == 1
    assert status(message) == MessageStatus.QUEUED
    assert tasks.send_message(message.pk) == "sent"
    (post,) = posts(emulator)
    assert post.status == 200
    assert status(message) == MessageStatus.SENT
    kinds = list(message.events.values_list("kind", flat=True))
    assert kinds[:2] == ["scheduled", "released"]


def test_it_is_changed_and_canceled_before_its_time(
    emulator, membership, number, alice_client, victor_client, charlie_client
):
    message = schedule(membership, number, timezone.now() + timedelta(days=1))
    url = f"/messages/{message.pk}/"
    page = unescape(alice_client.get(url).content.decode())
    assert "Scheduled for:" in page and "Change it before it goes" in page
    new_local = (timezone.now() + timedelta(days=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    change = {"send_at": new_local, "time_zone": "UTC", "text": "See you at 11 instead"}
    assert charlie_client.post(f"{url}reschedule/", change).status_code == 404
    assert victor_client.post(f"{url}reschedule/", change).status_code == 403
    assert alice_client.post(f"{url}reschedule/", change).status_code == 302
    message.refresh_from_db()
    assert message.text == "See you at 11 instead"
    assert message.scheduled_for.strftime("%Y-%m-%dT%H:%M") == new_local
    assert message.status == MessageStatus.SCHEDULED
    # A time in the past is refused, and nothing changes.
    past = {"send_at": "2020-01-01T10:00", "time_zone": "UTC", "text": "x"}
    response = alice_client.post(f"{url}reschedule/", past, follow=True)
    assert "has passed" in unescape(response.content.decode())
    message.refresh_from_db()
    assert message.text == "See you at 11 instead"
    assert alice_client.post(f"{url}cancel/").status_code == 302
    assert status(message) == MessageStatus.CANCELED
    assert message.recipients.get().status == RecipientStatus.CANCELED
    with at_clock(timezone.now() + timedelta(days=3)):
        assert tasks.release_scheduled()["queued"] == 0
    assert posts(emulator) == []


def test_after_downtime_a_little_late_goes_at_once_and_far_too_late_is_held(
    emulator, membership, number, alice_client, settings
):
    settings.SCHEDULE_MAX_LATENESS = 6 * 3600
    send_at = timezone.now() + timedelta(hours=1)
    a_little = schedule(membership, number, send_at, text="A little late")
    with at_clock(send_at - timedelta(hours=9)):
        too_late = schedule(membership, number, send_at - timedelta(hours=7), text="Too late")
    # The portal was down; it comes back an hour after the first one's time.
    with at_clock(send_at + timedelta(hours=1)):
        released = tasks.release_scheduled()
    assert released["queued"] == 1 and released["held"] == 1
    assert status(a_little) == MessageStatus.QUEUED
    assert status(too_late) == MessageStatus.HELD
    assert tasks.send_message(a_little.pk) == "sent"
    page = unescape(alice_client.get(f"/messages/{too_late.pk}/").content.decode())
    assert "Held: its scheduled time passed long ago" in page
    assert "while the portal was not sending" in page
    assert "Send now" in page and "Cancel sending" in page
    assert "Held" in alice_client.get("/messages/?folder=attention").content.decode()
    # "Send now" sends it.
    assert alice_client.post(f"/messages/{too_late.pk}/send-now/").status_code == 302
    assert status(too_late) == MessageStatus.QUEUED
    assert tasks.send_message(too_late.pk) == "sent"
    assert len(posts(emulator)) == 2


def test_quiet_hours_delay_the_release_to_their_end_and_the_outbox_says_so(
    emulator, membership, number, team, alice_client
):
    TeamMessagingSettings.objects.create(
        team=team,
        quiet_hours_enabled=True,
        quiet_start=time(21, 0),
        quiet_end=time(8, 0),
        time_zone="UTC",
    )
    tomorrow = (timezone.now() + timedelta(days=1)).astimezone(UTC).date()
    send_at = datetime.combine(tomorrow, time(22, 30), tzinfo=UTC)
    message = schedule(membership, number, send_at)
    with at_clock(send_at + timedelta(seconds=5)):
        assert tasks.release_scheduled()["waiting"] == 1
    message.refresh_from_db()
    opening = datetime.combine(tomorrow + timedelta(days=1), time(8, 0), tzinfo=UTC)
    assert message.status == MessageStatus.SCHEDULED and message.next_attempt_at == opening
    page = unescape(alice_client.get(f"/messages/{message.pk}/").content.decode())
    assert "it waits for the end of the team's quiet hours" in page
    assert "Waiting for the team's quiet hours to end" in page
    with at_clock(opening - timedelta(minutes=1)):
        assert tasks.release_scheduled()["queued"] == 0
    with at_clock(opening + timedelta(seconds=10)):
        assert tasks.release_scheduled()["queued"] == 1
    assert tasks.send_message(message.pk) == "sent"
    assert len(posts(emulator)) == 1


def compose_later(client, number, send_at, zone="Europe/Paris", **extra):
    data = {
        "sender": str(number.pk),
        "to": TO,
        "text": "Your appointment",
        "mode": "separate",
        "send_later": "on",
        "send_at": send_at,
        "time_zone": zone,
    }
    data.update(extra)
    return client.post("/messages/compose/", data)


def errors(response):
    html = unescape(response.content.decode())
    return re.findall(r"<li>([^<]*)</li>", html)


def test_compose_schedules_in_the_browsers_zone_and_refuses_the_past_and_a_dst_gap(
    emulator, number, alice_client
):
    # 02:30 on the night Paris goes from 02:00 to 03:00 does not exist.
    gap = compose_later(alice_client, number, "2030-03-31T02:30")
    assert gap.status_code == 400
    assert any("does not exist in Europe/Paris" in e for e in errors(gap))
    past = compose_later(alice_client, number, "2020-06-01T09:00")
    assert past.status_code == 400
    assert any("has passed" in e for e in errors(past))
    nonsense = compose_later(alice_client, number, "next tuesday")
    assert nonsense.status_code == 400
    assert not OutboundMessage.objects.exists()
    # Summer in Paris is UTC+2: 09:15 there is 07:15 UTC.
    response = compose_later(alice_client, number, "2030-07-01T09:15")
    assert response.status_code == 302
    message = OutboundMessage.objects.get()
    assert message.status == MessageStatus.SCHEDULED
    assert message.scheduled_for == datetime(2030, 7, 1, 7, 15, tzinfo=UTC)
    assert message.scheduled_zone == "Europe/Paris"
    page = unescape(alice_client.get(f"/messages/{message.pk}/").content.decode())
    assert "Mon 01 Jul 2030, 09:15 (Europe/Paris)" in page
    # Without a zone from the browser, the team's zone (here the default) is used.
    compose_later(alice_client, number, "2030-07-01T09:15", zone="")
    assert OutboundMessage.objects.latest("pk").scheduled_zone == "UTC"


def test_the_scheduled_folder_lists_scheduled_and_held_messages(
    emulator, membership, number, alice_client
):
    waiting = schedule(membership, number, timezone.now() + timedelta(hours=3), text="Later on")
    now_one = submission.send(membership, sender=number.pk, to=TO, text="Right away")[0]
    listed = alice_client.get("/messages/?folder=scheduled").content.decode()
    assert f"/messages/{waiting.pk}/" in listed
    assert f"/messages/{now_one.pk}/" not in listed
    assert "Scheduled" in listed


def test_the_api_function_refuses_a_time_in_the_past(membership, number):
    with pytest.raises(submission.ComposeInvalid) as refused:
        submission.send(
            membership,
            sender=number.pk,
            to=TO,
            text="x",
            send_at=timezone.now() - timedelta(minutes=1),
        )
    assert "has passed" in refused.value.errors["send_at"][0]
    assert not OutboundMessage.objects.exists()


def test_a_reply_is_scheduled(emulator, linked, number, alice_client):
    storing.store_record(
        linked,
        parse_message(inbound("When?", sender=TO, to=(NUMBER_SMS_MMS,))),
        source=MessageSource.WEBHOOK,
    )
    conversation = Conversation.objects.get()
    url = f"/inbox/{conversation.pk}/reply/"
    refused = alice_client.post(
        url,
        {
            "text": "Soon",
            "send_later": "on",
            "send_at": "2031-03-30T01:30",
            "time_zone": "Europe/London",
        },
    )
    assert refused.status_code == 400
    assert "does not exist in Europe/London" in unescape(refused.content.decode())
    response = alice_client.post(
        url,
        {"text": "Soon", "send_later": "on", "send_at": "2031-01-10T09:00", "time_zone": "UTC"},
        follow=True,
    )
    assert response.status_code == 200
    message = OutboundMessage.objects.get()
    assert message.status == MessageStatus.SCHEDULED
    assert message.scheduled_for == datetime(2031, 1, 10, 9, 0, tzinfo=UTC)
    assert "Reply scheduled for Fri 10 Jan 2031, 09:00 (UTC)" in unescape(response.content.decode())
