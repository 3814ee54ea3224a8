"""An opted-out (number, contact) pair is refused before RingCentral is asked: at compose (and
so for replies and "send again"), by `send_message`, and for a message already queued when the
contact opted out (`outbox.states.refuse_opted_out`, asked right before a send is posted)."""

import re
from datetime import datetime
from html import unescape
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.consent import checks, ledger
from messaging.inbox import sync as inbox_sync
from messaging.models import (
    AttemptOutcome,
    ConsentSource,
    ConsentState,
    Conversation,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
)
from messaging.outbox import states
from messaging.sending.attempt import attempt
from tests.factories import make_message
from tests.rc_fixtures import NUMBER_SMS_MMS, NUMBER_SMS_ONLY, journal
from tests.tracking_helpers import fresh_limits, link_sender  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")

PAT = "+16505550150"
SAM = "+16505550151"
OUT = ConsentState.OPTED_OUT
DAY = timezone.make_aware(datetime(2026, 12, 1, 15, 0))


@pytest.fixture
def linked(emulator, team, alice, rc_user):
    connection, number = link_sender(emulator, team, alice, rc_user)
    connection.shared_with_team = True
    connection.save()
    return connection, number


def stop_from_pat(connection, number=NUMBER_SMS_MMS):
    return ledger.record(
        connection.team,
        PAT,
        OUT,
        ConsentSource.KEYWORD,
        account_id=connection.account_id,
        from_number=number,
        note="Replied STOP",
        at=DAY,
    )


