"""Consent against the emulator, over a real socket: every source changes the ledger
(RingCentral's list read at link time and by beat, its webhook events, STOP/START texted to a
team number, a 413 delivery report, a team admin by hand, which reaches RingCentral's list),
and bad events change nothing."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.consent import actions, checks
from messaging.inbox import sync as inbox_sync
from messaging.links import connections
from messaging.models import (
    ConsentChange,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    MessageStatus,
    Role,
    WebhookSubscription,
)
from messaging.ringcentral import subscriptions as rc_subscriptions
from messaging.tracking import consents, polling
from messaging.tracking import subscriptions as tracking
from messaging.tracking.tasks import push_consent, read_consents_due
from tests.rc_fixtures import NUMBER_SMS_MMS, NUMBER_SMS_ONLY, journal, link_directly
from tests.tracking_helpers import fresh_limits, link_sender, send  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")

CONTACT = "+16505550211"
OTHER = "+16505550212"
OUT, IN = ConsentState.OPTED_OUT, ConsentState.OPTED_IN


@pytest.fixture
def linked(emulator, team, alice, rc_user):
    return link_sender(emulator, team, alice, rc_user)


def blocked(connection, number=NUMBER_SMS_MMS, contact=CONTACT) -> bool:
    return contact in checks.opted_out(
        connection.team_id, [contact], from_number=number, account_id=connection.account_id
    )


def test_the_whole_list_is_read_when_a_link_is_made_and_unknown_numbers_are_ignored(
    emulator, linked, rc_user, caplog
):
    connection, _ = linked
    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut", "Recipient")
    emulator.set_consent("*", OTHER, "OptOut", "Api", account_id=rc_user.account_id)
    emulator.add_extension(
        name="Somebody else", numbers=[{"phone_number": "+16505550177", "features": ["SmsSender"]}]
    )
    emulator.set_consent("+16505550177", CONTACT, "OptOut", account_id=rc_user.account_id)

    counts = consents.read_all(connection.pk)

    assert counts["changed"] == 2
    assert blocked(connection)
    assert not blocked(connection, NUMBER_SMS_ONLY)
    assert blocked(connection, NUMBER_SMS_ONLY, OTHER)  # "*": every number of the account
    record = ConsentRecord.objects.get(contact_number=CONTACT, from_number=NUMBER_SMS_MMS)
    assert (record.source, record.account_id) == (ConsentSource.RINGCENTRAL, connection.account_id)
    # A record for a number the team does not have is left out (and logged).
    assert not ConsentRecord.objects.filter(from_number="+16505550177").exists()
    # Both opt-outs and opt-ins are asked for, in pages of up to 1000.
    [read] = journal(emulator, "/sms/consents")
    assert read.query["optStatus"] == ["OptOut", "OptIn"]


@pytest.mark.django_db(transaction=True)
def test_linking_reads_the_list_once_the_links_numbers_are_known(emulator, team, alice, rc_user):
    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut", "Recipient")

    connection = link_directly(emulator, team, alice, rc_user)
    assert not ConsentRecord.objects.exists()  # its numbers are not known yet
    connections.sync_numbers(connection)  # as the linking page does next

    assert blocked(connection)
    assert ConsentRecord.objects.get().source == ConsentSource.RINGCENTRAL


@pytest.mark.django_db(transaction=True)
def test_linking_through_the_browser_reads_the_list(emulator, client, alice, team, rc_user):
    from tests.conftest import client_for
    from tests.rc_fixtures import link_through_browser

    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut", "Recipient")
    browser = client_for(type(client), alice, team)

    response = link_through_browser(browser, emulator, rc_user)

    assert response.status_code == 302
    assert ConsentRecord.objects.get(contact_number=CONTACT).from_number == NUMBER_SMS_MMS
    flashed = [str(m) for m in browser.get(response["Location"]).context["messages"]]
    assert any(m.startswith("Phone numbers updated") for m in flashed)


def test_beat_reads_the_list_of_links_without_a_working_webhook(emulator, linked):
    connection, _ = linked
    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut")
    assert read_consents_due()["changed"] == 1
    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptIn")
    read_consents_due()
    assert not blocked(connection)
    assert list(
        ConsentChange.objects.filter(record__contact_number=CONTACT).values_list("state", flat=True)
    ) == [IN, OUT]


def test_beat_leaves_links_whose_webhook_brings_consent_events(emulator, linked):
    connection, _ = linked
    WebhookSubscription.objects.create(
        connection=connection,
        created_at=timezone.now(),
        status="active",
        rc_subscription_id="sub-1",
        expires_at=timezone.now() + timedelta(days=30),
        event_filters=list(rc_subscriptions.EVENT_FILTERS),
    )
    assert read_consents_due() == {}
    assert journal(emulator, "/sms/consents") == []


def test_stop_and_start_texted_to_a_team_number_change_the_ledger(emulator, linked):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)

    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "Stop")
    inbox_sync.sync_connection(connection.pk)
    assert blocked(connection)
    assert not blocked(connection, NUMBER_SMS_ONLY)  # only towards the number texted
    record = ConsentRecord.objects.get(contact_number=CONTACT)
    assert (record.source, record.note) == (ConsentSource.KEYWORD, "Replied STOP")

    emulator.advance(5)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "please stop it")  # not a keyword
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "START")
    inbox_sync.sync_connection(connection.pk)
    assert not blocked(connection)


def test_a_413_delivery_report_opts_the_recipient_out_of_that_number(emulator, linked, alice):
    connection, number = linked
    # RingCentral knows of the opt-out; the portal does not yet.
    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut")
    message = send(emulator, number, alice, [CONTACT])
    emulator.advance(60)

    polling.refresh_connection(connection.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING_FAILED
    record = ConsentRecord.objects.get(contact_number=CONTACT)
    assert (record.source, record.from_number, record.account_id, record.note) == (
        ConsentSource.DELIVERY_REPORT,
        NUMBER_SMS_MMS,
        connection.account_id,
        "SMS-RC-413",
    )
    assert blocked(connection)


def test_an_opt_out_by_hand_reaches_ringcentrals_list_and_start_lifts_it(
    emulator, linked, team, alice, django_capture_on_commit_callbacks
):
    connection, _ = linked
    membership = team.memberships.get(user=alice)
    assert membership.can(Role.ADMIN)
    with django_capture_on_commit_callbacks() as callbacks:
        record, changed = actions.set_by_hand(
            membership, CONTACT, opted_out=True, note="Asked by phone"
        )
    assert changed and len(callbacks) == 1  # the write to RingCentral, after commit

    assert push_consent(record.pk) == {"written": 1}

    [patch] = [e for e in journal(emulator, "/sms/consents") if e.method == "PATCH"]
    assert patch.json == {
        "records": [{"from": "*", "to": CONTACT, "optStatus": "OptOut", "source": "Api"}]
    }
    assert emulator.opted_out(NUMBER_SMS_MMS, CONTACT)
    assert emulator.opted_out(NUMBER_SMS_ONLY, CONTACT)
    assert blocked(connection) and blocked(connection, NUMBER_SMS_ONLY)

    # The contact texts START to one number: that number may text them again, here and at
    # RingCentral; the other number still may not.
    emulator.advance(5)
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "START")
    inbox_sync.sync_connection(connection.pk)
    assert not blocked(connection)
    assert blocked(connection, NUMBER_SMS_ONLY)
    assert not emulator.opted_out(NUMBER_SMS_MMS, CONTACT)


def test_an_opt_in_by_hand_also_lifts_ringcentrals_opt_outs_of_single_numbers(
    emulator, linked, team, alice
):
    connection, _ = linked
    emulator.inbound(CONTACT, NUMBER_SMS_MMS, "STOP")
    inbox_sync.sync_connection(connection.pk)
    assert blocked(connection)
    emulator.advance(5)

    record, _ = actions.set_by_hand(team.memberships.get(user=alice), CONTACT, opted_out=False)
    push_consent(record.pk)

    assert not blocked(connection)
    assert not emulator.opted_out(NUMBER_SMS_MMS, CONTACT)


def test_a_changed_record_arrives_by_webhook_and_a_forged_one_is_refused(
    emulator, linked, live_server, settings, client
):
    connection, _ = linked
    settings.PUBLIC_BASE_URL = live_server.url
    assert tracking.maintain_subscription(connection.pk) == "created"
    sub = WebhookSubscription.objects.get(connection=connection)
    assert rc_subscriptions.CONSENTS_FILTER in sub.event_filters

    emulator.set_consent(NUMBER_SMS_MMS, CONTACT, "OptOut", "Api")
    assert emulator.wait_for_deliveries()

    [delivery] = [d for d in emulator.deliveries if "/sms/consents" in d.payload["event"]]
    assert delivery.ok
    record = ConsentRecord.objects.get(contact_number=CONTACT)
    assert (record.source, record.from_number) == (ConsentSource.RINGCENTRAL, NUMBER_SMS_MMS)

    forged = dict(delivery.payload)
    forged["body"] = {"records": [{**forged["body"]["records"][0], "to": OTHER}]}
    answer = client.post(
        "/ringcentral/webhook/",
        json.dumps(forged),
        content_type="application/json",
        headers={"Verification-Token": f"{sub.pk}.forged"},
    )
    assert answer.status_code == 403
    assert not ConsentRecord.objects.filter(contact_number=OTHER).exists()

    # With the right token, an event without records is a 400 and one for a number the team
    # does not have changes nothing.
    token = {"Verification-Token": sub.verification_token}
    empty = {**delivery.payload, "body": {"records": "nope"}}
    answer = client.post(
        "/ringcentral/webhook/", json.dumps(empty), content_type="application/json", headers=token
    )
    assert answer.status_code == 400
    stranger = {
        **delivery.payload,
        "body": {"records": [{**delivery.payload["body"]["records"][0], "from": "+16505550177"}]},
    }
    answer = client.post(
        "/ringcentral/webhook/",
        json.dumps(stranger),
        content_type="application/json",
        headers=token,
    )
    assert answer.status_code == 200
    assert ConsentRecord.objects.count() == 1


def test_a_webhook_refused_consent_events_still_brings_messages_and_asks_again_a_day_later(
    emulator, linked, live_server, settings
):
    connection, _ = linked
    settings.PUBLIC_BASE_URL = live_server.url
    app = emulator.world.apps[settings.RINGCENTRAL_CLIENT_ID]
    full_scopes = app.scopes
    app.scopes = tuple(s for s in full_scopes if s != "SMS")

    assert tracking.maintain_subscription(connection.pk) == "created"
    sub = WebhookSubscription.objects.get(connection=connection)
    assert sub.event_filters == list(rc_subscriptions.MESSAGE_FILTERS)
    assert sub.consents_refused_at is not None
    # Messages still come by webhook; beat reads the consent list instead (refused here too, as
    # this app lacks the permission).
    assert tracking.maintain_subscription(connection.pk, verify=True) == "checked"
    assert read_consents_due() == {"failed": 1}

    app.scopes = full_scopes
    later = timezone.now() + timedelta(days=1, minutes=1)
    assert tracking.maintain_subscription(connection.pk, now=later) == "created"
    sub.refresh_from_db()
    assert sub.event_filters == list(rc_subscriptions.EVENT_FILTERS)
    assert sub.consents_refused_at is None
