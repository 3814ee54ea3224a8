"""The Consent page (opted-out numbers, a number opted out or in by hand by a team admin), the
settings page (quiet hours, the opt-out line), quiet hours at compose, the opt-out line on a
first message, and the console's read-only view of records with their history."""

import re
import uuid
from datetime import datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.compose import submission
from messaging.consent import checks, ledger, quiet_hours
from messaging.consent.team_settings import opt_out_suffix
from messaging.models import (
    ConsentChange,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    OutboundMessage,
    TeamMessagingSettings,
)
from messaging.ringcentral import limits
from messaging.teams import actions as teams
from tests.factories import make_connection, make_number

PAT = "+16505550150"
SAM = "+16505550151"
OUT, IN = ConsentState.OPTED_OUT, ConsentState.OPTED_IN


@pytest.fixture
def number(team, alice):
    return make_number(make_connection(team, alice, shared=True), "+16505550100")


@pytest.fixture
def sent(monkeypatch):
    """What the outbox hands to Celery after commit, sending nothing."""
    from messaging.sending import tasks

    calls = []

    class Recorder:
        @staticmethod
        def delay(message_id):
            calls.append(message_id)

    monkeypatch.setattr(tasks, "send_message", Recorder, raising=False)
    return calls


def errors(response) -> list[str]:
    html = response.content.decode()
    found = re.findall(r'<ul class="field-errors errorlist"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(m) for block in found for m in re.findall(r"<li>(.*?)</li>", block, re.S)]


# --- The Consent page ---------------------------------------------------------------------------


def test_an_admin_opts_a_number_out_by_hand_and_back_in(dana_client, dana, team, number):
    response = dana_client.post(
        "/consent/", {"number": "(650) 555-0150", "action": "opt_out", "note": "Asked by phone"}
    )
    assert response.status_code == 302
    record = ConsentRecord.objects.get(team=team, contact_number=PAT)
    assert (record.state, record.source, record.changed_by, record.from_number) == (
        OUT,
        ConsentSource.MANUAL,
        dana,
        "*",
    )
    page = dana_client.get("/consent/").content.decode()
    assert "+1 650-555-0150" in page and "Asked by phone" in page
    assert PAT in checks.opted_out(team.pk, [PAT], from_number=number.phone_number)

    dana_client.post("/consent/", {"number": PAT, "action": "opt_in", "note": "Signed up again"})
    assert checks.opted_out(team.pk, [PAT], from_number=number.phone_number) == {}
    assert "Nobody has opted out." in dana_client.get("/consent/").content.decode()
    assert ConsentChange.objects.filter(record=record).count() == 2


def test_a_bad_number_is_a_field_error_not_a_server_error(dana_client):
    for typed in ("", "not a number", "+1 650 555", "\x00", "9" * 60):
        response = dana_client.post("/consent/", {"number": typed, "action": "opt_out"})
        assert response.status_code == 400, typed
        assert errors(response), typed
    response = dana_client.post("/consent/", {"number": PAT, "action": "maybe"})
    assert response.status_code == 400
    assert not ConsentRecord.objects.exists()


def test_senders_and_viewers_see_the_list_but_only_admins_change_it(
    bob_client, victor_client, team
):
    ledger.record(team, PAT, OUT, ConsentSource.KEYWORD, from_number="+16505550100")
    for client in (bob_client, victor_client):
        page = client.get("/consent/")
        assert page.status_code == 200
        assert "+1 650-555-0150" in page.content.decode()
        assert 'id="manual-consent-form"' not in page.content.decode()
        assert client.post("/consent/", {"number": SAM, "action": "opt_out"}).status_code == 403
        assert client.get("/consent/settings/").status_code == 403
    assert not ConsentRecord.objects.filter(contact_number=SAM).exists()


def test_another_team_sees_none_of_acmes_opt_outs(charlie_client, charlie, team):
    ledger.record(team, PAT, OUT, ConsentSource.MANUAL)
    teams.ensure_personal_team(charlie)
    page = charlie_client.get("/consent/").content.decode()
    assert "650-555-0150" not in page
    assert not ConsentRecord.objects.exclude(team=team).exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/consent/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_search_finds_a_number_by_its_digits(dana_client, team):
    ledger.record(team, PAT, OUT, ConsentSource.MANUAL)
    ledger.record(team, SAM, OUT, ConsentSource.MANUAL)
    page = dana_client.get("/consent/", {"q": "555-0151"}).content.decode()
    assert "+1 650-555-0151" in page and "+1 650-555-0150" not in page


# --- Settings: quiet hours and the opt-out line ---------------------------------------------------


def settings_form(**overrides):
    data = {
        "quiet_hours_enabled": "on",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "time_zone": "America/Chicago",
        "opt_out_line_enabled": "on",
        "opt_out_line": "Reply STOP to opt out",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_an_admin_saves_the_settings_and_bad_values_are_field_errors(dana_client, team):
    assert dana_client.post("/consent/settings/", settings_form()).status_code == 302
    saved = TeamMessagingSettings.objects.get(team=team)
    assert (saved.quiet_start, saved.time_zone, saved.opt_out_line_enabled) == (
        time(21, 0),
        "America/Chicago",
        True,
    )
    # Saved again: the same row changes.
    assert dana_client.post("/consent/settings/", settings_form(quiet_hours_enabled=None))
    assert TeamMessagingSettings.objects.get(team=team).quiet_hours_enabled is False
    for bad in (
        {"time_zone": "Mars/Olympus"},
        {"quiet_start": "25:00"},
        {"quiet_end": "21:00"},
        {"opt_out_line": "Bye"},
        {"opt_out_line": "Reply STOP " + "x" * 100},
    ):
        response = dana_client.post("/consent/settings/", settings_form(**bad))
        assert response.status_code == 400, bad
        assert errors(response), bad


def test_quiet_hours_run_across_midnight_in_the_team_zone(team):
    TeamMessagingSettings.objects.create(
        team=team, quiet_hours_enabled=True, time_zone="America/Chicago"
    )
    chicago = ZoneInfo("America/Chicago")
    late = datetime(2026, 12, 7, 22, 30, tzinfo=chicago)
    early = datetime(2026, 12, 8, 7, 59, tzinfo=chicago)
    noon = datetime(2026, 12, 8, 12, 0, tzinfo=chicago)

    assert quiet_hours.inside(team, PAT, late) and quiet_hours.inside(team, PAT, early)
    assert not quiet_hours.inside(team, PAT, noon)
    assert quiet_hours.next_allowed(team, PAT, late) == datetime(2026, 12, 8, 8, 0, tzinfo=chicago)
    assert quiet_hours.next_allowed(team, PAT, noon) == noon
    window = quiet_hours.window_for(team, PAT)
    assert window.describe() == "21:00–08:00 America/Chicago"


def test_quiet_hours_follow_the_contacts_own_time_zone_when_known(team):
    from messaging.contacts import book

    TeamMessagingSettings.objects.create(
        team=team, quiet_hours_enabled=True, time_zone="America/Chicago"
    )
    book.save(
        team,
        None,
        fields={"name": "Pat Doe", "time_zone": "America/Los_Angeles"},
        numbers=[(PAT, "mobile")],
        tag_names=[],
    )
    # 22:30 in Chicago is 20:30 in Los Angeles: quiet for the team, not yet for Pat.
    moment = datetime(2026, 12, 7, 22, 30, tzinfo=ZoneInfo("America/Chicago"))

    assert not quiet_hours.inside(team, PAT, moment)
    assert quiet_hours.inside(team, "+16505550199", moment)
    assert quiet_hours.window_for(team, PAT).describe() == "21:00–08:00 America/Los_Angeles"
    assert quiet_hours.warning(team, [PAT], moment) == ""


def test_a_team_without_quiet_hours_never_waits(team):
    assert quiet_hours.window_for(team, PAT) is None
    assert quiet_hours.warning(team, [PAT]) == ""


def test_a_message_written_during_quiet_hours_goes_with_a_warning(
    dana_client, dana, team, number, sent, django_capture_on_commit_callbacks
):
    now = timezone.now().astimezone(ZoneInfo("UTC"))
    TeamMessagingSettings.objects.create(
        team=team,
        quiet_hours_enabled=True,
        time_zone="UTC",
        quiet_start=(now - timedelta(hours=1)).time().replace(microsecond=0),
        quiet_end=(now + timedelta(hours=1)).time().replace(microsecond=0),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = dana_client.post(
            "/messages/compose/",
            {
                "sender": str(number.pk),
                "to": PAT,
                "text": "Your order is ready",
                "mode": "separate",
            },
            follow=True,
        )
    assert response.status_code == 200
    assert OutboundMessage.objects.count() == 1 and len(sent) == 1
    assert "Sent during the team's quiet hours" in unescape(response.content.decode())


def test_the_opt_out_line_goes_on_the_first_message_to_a_contact_only(
    dana, team, number, sent, django_capture_on_commit_callbacks
):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    membership = team.memberships.get(user=dana)

    def send(to):
        outgoing = submission.prepare(membership, sender=number.pk, to=to, text="Hello")
        with django_capture_on_commit_callbacks(execute=True):
            return submission.submit(outgoing)

    [first] = send(PAT)
    assert first.text == "Hello\n\nReply STOP to opt out"
    [again] = send(PAT)
    assert again.text == "Hello"
    pat, sam = send(f"{PAT}, {SAM}")
    assert (pat.text, sam.text) == ("Hello", "Hello\n\nReply STOP to opt out")


def test_send_again_starts_from_the_text_without_the_line_and_a_typed_line_is_not_doubled(
    dana, team, number, sent, django_capture_on_commit_callbacks
):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    membership = team.memberships.get(user=dana)
    outgoing = submission.prepare(membership, sender=number.pk, to=PAT, text="Hello")
    with django_capture_on_commit_callbacks(execute=True):
        [first] = submission.submit(outgoing)

    assert submission.prefill_from(first, dana, uuid.uuid4())["text"] == "Hello"
    typed = "Hello\n\nReply STOP to opt out"
    outgoing = submission.prepare(membership, sender=number.pk, to=SAM, text=typed)
    assert outgoing.text_for([SAM]) == typed


def test_the_opt_out_line_counts_towards_the_length(dana, team, number):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    membership = team.memberships.get(user=dana)
    text = "x" * (limits.MAX_TEXT_UNITS - 5)
    with pytest.raises(submission.ComposeInvalid) as refused:
        submission.prepare(membership, sender=number.pk, to=PAT, text=text)
    assert "opt-out line" in " ".join(refused.value.errors["text"])


def test_the_compose_counter_is_given_the_line(dana_client, team, number):
    TeamMessagingSettings.objects.create(team=team, opt_out_line_enabled=True)
    assert opt_out_suffix(team) == "\n\nReply STOP to opt out"
    page = dana_client.get("/messages/compose/").content.decode()
    assert '"optOutLine": "\\n\\nReply STOP to opt out"' in page


# --- The console ----------------------------------------------------------------------------------


def test_the_console_shows_records_with_their_history_read_only(admin_client, team, alice):
    ledger.record(team, PAT, OUT, ConsentSource.KEYWORD, from_number="+16505550100",
                  note="Replied STOP", at=timezone.now() - timedelta(days=1))  # fmt: skip
    record, _ = ledger.record(team, PAT, IN, ConsentSource.MANUAL, from_number="+16505550100",
                              by=alice, note="Called us")  # fmt: skip

    listing = admin_client.get(reverse("admin:messaging_consentrecord_changelist"))
    assert listing.status_code == 200 and "+1 650-555-0150" in listing.content.decode()
    page = admin_client.get(reverse("admin:messaging_consentrecord_change", args=[record.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Called us" in html and "Replied STOP" in html and "alice@example.com" in html
    assert admin_client.get(reverse("admin:messaging_consentrecord_add")).status_code == 403
    change = reverse("admin:messaging_consentrecord_change", args=[record.pk])
    admin_client.post(change, {"state": "opted_out"})
    record.refresh_from_db()
    assert record.state == IN
    assert (
        admin_client.get(reverse("admin:messaging_teammessagingsettings_changelist")).status_code
        == 200
    )
