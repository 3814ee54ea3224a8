"""Campaigns: creation from tags, a selection and files; the pre-flight numbers; roles; bad
lists; the feeder's pacing; pause, resume and cancel with real workers against the emulator
(its journal is the judge: none sent twice, none lost); a direct message overtaking a large
campaign; a carrier's daily cap stopping one; the report."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django.utils import timezone

from messaging.campaigns import creation, preflight, report, running, signals
from messaging.campaigns.forms import parse_start
from messaging.compose import submission as compose
from messaging.consent import ledger
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
    RecipientStatus,
    SkipKind,
    Tag,
    TeamMessagingSettings,
)
from messaging.outbox import states
from messaging.sending.attempt import attempt
from messaging.tracking import polling as tracking
from tests import test_send_workers as send_workers
from tests.factories import make_connection, make_message, make_number
from tests.test_send_task import clear_shared_limiter, posts
from tests.test_send_workers import SHORT_LIMIT, SHORT_WINDOW, sender
from tests.tracking_helpers import link_sender

TO = "+1650555{:04d}"


def number(i: int) -> str:
    return TO.format(2000 + i)


def csv_upload(rows, header=("Name", "Phone", "Appointment"), name="list.csv", encoding="utf-8"):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")


@pytest.fixture
def sender_number(team, alice):
    return make_number(make_connection(team, alice, shared=True), "+16505550100")


def ask(sender_number, **extra) -> creation.Request:
    fields = {
        "name": "Reminders",
        "sender_ids": [str(sender_number.pk)],
        "text": "Hi {first_name}, see you {appointment}.",
        "source": "file",
    }
    fields.update(extra)
    return creation.Request(**fields)


def membership_of(user, team):
    return team.memberships.get(user=user)


def add_contact(team, name, *numbers, tags=(), **extra):
    contact = Contact.objects.create(team=team, name=name, **extra)
    for n in numbers:
        ContactNumber.objects.create(team=team, contact=contact, number=n)
    for tag_name in tags:
        tag, _ = Tag.objects.get_or_create(team=team, name=tag_name)
        contact.tags.add(tag)
    return contact


# --- creation ---------------------------------------------------------------------------------


def test_a_campaign_from_a_csv_merges_each_row_and_keeps_its_columns_as_fields(
    team, alice, sender_number
):
    upload = csv_upload(
        [
            ["Pat Doe", "(650) 555-2001", "Monday"],
            ["Sam Roe", "650.555.2002", "Tuesday"],
        ]
    )
    campaign = creation.create(membership_of(alice, team), ask(sender_number, upload=upload))
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.fields == ["name", "phone", "appointment"]
    rows = list(campaign.recipients.order_by("position"))
    assert [(r.phone_number, r.text) for r in rows] == [
        (number(1), "Hi Pat, see you Monday."),
        (number(2), "Hi Sam, see you Tuesday."),
    ]
    assert all(r.state == RecipientState.PENDING and r.segments == 1 for r in rows)
    assert list(campaign.senders.all()) == [sender_number]


def test_a_campaign_to_a_tag_or_a_selection_uses_the_contacts_fields(team, alice, sender_number):
    pat = add_contact(team, "Pat Doe", number(1), tags=["patients"], company="Acme")
    add_contact(team, "Sam Roe", number(2), tags=["patients"])
    add_contact(team, "Other", number(3))
    request = ask(sender_number, source="tag", tag="Patients", text="Hello {first_name}")
    campaign = creation.create(membership_of(alice, team), request)
    assert sorted(campaign.recipients.values_list("text", flat=True)) == [
        "Hello Pat",
        "Hello Sam",
    ]
    chosen = creation.create(
        membership_of(alice, team),
        ask(sender_number, source="selection", contact_ids=[pat.pk], text="{company} {name}"),
    )
    assert list(chosen.recipients.values_list("phone_number", "text")) == [
        (number(1), "Acme Pat Doe")
    ]


def test_a_missing_field_skips_the_recipient_or_uses_the_fallback(team, alice, sender_number):
    rows = [["Pat Doe", number(1), ""], ["", number(2), "Friday"]]
    skip = creation.create(membership_of(alice, team), ask(sender_number, upload=csv_upload(rows)))
    first, second = skip.recipients.order_by("position")
    assert first.state == RecipientState.SKIPPED and first.skip_kind == SkipKind.MISSING_FIELD
    assert first.skip_reason == "No value for {appointment}."
    assert second.skip_reason == "No value for {first_name}."
    fallback = creation.create(
        membership_of(alice, team),
        ask(
            sender_number,
            upload=csv_upload(rows),
            missing_policy="fallback",
            fallback_text="soon",
        ),
    )
    assert list(fallback.recipients.values_list("text", flat=True)) == [
        "Hi Pat, see you soon.",
        "Hi soon, see you Friday.",
    ]


def test_the_preflight_counts_invalid_duplicate_opted_out_and_landline_numbers(
    team, alice, sender_number
):
    # An earlier delivery report said this number cannot receive texts.
    old = make_message(sender_number, alice, to=(number(4),), status=MessageStatus.QUEUED)
    old.recipients.update(status=RecipientStatus.DELIVERY_FAILED, error_code="SMS-CAR-411")
    ledger.record(team, number(3), ConsentState.OPTED_OUT, ConsentSource.MANUAL)
    upload = csv_upload(
        [
            ["Pat", number(1), "Monday"],
            ["Pat again", "(650) 555-2001", "Monday"],
            ["Nobody", "not a number", "Monday"],
            ["Opted", number(3), "Monday"],
            ["Landline", number(4), "Monday"],
            ["Long", number(5), "x" * 200],
        ]
    )
    campaign = creation.create(membership_of(alice, team), ask(sender_number, upload=upload))
    summary = preflight.summary(campaign)
    assert summary.total == 6
    assert summary.count(SkipKind.DUPLICATE) == 1
    assert summary.count(SkipKind.INVALID) == 1
    assert summary.count(SkipKind.LANDLINE) == 1
    assert "landline" in summary.listed[SkipKind.LANDLINE][0].skip_reason
    assert summary.listed[SkipKind.DUPLICATE][0].position == 3
    assert "not a phone number" in summary.listed[SkipKind.INVALID][0].skip_reason
    assert summary.count(SkipKind.OPTED_OUT) == 1
    assert "opted out" in summary.listed[SkipKind.OPTED_OUT][0].skip_reason
    assert summary.to_send == 2
    # One one-segment text and one of two (200 + 15 GSM-7 characters).
    assert summary.segments == 1 + 2
    assert summary.per_minute == 40  # one user's Medium budget, under the number's 50
    assert summary.duration_text == "less than a minute"


# --- bad lists: a clear message, nothing half-created ------------------------------------------


def refused(team, alice, sender_number, **extra) -> dict:
    before = (Campaign.objects.count(), CampaignRecipient.objects.count())
    with pytest.raises(creation.CampaignInvalid) as caught:
        creation.create(membership_of(alice, team), ask(sender_number, **extra))
    assert (Campaign.objects.count(), CampaignRecipient.objects.count()) == before
    return caught.value.errors


def test_a_file_without_a_number_column_is_refused_naming_its_columns(team, alice, sender_number):
    upload = csv_upload([["Pat", "Monday"]], header=("Name", "Appointment"))
    errors = refused(team, alice, sender_number, upload=upload)
    [message] = errors["recipients"]
    assert "no column of phone numbers" in message and "“Appointment”" in message


def test_a_text_with_fields_the_file_lacks_is_refused(team, alice, sender_number):
    upload = csv_upload([["Pat", number(1), "Monday"]])
    errors = refused(team, alice, sender_number, upload=upload, text="Hi {nickname}, {room}")
    [message] = errors["text"]
    assert "{nickname}, {room}" in message and "no column" in message


def test_a_file_in_another_encoding_is_read_and_one_that_mixes_them_is_refused(
    team, alice, sender_number
):
    latin = csv_upload([["José Núñez", number(1), "lundi"]], encoding="cp1252")
    campaign = creation.create(membership_of(alice, team), ask(sender_number, upload=latin))
    assert campaign.recipients.get().text == "Hi José, see you lundi."
    good = "Name,Phone,Appointment\n" + "".join(
        f"Pat {i},{number(i)},Monday\n" for i in range(3000)
    )
    mixed = SimpleUploadedFile(
        "mixed.csv", good.encode() + "Zoë,+16505559999,é\n".encode("cp1252"), "text/csv"
    )
    errors = refused(team, alice, sender_number, upload=mixed)
    assert "mixes encodings" in errors["recipients"][0]


def test_an_old_excel_file_and_an_empty_one_are_refused(team, alice, sender_number):
    xls = SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    assert ".xlsx or CSV" in refused(team, alice, sender_number, upload=xls)["recipients"][0]
    empty = SimpleUploadedFile("empty.csv", b"Name,Phone\n")
    assert (
        "no contacts under it" in refused(team, alice, sender_number, upload=empty)["recipients"][0]
    )


def test_a_list_over_the_limit_is_refused_whole(team, alice, sender_number, settings):
    settings.CAMPAIGN_MAX_RECIPIENTS = 50
    upload = csv_upload([[f"P{i}", number(i), "Monday"] for i in range(51)])
    errors = refused(team, alice, sender_number, upload=upload)
    assert "at most 50" in errors["recipients"][0]


def test_a_hundred_thousand_rows_are_taken_and_one_more_is_refused(team, alice, sender_number):
    header = "Name,Phone,Appointment\n"
    rows = "".join(f"P{i},+1650{5550000 + i % 10000:07d},Mon\n" for i in range(100_000))
    upload = SimpleUploadedFile("big.csv", (header + rows).encode(), "text/csv")
    started = time.monotonic()
    campaign = creation.create(membership_of(alice, team), ask(sender_number, upload=upload))
    took = time.monotonic() - started
    summary = preflight.summary(campaign)
    assert summary.total == 100_000
    assert summary.to_send == 10_000
    assert summary.count(SkipKind.DUPLICATE) == 90_000
    assert took < 120
    over = SimpleUploadedFile(
        "bigger.csv", (header + rows + "Last,+16505559999,Mon\n").encode(), "text/csv"
    )
    errors = refused(team, alice, sender_number, upload=over)
    assert "more than 100,000 rows" in errors["recipients"][0]


def test_senders_must_be_the_members_own_numbers(team, alice, bob, charlie, sender_number):
    elsewhere = make_number(make_connection(charlie.memberships.first().team, charlie), number(9))
    upload = csv_upload([["Pat", number(1), "Monday"]])
    errors = refused(team, alice, sender_number, upload=upload, sender_ids=[str(elsewhere.pk)])
    assert errors["senders"] == ["Choose numbers you may send from."]
    errors = refused(team, alice, sender_number, upload=csv_upload([]), sender_ids=[])
    assert errors["senders"] == ["Choose at least one number to send from."]


# --- pages and roles --------------------------------------------------------------------------


def post_new(client, sender_number, upload, **extra):
    data = {
        "name": "Reminders",
        "senders": [str(sender_number.pk)],
        "source": "file",
        "list_file": upload,
        "text": "Hi {first_name}, see you {appointment}.",
        "missing_policy": "skip",
        **extra,
    }
    return client.post("/campaigns/new/", data)


def test_a_sender_creates_checks_and_starts_a_campaign_through_the_pages(
    bob_client, sender_number, team
):
    response = post_new(bob_client, sender_number, csv_upload([["Pat", number(1), "Monday"]]))
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    page = bob_client.get(response["Location"]).content.decode()
    assert "Before you start" in page and 'data-preflight="to_send">1<' in page
    assert bob_client.post(f"/campaigns/{campaign.pk}/start/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    # Changing a running campaign is refused with the reason.
    response = bob_client.post(f"/campaigns/{campaign.pk}/edit/", {"name": "Other"})
    assert response.status_code == 409
    assert "can no longer be changed" in response.content.decode()
    assert bob_client.get("/campaigns/").status_code == 200


def test_bad_input_on_the_page_is_a_400_with_the_reason(bob_client, sender_number):
    upload = csv_upload([["Pat", "Monday"]], header=("Name", "Appointment"))
    response = post_new(bob_client, sender_number, upload)
    assert response.status_code == 400
    assert "no column of phone numbers" in response.content.decode()
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = post_new(
        bob_client, sender_number, csv_upload([["P", number(1), "M"]]), start_at=past
    )
    assert response.status_code == 400 and "in the past" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_start_time_in_a_daylight_saving_gap_is_refused():
    zone = ZoneInfo("America/New_York")
    year = timezone.now().year + 1
    # Clocks in New York skip from 2:00 to 3:00 on the second Sunday of March.
    second_sunday = 8 + (6 - datetime(year, 3, 8).weekday()) % 7
    start, problem = parse_start(datetime(year, 3, second_sunday, 2, 30), zone)
    assert start is None and "does not exist" in problem
    start, problem = parse_start(datetime(year, 3, second_sunday, 3, 30), zone)
    assert problem is None and start.utcoffset() == timedelta(hours=-4)


def test_viewers_read_campaigns_and_reports_but_cannot_run_them(
    victor_client, team, alice, sender_number
):
    campaign = creation.create(
        membership_of(alice, team),
        ask(sender_number, upload=csv_upload([["Pat", number(1), "Monday"]])),
    )
    assert victor_client.get(f"/campaigns/{campaign.pk}/").status_code == 200
    assert victor_client.get(f"/campaigns/{campaign.pk}/report.csv").status_code == 200
    assert victor_client.get(f"/campaigns/{campaign.pk}/progress/").status_code == 200
    assert victor_client.get("/campaigns/new/").status_code == 403
    assert victor_client.post(f"/campaigns/{campaign.pk}/start/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_outsiders_get_404_everywhere(charlie_client, team, alice, sender_number):
    campaign = creation.create(
        membership_of(alice, team),
        ask(sender_number, upload=csv_upload([["Pat", number(1), "Monday"]])),
    )
    for path in ("", "edit/", "progress/", "report.csv"):
        assert charlie_client.get(f"/campaigns/{campaign.pk}/{path}").status_code == 404
    for action in ("start", "pause", "resume", "cancel"):
        assert charlie_client.post(f"/campaigns/{campaign.pk}/{action}/").status_code == 404


# --- the feeder, in this process --------------------------------------------------------------


@pytest.fixture
def tight(db, settings):
    """Five sends per 10 s for the user, so the feeder's arithmetic shows."""
    settings.RINGCENTRAL_RATE_LIMITS = {"Medium": {"limit": 5, "window": 10}}
    settings.CAMPAIGN_RELEASE_WINDOW_SECONDS = 2.0
    clear_shared_limiter()
    yield
    clear_shared_limiter()


