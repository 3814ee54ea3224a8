"""Campaigns through High Volume SMS, against the emulator over a real socket: the number
offered and its rules, a campaign sent in one batch by the task and followed to done with each
recipient's result, rejected and opted-out recipients, a retried task sending nothing twice,
cancel before the batch and pause refused after, a refused request stopping the campaign."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from messaging.campaigns import batches, creation, preflight, report, running, signals, tasks
from messaging.campaigns.forms import CampaignForm
from messaging.consent import ledger
from messaging.links import connections
from messaging.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ConsentSource,
    ConsentState,
    Contact,
    ContactNumber,
    MessageStatus,
    OutboundMessage,
    RecipientState,
    SenderNumber,
    SkipKind,
    Tag,
    TeamMessagingSettings,
)
from messaging.outbox import delivery_errors
from messaging.ringcentral.emulator import Fault, demo
from tests import media_samples
from tests.rc_fixtures import CALLBACK, NUMBERS, journal, link_directly
from tests.test_high_volume import HV
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]

ABROAD = "+442079460000"  # RingCentral's High Volume texts US and Canadian numbers only
LANDLINE = "+16505550162"


@pytest.fixture
def linked(emulator, team, alice):
    """Alice's RingCentral user, with the standard numbers and a High Volume one, synced."""
    numbers = [
        *(dict(n) for n in NUMBERS),
        {"phone_number": HV, "features": ["A2PSmsSender", "CallerId"], "label": "High Volume"},
    ]
    user = emulator.add_extension(name="Rita Frontdesk", email="rita@acme.example", numbers=numbers)
    connection = link_directly(emulator, team, alice, user)
    connections.sync_numbers(connection)
    return connection


def number(i: int) -> str:
    return f"+1650557{i:04d}"


def membership_of(user, team):
    return team.memberships.get(user=user)


def hv_number(connection) -> SenderNumber:
    return SenderNumber.objects.get(connection=connection, phone_number=HV)


def tagged(team, count: int, *extra_numbers: str, tag="patients") -> list[str]:
    tag_row, _ = Tag.objects.get_or_create(team=team, name=tag)
    numbers = [number(i) for i in range(count)] + list(extra_numbers)
    for i, n in enumerate(numbers):
        contact = Contact.objects.create(team=team, name=f"Pat{i:03d} Example")
        ContactNumber.objects.create(team=team, contact=contact, number=n)
        contact.tags.add(tag_row)
    return numbers


def create(team, alice, sender, **extra) -> Campaign:
    fields = {
        "name": "Flu shots",
        "sender_ids": [str(sender.pk)],
        "text": "Hi {first_name}, flu shots are in.",
        "source": "tag",
        "tag": "patients",
    }
    fields.update(extra)
    return creation.create(membership_of(alice, team), creation.Request(**fields))


def batch_posts(emulator):
    return [e for e in journal(emulator, "/a2p-sms/batches") if e.method == "POST"]


def sms_posts(emulator):
    return [e for e in journal(emulator) if e.method == "POST" and e.path.endswith("/sms")]


def batched_numbers(emulator) -> list[str]:
    return [m["to"][0] for post in batch_posts(emulator) for m in post.json["messages"]]


def report_rows(campaign) -> dict[str, list]:
    return {row[1]: row for row in report.report_rows(campaign)}


# --- the form ---------------------------------------------------------------------------------


def test_the_demo_high_volume_number_is_offered_for_campaigns(emulator, team, alice, alice_client):
    world = demo.seed_demo(
        emulator,
        settings.RINGCENTRAL_CLIENT_ID,
        settings.RINGCENTRAL_CLIENT_SECRET,
        redirect_uris=[CALLBACK],
    )
    connections.sync_numbers(link_directly(emulator, team, alice, world.office))
    hv = SenderNumber.objects.get(phone_number=demo.DEMO_NUMBER_HIGH_VOLUME)

    form = CampaignForm(membership=membership_of(alice, team))

    labels = dict(form.fields["senders"].choices)
    assert "High Volume SMS" in labels[str(hv.pk)]
    assert "+1 650-555-0105" in alice_client.get("/campaigns/new/").content.decode()