def sends(emu) -> list:
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def page_errors(response) -> list[str]:
    html = response.content.decode()
    found = re.findall(r'<ul class="field-errors errorlist"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(m) for block in found for m in re.findall(r"<li>(.*?)</li>", block, re.S)]


PAT_READ = "+1 650-555-0150"
REASON = "+1 650-555-0150 opted out of texts from +1 650-555-0140 on 2026-12-01 (replied STOP)."


def test_compose_refuses_an_opted_out_recipient_naming_them_and_why(emulator, linked, bob_client):
    connection, number = linked
    stop_from_pat(connection)

    response = bob_client.post(
        "/messages/compose/",
        {"sender": str(number.pk), "to": f"{PAT}\n{SAM}", "text": "Hi", "mode": "separate"},
    )

    assert response.status_code == 400
    assert REASON in page_errors(response)
    assert not OutboundMessage.objects.exists()
    assert sends(emulator) == []


def test_a_refusal_names_the_contact_the_address_book_knows(emulator, linked, bob_client, team):
    from messaging.contacts import book

    connection, number = linked
    book.save(team, None, fields={"name": "Pat Doe"}, numbers=[(PAT, "mobile")], tag_names=[])
    stop_from_pat(connection)

    response = bob_client.post(
        "/messages/compose/",
        {"sender": str(number.pk), "to": PAT, "text": "Hi", "mode": "separate"},
    )

    assert response.status_code == 400
    assert f"Pat Doe ({PAT_READ}){REASON[len(PAT_READ) :]}" in page_errors(response)


def test_the_same_contact_may_still_be_texted_from_another_number(emulator, linked, bob, team):
    from messaging.compose import submission

    connection, _ = linked
    stop_from_pat(connection)
    other = connection.numbers.get(phone_number=NUMBER_SMS_ONLY)
    outgoing = submission.prepare(
        team.memberships.get(user=bob), sender=other.pk, to=PAT, text="Hi"
    )
    assert outgoing.recipients == [PAT]


def test_a_reply_to_a_contact_who_texted_stop_is_refused(emulator, linked, bob_client):
    connection, _ = linked
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(PAT, NUMBER_SMS_MMS, "STOP")
    inbox_sync.sync_connection(connection.pk)
    conversation = Conversation.objects.get()

    response = bob_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Sorry to see you go"})

    assert response.status_code == 400
    assert "+1 650-555-0150 opted out of texts from +1 650-555-0140" in unescape(
        response.content.decode()
    )
    assert not OutboundMessage.objects.exists()
    assert sends(emulator) == []


def test_send_message_exits_with_the_reason(emulator, linked):
    connection, _ = linked
    stop_from_pat(connection)
    with pytest.raises(CommandError) as refused:
        call_command(
            "send_message",
            "--user", "bob@example.com", "--team", "acme",
            "--from", NUMBER_SMS_MMS, "--to", PAT, "--text", "Hi",
            stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert REASON in str(refused.value)
    assert not OutboundMessage.objects.exists()
    assert sends(emulator) == []


def test_a_queued_message_whose_recipient_opted_out_meanwhile_is_never_posted(
    emulator, linked, bob, bob_client
):
    connection, number = linked
    to_pat = make_message(number, bob, to=(PAT,))
    to_sam = make_message(number, bob, to=(SAM,))
    stop_from_pat(connection)

    # What the send asks right before posting each message.
    assert [r.number for r in checks.refused_at_send(to_pat)] == [PAT]
    assert states.refuse_opted_out(to_pat)
    assert not states.refuse_opted_out(to_sam)
    assert attempt(to_pat.pk).what == "not claimable"
    assert attempt(to_sam.pk).what == "sent"

    to_pat.refresh_from_db()
    assert (to_pat.status, to_pat.error_code) == (MessageStatus.FAILED, "opted_out")
    recipient = to_pat.recipients.get()
    assert recipient.status == RecipientStatus.OPTED_OUT
    assert recipient.get_status_display() == "Not sent: opted out"
    assert recipient.error_reason == REASON
    # Only Sam's message reached RingCentral.
    [posted] = sends(emulator)
    assert posted.json["to"] == [{"phoneNumber": SAM}]
    page = unescape(bob_client.get(f"/messages/{to_pat.pk}/").content.decode())
    assert "Not sent: opted out" in page and REASON in page


def test_the_send_task_asks_before_posting_and_posts_nothing_to_an_opted_out_recipient(
    emulator, linked, bob
):
    connection, number = linked
    to_pat = make_message(number, bob, to=(PAT,))
    to_sam = make_message(number, bob, to=(SAM,))
    stop_from_pat(connection)

    assert attempt(to_pat.pk).what == "opted out"
    assert attempt(to_sam.pk).what == "sent"

    to_pat.refresh_from_db()
    assert (to_pat.status, to_pat.error_code) == (MessageStatus.FAILED, "opted_out")
    assert to_pat.recipients.get().status == RecipientStatus.OPTED_OUT
    assert [posted.json["to"] for posted in sends(emulator)] == [[{"phoneNumber": SAM}]]


def test_a_group_message_with_an_opted_out_member_is_refused_whole(emulator, linked, bob):
    connection, number = linked
    group = make_message(number, bob, to=(PAT, SAM))
    stop_from_pat(connection)
    claimed, send_attempt = states.claim(group.pk)

    assert states.refuse_opted_out(claimed, send_attempt)

    group.refresh_from_db()
    assert group.status == MessageStatus.FAILED
    assert group.error_reason.startswith("1 of 2 recipients opted out")
    statuses = dict(group.recipients.values_list("phone_number", "status"))
    assert statuses == {PAT: RecipientStatus.OPTED_OUT, SAM: RecipientStatus.CANCELED}
    send_attempt.refresh_from_db()
    assert send_attempt.outcome == AttemptOutcome.PERMANENT
    assert sends(emulator) == []
    # Retrying it later asks again, and it is refused again while the opt-out holds.
    assert states.requeue(group)
    assert states.refuse_opted_out(group)


def test_an_opt_in_after_queueing_lets_the_message_go(emulator, linked, bob):
    connection, number = linked
    stop_from_pat(connection)
    message = make_message(number, bob, to=(PAT,))
    ledger.record(connection.team, PAT, ConsentState.OPTED_IN, ConsentSource.MANUAL, by=bob)
    assert not states.refuse_opted_out(message)
    assert attempt(message.pk).what == "sent"


def test_the_claim_itself_says_whether_a_recipient_opted_out(emulator, linked, bob):
    """On PostgreSQL the claim's one statement also probes the consent table, so a send to
    people who never opted out asks nothing more before it posts; one who did is refused."""
    connection, number = linked
    clear = make_message(number, bob, to=(SAM,))
    to_pat = make_message(number, bob, to=(PAT,))
    stop_from_pat(connection)

    claimed, send_attempt = states.claim(clear.pk)
    with CaptureQueriesContext(db_connection) as asked:
        assert not states.refuse_opted_out(claimed, send_attempt)
    single_statement = db_connection.vendor == "postgresql"
    assert len(asked) == (0 if single_statement else 1)  # else: the probe of consent.checks

    claimed, send_attempt = states.claim(to_pat.pk)
    assert getattr(claimed, "none_opted_out", False) is False
    assert states.refuse_opted_out(claimed, send_attempt)
    to_pat.refresh_from_db()
    assert to_pat.recipients.get().status == RecipientStatus.OPTED_OUT
    assert sends(emulator) == []