def started(team, alice, sender_number, count: int, **extra) -> Campaign:
    rows = [[f"P{i}", number(i), "Monday"] for i in range(count)]
    campaign = creation.create(
        membership_of(alice, team), ask(sender_number, upload=csv_upload(rows), **extra)
    )
    running.start(campaign)
    return campaign


def test_the_feeder_queues_only_what_the_limiter_can_send_soon(tight, team, alice, sender_number):
    campaign = started(team, alice, sender_number, 30)
    # Nothing used yet: the whole free budget (5), more than the next 2 s would send (1).
    assert running.feed() == 5
    assert running.feed() == 0  # those five are still waiting to be sent
    messages = OutboundMessage.objects.filter(campaign_recipient__campaign=campaign)
    assert messages.count() == 5
    assert set(messages.values_list("status", flat=True)) == {MessageStatus.QUEUED}
    assert [m.text for m in messages.order_by("pk")][:2] == [
        "Hi P0, see you Monday.",
        "Hi P1, see you Monday.",
    ]
    # While a person's own message waits, the campaign takes only budget free right now after
    # it (5 free, 1 waiting), never the slots that free later: those are the person's first.
    messages.update(status=MessageStatus.CANCELED, final_at=timezone.now())
    make_message(sender_number, alice, to=(number(99),))
    assert running.feed() == 4
    assert running.feed() == 0
    progress = running.progress(campaign)
    assert (progress.waiting, progress.queued, progress.canceled) == (21, 4, 5)
    assert progress.eta_seconds == 50  # 25 messages at 5 per 10 s