def test_a_high_volume_number_sends_text_alone(emulator, team, alice, alice_client, linked):
    tagged(team, 3)
    hv = hv_number(linked)
    other = SenderNumber.objects.get(connection=linked, phone_number=NUMBERS[0]["phone_number"])
    photo = SimpleUploadedFile("p.png", media_samples.png(), content_type="image/png")

    with pytest.raises(creation.CampaignInvalid) as with_files:
        create(team, alice, hv, attachments=[photo])
    with pytest.raises(creation.CampaignInvalid) as with_others:
        create(team, alice, hv, sender_ids=[str(hv.pk), str(other.pk)])

    assert "text only" in " ".join(with_files.value.errors["senders"])
    assert "Choose only it" in " ".join(with_others.value.errors["senders"])
    # On the page: a 400 with the reason, nothing created.
    response = alice_client.post(
        "/campaigns/new/",
        {
            "name": "Flu",
            "senders": [str(hv.pk)],
            "source": "tag",
            "tag": "patients",
            "text": "Hi",
            "missing_policy": "skip",
            "attachments": SimpleUploadedFile(
                "p.png", media_samples.png(), content_type="image/png"
            ),
        },
    )
    assert response.status_code == 400 and "text only" in response.content.decode()
    assert not Campaign.objects.exists()
    assert create(team, alice, hv).uses_high_volume


def test_the_preflight_says_it_goes_through_high_volume(
    emulator, team, alice, alice_client, linked
):
    tagged(team, 5)
    campaign = create(team, alice, hv_number(linked))

    summary = preflight.summary(campaign)
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert summary.high_volume and summary.requests == 1 and summary.duration is None
    assert 'data-preflight="high_volume">High Volume SMS' in page
    assert 'data-preflight="requests">1 batch request' in page
    assert "Not estimated" in page


# --- running ----------------------------------------------------------------------------------