def test_several_numbers_share_the_work_and_their_users_budget(tight, team, alice):
    connection = make_connection(team, alice, shared=True)
    first = make_number(connection, "+16505550100")
    second = make_number(connection, "+16505550101")
    other = make_number(make_connection(team, alice, extension_id="102"), "+16505550102")
    campaign = started(
        team, alice, first, 30, sender_ids=[str(first.pk), str(second.pk), str(other.pk)]
    )
    assert running.feed() == 10  # five for each RingCentral user
    by_number = dict(
        OutboundMessage.objects.filter(campaign_recipient__campaign=campaign)
        .values_list("from_number")
        .annotate(n=Count("pk"))
        .values_list("from_number", "n")
    )
    assert by_number[other.phone_number] == 5
    assert by_number.get(first.phone_number, 0) + by_number.get(second.phone_number, 0) == 5
    assert preflight.per_minute(campaign) == 60  # two users at 30 a minute each


def test_pause_resume_and_cancel_release_nothing_twice(
    tight, team, alice, sender_number, django_capture_on_commit_callbacks
):
    finished = []

    def receiver(sender, campaign, **kwargs):
        finished.append((sender, campaign.status))

    signals.campaign_finished.connect(receiver)
    self_disconnect = signals.campaign_finished.disconnect
    campaign = started(team, alice, sender_number, 12)
    assert running.feed() == 5
    running.pause(campaign)
    OutboundMessage.objects.update(status=MessageStatus.CANCELED, final_at=timezone.now())
    assert running.feed() == 0
    with pytest.raises(running.CampaignRefused, match="Only a running campaign"):
        running.pause(campaign)
    running.resume(campaign)
    assert running.feed() == 5
    with django_capture_on_commit_callbacks(execute=True):
        canceled = running.cancel(campaign)
    self_disconnect(receiver)
    assert canceled == 5
    assert finished == [(Campaign, CampaignStatus.CANCELED)]
    states = dict(
        campaign.recipients.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    assert states == {RecipientState.RELEASED: 10, RecipientState.CANCELED: 2}
    assert not OutboundMessage.objects.exclude(status=MessageStatus.CANCELED).exists()
    assert OutboundMessage.objects.count() == 10
    with pytest.raises(running.CampaignRefused, match="canceled already"):
        running.cancel(campaign)
    with pytest.raises(running.CampaignRefused):
        running.resume(campaign)


# --- against the emulator, sending in this process ----------------------------------------------


@pytest.fixture
def linked_number(emulator, team, alice, rc_user, settings):
    settings.TRACKING_MIN_READ_INTERVAL = 0
    settings.RINGCENTRAL_RATE_LIMITING = False
    _, found = link_sender(emulator, team, alice, rc_user)
    return found


def send_released(campaign) -> int:
    """Send every released message that is due, the way a worker does."""
    ids = OutboundMessage.objects.filter(
        campaign_recipient__campaign=campaign, status=MessageStatus.QUEUED
    ).values_list("pk", flat=True)
    return sum(1 for pk in list(ids) if attempt(pk).what)


def test_a_carriers_daily_cap_stops_the_campaign_and_says_what_to_do(
    emulator, linked_number, team, alice, django_capture_on_commit_callbacks
):
    emulator.set_recipient_behaviour(
        number(2), "delivery_failed", error_code="SMS-CAR-451", delivered_after=1
    )
    campaign = started(team, alice, linked_number, 20)
    assert running.feed() == 20  # no limiter: everything the number may send in a minute
    assert send_released(campaign) == 20
    emulator.advance(5)
    tracking.poll(now=timezone.now() + timedelta(minutes=5))
    finished = []

    def receiver(sender, campaign, **kwargs):
        finished.append(campaign.stop_reason)

    signals.campaign_finished.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            running.feed()
    finally:
        signals.campaign_finished.disconnect(receiver)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED
    assert "daily limit" in campaign.stop_reason and "SMS-CAR-451" in campaign.stop_reason
    assert "tomorrow" in campaign.stop_fix and "Resume" in campaign.stop_fix
    assert finished == [campaign.stop_reason]
    # Resumed the next day, what was reported before does not stop it again.
    running.resume(campaign)
    running.feed()
    campaign.refresh_from_db()
    assert campaign.status in (CampaignStatus.RUNNING, CampaignStatus.DONE)


def test_a_run_of_failures_stops_the_campaign(emulator, linked_number, team, alice, settings):
    settings.CAMPAIGN_STOP_AFTER_FAILURES = 3
    for i in range(4):
        emulator.set_recipient_behaviour(number(i), "sending_failed", error_code="SMS-RC-430")
    campaign = started(team, alice, linked_number, 6)
    running.feed()
    send_released(campaign)
    emulator.advance(5)
    tracking.poll(now=timezone.now() + timedelta(minutes=5))
    running.feed()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.STOPPED
    assert campaign.stop_reason == "Stopped: the last 3 messages all failed."


def test_the_report_lists_every_recipient_with_its_outcome_in_safe_cells(
    emulator, linked_number, team, alice, victor_client
):
    emulator.set_recipient_behaviour(number(1), "delivery_failed", error_code="SMS-CAR-411")
    rows = [
        ['=HYPERLINK("http://x")', number(0), "Monday"],
        ["Landline", number(1), "Monday"],
        ["Again", number(0), "Monday"],
        ["Nobody", "12", "Monday"],
    ]
    campaign = creation.create(
        membership_of(alice, team), ask(linked_number, upload=csv_upload(rows))
    )
    running.start(campaign)
    running.feed()
    send_released(campaign)
    emulator.advance(30)
    tracking.poll(now=timezone.now() + timedelta(minutes=5))
    response = victor_client.get(f"/campaigns/{campaign.pk}/report.csv")
    assert response["Content-Disposition"] == 'attachment; filename="Reminders-report.csv"'
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == report.HEADER
    by_row = {line[0]: line for line in lines[1:]}
    assert by_row["2"][2] == '\'=HYPERLINK("http://x")'
    assert by_row["2"][4] == "Delivered"
    assert by_row["3"][4] == "Not delivered" and "landline" in by_row["3"][5]
    assert "SMS-CAR-411" in by_row["3"][5] and by_row["3"][6]
    assert by_row["4"][4] == "Skipped: duplicate number"
    assert by_row["5"][4] == "Skipped: invalid number" and "not a valid" in by_row["5"][5]


# --- with real workers against the emulator: the journal is the judge --------------------------
#
# The workers (tests/worker.py) send at a short-window Medium limit (4 per 2 s), enforced by the
# emulator too; this process plays beat, calling the feeder every few tenths of a second. (The
# feed a start or a resume asks a worker for is left out: a worker publishes the messages it
# releases to the default queue, not to this run's own.)

worker_test = pytest.mark.django_db(transaction=True)
# The send workers' module fixtures: one emulator and one pool of limited workers.
emu = send_workers.emu
media_dir = send_workers.media_dir
limited_workers = send_workers.limited_workers
linked = send_workers.linked
short_limits = send_workers.short_limits


_emulators = []


def send_workers_emu():
    return _emulators[-1]


@pytest.fixture
def fed_here(monkeypatch):
    monkeypatch.setattr(running, "_feed_soon", None)


def feed_until(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running.feed()
        if predicate():
            return
        time.sleep(0.3)
    statuses = dict(
        OutboundMessage.objects.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    campaigns = list(Campaign.objects.values_list("status", "stop_reason"))
    answers = [e.status for e in posts(send_workers_emu())]
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {message}; messages: {statuses}, "
        f"campaigns: {campaigns}, answers to sends: {answers}"
    )


def campaign_messages(campaign):
    return OutboundMessage.objects.filter(campaign_recipient__campaign=campaign)


def sent_count(campaign) -> int:
    return campaign_messages(campaign).filter(sent_at__isnull=False).count()


def settled(campaign) -> bool:
    return not campaign_messages(campaign).filter(status__in=running.UNSETTLED_STATUSES).exists()


def posted_numbers(emulator_) -> list[str]:
    return [e.json["to"][0]["phoneNumber"] for e in posts(emulator_) if e.json]


@worker_test
def test_pause_resume_and_cancel_mid_campaign_with_workers_send_none_twice_and_lose_none(
    limited_workers, emu, linked, alice, team, short_limits, fed_here
):
    _emulators.append(emu)
    campaign = started(team, alice, sender(linked), 30)
    feed_until(lambda: sent_count(campaign) >= 8, 60, "8 messages sent")
    running.pause(campaign)
    released = campaign.recipients.filter(state=RecipientState.RELEASED).count()
    feed_until(lambda: settled(campaign), 30, "released messages to be sent")
    time.sleep(1.0)
    running.feed()
    # Paused: what was handed to the outbox was sent, nothing more was released.
    assert campaign.recipients.filter(state=RecipientState.RELEASED).count() == released
    assert released < 30
    running.resume(campaign)
    feed_until(lambda: sent_count(campaign) >= released + 6, 60, "more messages sent")
    running.cancel(campaign)
    feed_until(lambda: settled(campaign), 30, "the last released messages to settle")

    sends = posts(emu)
    assert [e.status for e in sends] == [200] * len(sends), "no 429, no failure"
    posted = posted_numbers(emu)
    assert len(posted) == len(set(posted)), "nobody got the campaign twice"
    rows = list(campaign.recipients.select_related("message"))
    accepted = {r.phone_number for r in rows if r.message and r.message.sent_at}
    assert set(posted) == accepted
    canceled = [
        r
        for r in rows
        if r.state == RecipientState.CANCELED
        or (r.message and r.message.status == MessageStatus.CANCELED)
    ]
    # None lost: every recipient was either sent exactly once or canceled.
    assert len(accepted) + len(canceled) == 30
    assert canceled and accepted
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELED


@worker_test
def test_a_direct_message_overtakes_a_thousand_recipient_campaign(
    limited_workers, emu, linked, alice, team, short_limits, fed_here
):
    _emulators.append(emu)
    number = sender(linked)
    campaign = started(team, alice, number, 1000)
    feed_until(lambda: sent_count(campaign) >= 6, 60, "the campaign to be under way")
    direct = compose.send(
        membership_of(alice, team), sender=number, to="+16505550999", text="Running late"
    )[0]
    feed_until(
        lambda: OutboundMessage.objects.filter(pk=direct.pk, sent_at__isnull=False).exists(),
        30,
        "the direct message to be sent",
    )
    direct.refresh_from_db()
    overtaken_by = (
        campaign_messages(campaign)
        .filter(sent_at__gt=direct.created_at, sent_at__lt=direct.sent_at)
        .count()
    )
    # At most what the feeder keeps waiting (one short window of the user's budget) went
    # first; the campaign's backlog of some 990 recipients did not.
    assert overtaken_by <= SHORT_LIMIT
    assert (direct.sent_at - direct.created_at).total_seconds() < 3 * SHORT_WINDOW + 2
    assert campaign.recipients.filter(state=RecipientState.PENDING).count() > 900
    running.cancel(campaign)
    feed_until(lambda: settled(campaign), 30, "the last released messages to settle")
    assert [e.status for e in posts(emu)] == [200] * len(posts(emu)), "no 429"


def test_quiet_hours_hold_released_messages_in_the_outbox_until_they_end(
    tight, team, alice, sender_number
):
    now = timezone.localtime()
    TeamMessagingSettings.objects.create(
        team=team,
        quiet_hours_enabled=True,
        quiet_start=(now - timedelta(hours=1)).time().replace(microsecond=0),
        quiet_end=(now + timedelta(hours=1)).time().replace(microsecond=0),
        time_zone=str(now.tzinfo),
    )
    campaign = started(team, alice, sender_number, 3)
    assert running.feed() == 3
    held = campaign_messages(campaign)
    assert all(m.next_attempt_at > timezone.now() + timedelta(minutes=55) for m in held)
    assert all(states.claim(m.pk) is None for m in held)


def test_the_limiter_says_how_much_of_a_budget_is_still_used_a_few_seconds_ahead(db, settings):
    from messaging.ringcentral import limits
    from messaging.sending import ratelimit

    clear_shared_limiter()
    now = [1_000_000.0]
    rates = {limits.SEND_GROUP: ratelimit.Rate(4, 10.0)}
    default = ratelimit.get_limiter()
    if isinstance(default, ratelimit.RedisRateLimiter):
        limiter = ratelimit.RedisRateLimiter(default.client, rates, clock=lambda: now[0])
    else:
        limiter = ratelimit.DatabaseRateLimiter(rates, clock=lambda: now[0])
    key = ratelimit.LimitKey("9001/101", limits.SEND_GROUP)
    for at in (0.0, 3.0, 6.0):
        now[0] = 1_000_000.0 + at
        assert limiter.try_acquire([key]) == 0.0
    # At 6 s, with a window of 10.3 s (margin included): all three are in it; 5 s later the
    # first has left it, 8 s later the second too.
    assert limiter.usage(key) == 3
    assert limiter.usage_after(key, 5.0) == 2
    assert limiter.usage_after(key, 8.0) == 1
    assert ratelimit.NullRateLimiter().usage_after(key, 5.0) == 0
    # The limit a key is paced by is the one RingCentral reported, once it has.
    assert limiter.current_limit(key) == 4
    limiter.observe(key, {"X-Rate-Limit-Limit": "40", "X-Rate-Limit-Window": "60"})
    assert limiter.current_limit(key) == 40
    clear_shared_limiter()


def test_an_mms_campaign_stores_its_files_once_and_every_message_shares_them(
    tight, team, alice, sender_number, settings, tmp_path
):
    from tests.media_samples import jpeg

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    photo = SimpleUploadedFile("flyer.jpg", jpeg(camera="Phone X", gps=True), "image/jpeg")
    campaign = started(team, alice, sender_number, 3, attachments=[photo])
    [stored] = campaign.files.all()
    assert stored.original_name == "flyer.jpg" and stored.metadata_removed
    assert running.feed() == 3
    attachments = [m.attachments.get() for m in campaign_messages(campaign)]
    assert {a.file.name for a in attachments} == {stored.file.name}
    assert {a.sha256 for a in attachments} == {stored.sha256}
    # A number that cannot send files is refused for an MMS campaign.
    text_only = make_number(sender_number.connection, "+16505550109", mms=False)
    errors = refused(
        team,
        alice,
        sender_number,
        upload=csv_upload([["P", number(1), "M"]]),
        sender_ids=[str(text_only.pk)],
        attachments=[SimpleUploadedFile("flyer.jpg", jpeg(), "image/jpeg")],
    )
    assert "not enabled for MMS" in errors["senders"][0]