def test_a_campaign_of_fifty_runs_to_done_in_one_batch_with_each_result(
    emulator, team, alice, linked, alice_client, django_capture_on_commit_callbacks
):
    emulator.set_recipient_behaviour(LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411")
    numbers = tagged(team, 48, LANDLINE, ABROAD)
    campaign = create(team, alice, hv_number(linked))
    finished = []

    def receiver(sender, campaign, **kwargs):
        finished.append(campaign.status)

    running.start(campaign)
    assert tasks.feed_campaign(campaign.pk) == 50  # the worker's task, not the web request
    # One request for all 50; RingCentral's answer rejects the number abroad.
    assert [len(p.json["messages"]) for p in batch_posts(emulator)] == [50]
    (batch_id,) = set(
        CampaignRecipient.objects.exclude(batch_id="").values_list("batch_id", flat=True)
    )
    progress = running.progress(campaign)
    assert (progress.queued, progress.failed, progress.batch_sent) == (49, 1, True)

    emulator.advance(10)
    signals.campaign_finished.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            tasks.follow_high_volume_campaigns()
    finally:
        signals.campaign_finished.disconnect(receiver)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE and finished == [CampaignStatus.DONE]
    assert sms_posts(emulator) == [] and len(batch_posts(emulator)) == 1
    assert not OutboundMessage.objects.exists()
    progress = running.progress(campaign)
    assert (progress.delivered, progress.failed, progress.queued) == (48, 2, 0)
    rows = report_rows(campaign)
    assert len(rows) == 50 and all(rows[n][4] == "Delivered" for n in numbers[:48])
    landline = rows[LANDLINE]
    assert landline[4] == "Not delivered"
    assert delivery_errors.explain("SMS-CAR-411").reason in landline[5]
    assert "SMS-CAR-411" in landline[5]
    rejected = rows[ABROAD]
    assert rejected[4] == "Failed" and "SMS-RC-410" in rejected[5]
    assert rejected[5].startswith(delivery_errors.explain("SMS-RC-410").reason)
    assert CampaignRecipient.objects.get(phone_number=ABROAD).batch_id == ""
    assert CampaignRecipient.objects.filter(batch_id=batch_id).count() == 49
    # The progress JSON and the CSV download read the same recipients.
    data = alice_client.get(f"/campaigns/{campaign.pk}/progress/").json()
    assert (data["delivered"], data["failed"], data["finished"]) == (48, 2, True)
    csv_text = b"".join(alice_client.get(f"/campaigns/{campaign.pk}/report.csv").streaming_content)
    assert len(list(csv.reader(io.StringIO(csv_text.decode())))) == 51


def test_opted_out_contacts_are_never_in_the_batch(emulator, team, alice, linked):
    numbers = tagged(team, 6)

    def opt_out(n):
        ledger.record(
            team,
            n,
            ConsentState.OPTED_OUT,
            ConsentSource.KEYWORD,
            account_id=linked.account_id,
            from_number=HV,
        )

    opt_out(numbers[0])  # before the campaign: skipped at creation
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    opt_out(numbers[1])  # after Start, before the worker sends: skipped right before sending

    tasks.feed_campaign(campaign.pk)

    assert sorted(batched_numbers(emulator)) == sorted(numbers[2:])
    for n in numbers[:2]:
        skipped = CampaignRecipient.objects.get(campaign=campaign, phone_number=n)
        assert skipped.state == RecipientState.SKIPPED and skipped.skip_kind == SkipKind.OPTED_OUT
        assert "opted out" in skipped.skip_reason and skipped.batch_id == ""
    assert running.progress(campaign).skipped == 2


def test_a_retried_send_task_sends_nothing_twice(emulator, team, alice, linked):
    tagged(team, 10)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)

    assert tasks.feed_campaign(campaign.pk) == 10
    assert tasks.feed_campaign(campaign.pk) == 0  # the task delivered twice by the broker
    running.feed()  # and beat's feeder
    assert len(batch_posts(emulator)) == 1 and len(batched_numbers(emulator)) == 10


def test_a_worker_lost_between_claim_and_answer_never_sends_again(emulator, team, alice, linked):
    tagged(team, 4)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    claimed = batches._claim(campaign, HV, timezone.now())  # the worker stopped after this
    assert len(claimed) == 4

    assert tasks.feed_campaign(campaign.pk) == 0
    assert batch_posts(emulator) == []
    batches.follow(now=timezone.now() + batches.UNANSWERED_AFTER + timedelta(seconds=1))

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    rows = CampaignRecipient.objects.filter(campaign=campaign)
    assert {r.batch_status for r in rows} == {MessageStatus.UNKNOWN}
    assert all("not sent again" in r.error_reason for r in rows)


def test_cancel_works_before_the_batch_is_sent(emulator, team, alice, linked):
    tagged(team, 5)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)

    running.cancel(campaign)
    tasks.feed_campaign(campaign.pk)
    batches.follow()

    assert campaign.status == CampaignStatus.CANCELED
    assert batch_posts(emulator) == []
    assert set(campaign.recipients.values_list("state", flat=True)) == {RecipientState.CANCELED}


def test_pause_and_cancel_are_refused_once_ringcentral_has_the_batch(
    emulator, team, alice, linked, bob_client
):
    tagged(team, 5)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    tasks.feed_campaign(campaign.pk)

    with pytest.raises(running.CampaignRefused, match="RingCentral is processing"):
        running.pause(campaign)
    response = bob_client.post(f"/campaigns/{campaign.pk}/pause/")
    assert response.status_code == 409
    assert "RingCentral is processing" in response.content.decode()
    response = bob_client.post(f"/campaigns/{campaign.pk}/cancel/")
    assert response.status_code == 409
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    page = bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="high-volume-note"' in page and 'id="pause-campaign"' not in page

    emulator.advance(10)
    batches.follow()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    assert running.progress(campaign).delivered == 5


def test_a_refused_batch_request_stops_the_campaign_and_resume_sends_the_rest(
    emulator, team, alice, linked
):
    tagged(team, 5)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    emulator.inject(
        Fault("status", path_contains="/a2p-sms/batches", status=403, error_code="CMN-408")
    )

    assert tasks.feed_campaign(campaign.pk) == 0

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED
    assert campaign.stop_reason.startswith("Stopped: a batch request failed")
    assert "resume" in campaign.stop_fix
    # No request carried them: they wait again, and a resumed campaign sends them once.
    assert set(campaign.recipients.values_list("state", flat=True)) == {RecipientState.PENDING}
    running.resume(campaign)
    assert tasks.feed_campaign(campaign.pk) == 5
    refused, sent = batch_posts(emulator)
    assert refused.status == 403 and sent.status == 201 and len(sent.json["messages"]) == 5
    assert tasks.feed_campaign(campaign.pk) == 0 and len(batch_posts(emulator)) == 2


def test_a_broken_link_stops_the_campaign_before_anything_is_sent(emulator, team, alice, linked):
    tagged(team, 3)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    type(linked).objects.filter(pk=linked.pk).update(status="broken")

    tasks.feed_campaign(campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED and "link" in campaign.stop_reason
    assert batch_posts(emulator) == []


def test_the_opt_out_line_goes_with_a_first_text_only(emulator, team, alice, linked):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    numbers = tagged(team, 2)
    first = create(team, alice, hv_number(linked))
    running.start(first)
    tasks.feed_campaign(first.pk)
    tagged(team, 0, number(99))  # a third contact, new to this number
    second = create(team, alice, hv_number(linked), name="Again")
    running.start(second)
    tasks.feed_campaign(second.pk)

    first_post, second_post = batch_posts(emulator)
    texts = {
        m["to"][0]: m.get("text", first_post.json.get("text")) for m in first_post.json["messages"]
    }
    assert all(t.endswith("Reply STOP to opt out") for t in texts.values())
    again = {
        m["to"][0]: m.get("text", second_post.json.get("text"))
        for m in second_post.json["messages"]
    }
    assert not any(again[n].endswith("Reply STOP to opt out") for n in numbers)
    assert len(again) == 3 and sum(t.endswith("Reply STOP to opt out") for t in again.values()) == 1
    assert report_rows(first)[numbers[0]][3].endswith("Reply STOP to opt out")


def test_a_batch_request_without_an_answer_is_never_sent_again(emulator, team, alice, linked):
    tagged(team, 4)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    # RingCentral takes the batch, but the answer is lost on the way back.
    emulator.inject(Fault("drop_after", path_contains="/a2p-sms/batches", method="POST"))

    assert tasks.feed_campaign(campaign.pk) == 0
    tasks.feed_campaign(campaign.pk)
    running.feed()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    rows = list(campaign.recipients.all())
    assert {r.batch_status for r in rows} == {MessageStatus.UNKNOWN}
    assert all("not sent again" in r.error_reason for r in rows)
    posts = [e for e in emulator.journal_entries() if "/a2p-sms/batches" in e.path]
    assert len(posts) <= 1  # the one request RingCentral took, and no other
    assert report_rows(campaign)[rows[0].phone_number][4] == "Outcome unknown"


def test_a_text_the_carrier_never_confirms_ends_without_a_receipt(emulator, team, alice, linked):
    silent = number(0)
    emulator.set_recipient_behaviour(silent, outcome="no_receipt")
    tagged(team, 3)
    campaign = create(team, alice, hv_number(linked))
    running.start(campaign)
    tasks.feed_campaign(campaign.pk)
    emulator.advance(10)

    batches.follow()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING  # still waiting for that report

    later = timezone.now() + timedelta(seconds=settings.TRACKING_GIVE_UP_AFTER + 1)
    batches.follow(now=later)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    row = report_rows(campaign)[silent]
    assert row[4] == "No receipt" and row[5] == delivery_errors.NO_RECEIPT_REASON
    assert running.progress(campaign).sent == 1
