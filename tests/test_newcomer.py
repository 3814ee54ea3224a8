"""What a newcomer tripped over, one fix each: files that carried into other messages, pages
that stopped following their messages, emails with wrong links and escaped text, "send again"
without a word about known problems, a few small things, demo mode that was DEBUG, and the way
to a staff account. The browser side of these is in tests/e2e/test_journey_newcomer.py."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging.compose.drafts import store_bytes
from messaging.core.logging import redact
from messaging.core.mail import ConsoleEmailBackend
from messaging.models import (
    Attachment,
    ConnectionShare,
    DraftAttachment,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
    Role,
    Team,
)
from messaging.outbox import states
from messaging.outbox.events import record_event
from messaging.outbox.paging import encode_cursor
from messaging.teams import actions
from tests.factories import make_connection, make_message, make_number, message_in
from tests.test_compose import _fast_passwords, _private_media, sent  # noqa: F401 - fixtures

COMPOSE = "/messages/compose/"


def page_form(response) -> str:
    """The compose page's own key, as its form and script carry it."""
    return str(response.context["form"].form_key)


def upload_on(client, form_key, name="note.txt", data=b"a note"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        f"{COMPOSE}upload/?form={form_key}",
        {"file": SimpleUploadedFile(name, data, content_type="text/plain")},
    )


def shown_drafts(response) -> list[str]:
    return [info["name"] for info in response.context["drafts_json"]]


@pytest.fixture
def number(team, bob):
    return make_number(make_connection(team, bob, shared=True), "+16505550100")


@pytest.fixture
def text_only(number):
    return make_number(number.connection, "+16505550101", mms=False)


def sent_message_with_files(number, user, names):
    message = make_message(number, user, text="Plans")
    for position, name in enumerate(names):
        Attachment.objects.create(
            message=message,
            file=store_bytes(number.connection.team_id, b"%PDF-1.4 " + name.encode(), "x/y"),
            original_name=name,
            content_type="application/pdf",
            size=9 + len(name),
            sha256="0" * 64,
            position=position,
        )
    return message


# --- 1. Attachments never carry into another message ----------------------------------------


def test_a_file_of_a_refused_compose_stays_on_its_page_and_never_on_a_new_one(
    bob_client, number, text_only
):
    first = bob_client.get(COMPOSE)
    form_key = page_form(first)
    assert upload_on(bob_client, form_key).status_code == 201
    draft = DraftAttachment.objects.get()
    # A file with a text-only number: refused, and the page keeps the file.
    refused = bob_client.post(
        f"{COMPOSE}?form={form_key}",
        {"sender": str(text_only.pk), "to": "+16505550111", "text": "Hi", "uploads": [draft.key]},
    )
    assert refused.status_code == 400
    assert shown_drafts(refused) == ["note.txt"]
    # A compose page opened afterwards starts empty.
    fresh = bob_client.get(COMPOSE)
    assert shown_drafts(fresh) == []
    assert page_form(fresh) != form_key
    # And the old page's file cannot be sent from the new page.
    stolen = bob_client.post(
        f"{COMPOSE}?form={page_form(fresh)}",
        {"sender": str(number.pk), "to": "+16505550111", "text": "Hi", "uploads": [draft.key]},
    )
    assert stolen.status_code == 400
    assert not OutboundMessage.objects.exists()


def test_send_again_of_a_text_message_attaches_nothing_whatever_waits_elsewhere(
    bob, bob_client, number
):
    assert upload_on(bob_client, uuid.uuid4()).status_code == 201  # left on another page
    sms = make_message(number, bob, text="Running late")
    response = bob_client.get(f"{COMPOSE}?again={sms.pk}")
    assert response.status_code == 200
    assert shown_drafts(response) == []
    assert response.context["form"].initial["text"] == "Running late"


def test_send_again_of_an_mms_shows_its_files_each_once_however_often_it_is_opened(
    bob, bob_client, number
):
    mms = sent_message_with_files(number, bob, ["a.pdf", "b.pdf", "c.pdf"])
    assert upload_on(bob_client, uuid.uuid4(), "left.txt").status_code == 201
    for _ in range(3):
        response = bob_client.get(f"{COMPOSE}?again={mms.pk}")
        assert shown_drafts(response) == ["a.pdf", "b.pdf", "c.pdf"]
    # Drafts that only name a sent message's files never fill the waiting room.
    assert compose_waiting_room(bob, number.connection.team) == 1


def compose_waiting_room(user, team):
    from messaging.compose.drafts import waiting_uploads

    return waiting_uploads(user, team)


def test_an_upload_from_a_page_without_its_key_is_refused_with_a_reason(bob_client, number):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = bob_client.post(f"{COMPOSE}upload/", {"file": SimpleUploadedFile("a.txt", b"hello")})
    assert response.status_code == 400
    assert "Reload it" in response.json()["error"]
    assert not DraftAttachment.objects.exists()


# --- 2. A message page follows its message ------------------------------------------------------


def live(client, message, version=""):
    return client.get(reverse("message_live", args=[message.pk]), {"version": version})


def test_the_live_part_of_a_message_page_changes_whole_when_the_message_does(
    alice, bob_client, number
):
    message = make_message(number, alice, to=("+16505550199",))
    page = bob_client.get(reverse("message_detail", args=[message.pk]))
    version = page.context["version"]
    html = page.content.decode()
    assert "Cancel sending" in html and "Waiting for a worker" in html
    assert "Reload the page" not in html

    assert live(bob_client, message, version).json() == {"changed": False}

    claimed, attempt = states.claim(message.pk)
    states.record_success(claimed, attempt, states.Accepted(rc_message_id="4242"))
    states.apply_delivery_report(
        claimed, [states.DeliveryReport("+16505550199", "Delivered")], at=timezone.now()
    )
    answer = live(bob_client, message, version).json()
    assert answer["changed"] and answer["final"] and answer["label"] == "Delivered"
    assert answer["version"] != version
    part = answer["html"]
    assert "Cancel sending" not in part and "Waiting for a worker" not in part
    assert "The carrier reported that the phone received it." in part  # progress
    assert ">Delivered</span>" in part  # the recipient's row, not only the badge
    assert "Delivered to +1 650-555-0199." in part  # the timeline
    assert live(bob_client, message, answer["version"]).json() == {"changed": False}


def test_the_live_part_is_the_current_teams_only(alice, charlie_client, number):
    message = make_message(number, alice)
    assert live(charlie_client, message).status_code == 404


def test_the_timeline_shows_each_number_once_as_people_read_it(alice, bob_client, number):
    message = message_in(number, alice, MessageStatus.SENT, to=("+16505550199",))
    recipient = message.recipients.get()
    record_event(message.pk, "recipient_status", "Delivered to +16505550199.", recipient.pk)
    html = bob_client.get(reverse("message_detail", args=[message.pk])).content.decode()
    assert "Delivered to +1 650-555-0199." in html
    assert "+16505550199" not in html


# --- 3. The outbox shows new messages as they come -------------------------------------------


def test_the_newest_page_hears_of_messages_written_since_it_was_shown(
    alice, bob, bob_client, number
):
    first = make_message(number, alice, text="First")
    page = bob_client.get("/messages/")
    top = page.context["top"]
    assert top == encode_cursor(first)
    later = make_message(number, bob, text="Written by a teammate")
    other_team_number = make_number(
        make_connection(Team.objects.get(memberships__user=bob, is_personal=True), bob),
        "+16505550177",
    )
    make_message(other_team_number, bob, text="Not Acme's")

    answer = bob_client.get(
        "/messages/live/", {"newest": "1", "top": top, "ids": str(first.pk)}
    ).json()
    assert answer["added"] == 1 and "Written by a teammate" in answer["rows"]
    assert "Not Acme" not in answer["rows"] and "First" not in answer["rows"]
    assert answer["top"] == encode_cursor(later)
    assert answer["counts"]["all"] == "2"
    assert [item["id"] for item in answer["messages"]] == [first.pk]


def test_new_rows_and_folder_counts_follow_the_folder_and_search_shown(alice, bob_client, number):
    make_message(number, alice, text="Dentist reminder")
    page = bob_client.get("/messages/", {"q": "dentist"})
    assert page.context["all_count"] == 1
    assert page.context["live_url"].startswith("/messages/live/?q=dentist")
    make_message(number, alice, text="Lunch plans")
    make_message(number, alice, text="Second dentist reminder")
    answer = bob_client.get(
        "/messages/live/", {"newest": "1", "q": "dentist", "top": page.context["top"]}
    ).json()
    assert answer["added"] == 1 and "Second dentist reminder" in answer["rows"]
    assert answer["counts"]["all"] == "2"


def test_a_bad_cursor_is_a_400_not_a_500(bob_client, number):
    response = bob_client.get("/messages/live/", {"newest": "1", "top": "not-a-cursor"})
    assert response.status_code == 400


# --- 4. Emails are right ------------------------------------------------------------------------


@pytest.fixture
def apostrophe_team(alice):
    team = actions.create_team(alice, "Pat's team")
    return team


def fail(message):
    claimed, attempt = states.claim(message.pk)
    states.record_failure(
        claimed,
        attempt,
        states.Failure(reason="Refused.", fix="Fix it.", code="SMS-RC-413"),
    )


def test_the_failure_email_links_to_the_address_the_message_was_written_at(
    alice,
    apostrophe_team,
    settings,
    sent,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    settings.PUBLIC_BASE_URL = ""
    number = make_number(make_connection(apostrophe_team, alice))
    client = Client(HTTP_HOST="localhost:8731")
    client.force_login(alice)
    session = client.session
    session["current_team_id"] = apostrophe_team.pk
    session.save()
    page = client.get(COMPOSE)
    response = client.post(
        f"{COMPOSE}?form={page_form(page)}",
        {"sender": str(number.pk), "to": "+16505550111", "text": "Pat's appointment"},
    )
    assert response.status_code == 302
    message = OutboundMessage.objects.get()
    assert message.origin == "http://localhost:8731"
    with django_capture_on_commit_callbacks(execute=True):
        fail(message)
    (email,) = mail.outbox
    assert f"http://localhost:8731/messages/{message.pk}/" in email.body
    assert "127.0.0.1:8000" not in email.body
    assert "Pat's team" in email.body and "Pat's appointment" in email.body
    assert "&#x27;" not in email.body
    assert "SMS-RC-413" in email.body

    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    mail.outbox.clear()
    second = make_message(number, alice)
    with django_capture_on_commit_callbacks(execute=True):
        fail(second)
    assert f"https://sms.example.com/messages/{second.pk}/" in mail.outbox[0].body


def test_log_redaction_keeps_error_codes_and_still_hides_authorization_codes():
    assert redact("RingCentral's code: SMS-RC-413") == "RingCentral's code: SMS-RC-413"
    assert "abc123" not in redact("GET /ringcentral/callback/?code=abc123&state=x")
    assert "zzz" not in redact("grant_type=authorization_code&code=zzz")


def test_emails_printed_by_a_worker_reach_the_terminal_as_written(monkeypatch):
    # A Celery worker replaces sys.stdout with a logger (which redacts); the email must not go
    # through it.
    terminal, logger_stream = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "__stdout__", terminal)
    monkeypatch.setattr(sys, "stdout", logger_stream)
    message = mail.EmailMessage("Not delivered", "+16505550197: SMS-CAR-411", to=["a@b.example"])
    ConsoleEmailBackend().send_messages([message])
    assert "+16505550197: SMS-CAR-411" in terminal.getvalue()
    assert logger_stream.getvalue() == ""


def test_sign_up_emails_speak_of_the_product_and_the_address(client, db):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "pat@example.com",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
        },
        HTTP_HOST="127.0.0.1:8731",
    )
    assert response.status_code == 302
    (email,) = mail.outbox
    assert "mmsportal" in email.body and "pat@example.com" in email.body
    assert "Hello from" not in email.body and "user pat" not in email.body
    assert "127.0.0.1:8731!" not in email.body
    assert email.subject == "[mmsportal] Confirm your email address"


# --- 5. Send again warns about known problems ---------------------------------------------------


def undelivered(number, user, to, code, when):
    message = message_in(number, user, MessageStatus.DELIVERY_FAILED, to=(to,))
    message.recipients.update(
        status=RecipientStatus.DELIVERY_FAILED, error_code=code, updated_at=when
    )
    return message


def test_send_again_flags_an_opted_out_and_a_landline_recipient(alice, bob_client, number):
    week_ago = timezone.now() - timedelta(days=7)
    undelivered(number, alice, "+16505550198", "SMS-RC-413", week_ago)
    undelivered(number, alice, "+16505550197", "SMS-CAR-411", week_ago)
    group = make_message(number, alice, to=("+16505550198", "+16505550197", "+16505550111"))
    html = bob_client.get(f"{COMPOSE}?again={group.pk}").content.decode()
    assert "+1 650-555-0198 opted out of texts from +1 650-555-0100" in html
    assert "+1 650-555-0197 cannot receive texts: it is a landline" in html
    assert "+1 650-555-0111" in html and "+1 650-555-0111 opted" not in html
    assert not OutboundMessage.objects.filter(created_at__gt=group.created_at).exists()


def test_a_later_delivery_clears_an_old_warning(alice, bob_client, number):
    undelivered(number, alice, "+16505550198", "SMS-RC-413", timezone.now() - timedelta(days=7))
    again = message_in(number, alice, MessageStatus.DELIVERED, to=("+16505550198",))
    again.recipients.update(status=RecipientStatus.DELIVERED)
    html = bob_client.get(f"{COMPOSE}?again={again.pk}").content.decode()
    assert "opted out" not in html


# --- 6. Small things ----------------------------------------------------------------------------


def test_compose_preselects_the_only_number_or_the_one_last_sent_from(bob, bob_client, number):
    assert bob_client.get(COMPOSE).context["form"].initial["sender"] == str(number.pk)
    other = make_number(number.connection, "+16505550102")
    assert bob_client.get(COMPOSE).context["form"].initial["sender"] == ""
    make_message(other, bob)
    assert bob_client.get(COMPOSE).context["form"].initial["sender"] == str(other.pk)


def test_the_ringcentral_page_reads_like_words(bob_client, number):
    number.usage_type = "DirectNumber"
    number.save()
    number.connection.numbers_synced_at = timezone.now()
    number.connection.save()
    html = bob_client.get(reverse("ringcentral")).content.decode()
    assert "Direct number" in html and "DirectNumber" not in html
    assert "just now" in html and "0 minutes" not in html
    assert '<td class="rc-number">+1 650-555-0100</td>' in html


def test_the_console_names_connections_and_people_as_the_app_does(
    admin_client, alice, team, number
):
    from messaging.models import Membership

    index = admin_client.get("/admin/").content.decode()
    assert "RingCentral connections" in index
    members = admin_client.get("/admin/messaging/membership/").content.decode()
    assert "alice@example.com" in members
    # The same number under two links is one choice in the sender filter.
    make_number(make_connection(team, alice, extension_id="202"), "+16505550100")
    make_message(number, alice)
    changelist = admin_client.get("/admin/messaging/outboundmessage/").content.decode()
    assert changelist.count("?from=%2B16505550100") == 1
    assert Membership.objects.exists()


def test_a_favicon_answers_where_browsers_look_for_it(client, admin_client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in admin_client.get("/admin/").content.decode()


def test_the_demo_numbers_are_on_the_dashboard_in_demo_mode(bob_client, settings):
    settings.DEMO_MODE = True
    html = bob_client.get("/dashboard/").content.decode()
    assert 'id="demo-numbers"' in html and "+1 650-555-0197" in html


# --- 6. A link used in another team without signing in again --------------------------------


def test_a_member_brings_their_link_into_a_new_team_and_its_senders_send_from_it(
    bob,
    bob_client,
    number,
    charlie,
    sent,  # noqa: F811
):
    new_team = actions.create_team(bob, "Front desk")
    from messaging.models import Membership

    Membership.objects.create(team=new_team, user=charlie, role=Role.SENDER)
    bob_client.post("/teams/switch/", {"team": new_team.slug})
    page = bob_client.get(reverse("ringcentral")).content.decode()
    assert "Use a link you already have" in page and "Use in Front desk" in page

    response = bob_client.post(
        reverse("ringcentral_bring", args=[number.connection.pk]), {"team": new_team.slug}
    )
    assert response.status_code == 302
    assert ConnectionShare.objects.filter(connection=number.connection, team=new_team).exists()

    charlie_client = Client()
    charlie_client.force_login(charlie)
    session = charlie_client.session
    session["current_team_id"] = new_team.pk
    session.save()
    compose_page = charlie_client.get(COMPOSE)
    assert str(number.pk) in [
        c[0] for c in compose_page.context["form"].fields["sender"].widget.choices
    ]
    sent_response = charlie_client.post(
        f"{COMPOSE}?form={page_form(compose_page)}",
        {"sender": str(number.pk), "to": "+16505550111", "text": "From the front desk"},
    )
    assert sent_response.status_code == 302
    message = OutboundMessage.objects.get(text="From the front desk")
    assert message.team == new_team and message.connection == number.connection


def test_only_the_person_who_linked_may_bring_a_link_into_another_team(
    alice, alice_client, bob, number, team
):
    alices_team = Team.objects.get(memberships__user=alice, is_personal=True)
    response = alice_client.post(
        reverse("ringcentral_bring", args=[number.connection.pk]), {"team": alices_team.slug}
    )
    assert response.status_code == 403
    assert not ConnectionShare.objects.exists()


def test_a_link_cannot_be_brought_into_a_team_its_owner_is_not_in(bob_client, number, charlie):
    charlies_team = Team.objects.get(memberships__user=charlie, is_personal=True)
    response = bob_client.post(
        reverse("ringcentral_bring", args=[number.connection.pk]), {"team": charlies_team.slug}
    )
    assert response.status_code == 404
    assert not ConnectionShare.objects.exists()


# --- 7. Demo mode is not DEBUG --------------------------------------------------------------------


def settings_of(env: dict) -> dict:
    code = (
        "import json\nfrom django.conf import settings\n"
        "print(json.dumps({'DEBUG': settings.DEBUG, 'DEMO_MODE': settings.DEMO_MODE}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DEMO_MODE")}
    base["DJANGO_SETTINGS_MODULE"] = "mmsportal.settings"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {"returncode": result.returncode, "out": result.stdout, "err": result.stderr}


def test_demo_mode_is_not_debug_and_debug_is_off_unless_asked_for():
    demo = settings_of({"DEMO_MODE": "true", "RINGCENTRAL_CLIENT_ID": ""})
    assert demo["returncode"] == 0, demo["err"]
    assert '"DEBUG": false' in demo["out"] and '"DEMO_MODE": true' in demo["out"]
    nothing = settings_of({"RINGCENTRAL_CLIENT_ID": ""})
    assert nothing["returncode"] != 0
    assert "DEMO_MODE=true" in nothing["err"] and "RINGCENTRAL_CLIENT_ID" in nothing["err"]


def start_demo_portal(tmp_path):
    """`make run` as a newcomer gets it: demo mode, nothing else set."""
    from tests.test_runportal import free_port

    web, emulator = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "RINGCENTRAL_CLIENT_ID", "DEBUG")
        and not k.startswith("DJANGO_")
    }
    env.update(DATA_DIR=str(tmp_path), DEMO_EMULATOR_PORT=str(emulator), DEMO_MODE="auto")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=180)
    portal = subprocess.Popen(
        [*manage, "runportal", "--port", str(web)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(portal.stdout), daemon=True).start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any("is running at" in line for line in out):
        assert portal.poll() is None, "".join(out) + portal.stderr.read()
        time.sleep(0.2)
    return portal, out, f"http://127.0.0.1:{web}"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_demo_shows_its_own_error_pages_and_stops_without_a_traceback(tmp_path, stop):
    portal, out, base = start_demo_portal(tmp_path)
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=10)  # noqa: S310 - loopback
        assert missing.value.code == 404
        page = missing.value.read().decode()
        assert "There is nothing here" in page and "Using the URLconf" not in page
    finally:
        portal.send_signal(stop)
        err = portal.stderr.read()
        portal.wait(timeout=60)
    assert portal.returncode == 0, err
    assert "Traceback" not in "".join(out) + err
    assert any("Stopping" in line for line in out)


# --- 8. Making a staff account is one documented path -----------------------------------------


def test_createsuperuser_makes_an_account_that_can_sign_in_and_is_asked_for_two_factor(
    db, monkeypatch, client
):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long passphrase 42")
    out = io.StringIO()
    call_command(
        "createsuperuser",
        interactive=False,
        username="ops",
        email="ops@example.com",
        stdout=out,
    )
    user = get_user_model().objects.get(email="ops@example.com")
    assert EmailAddress.objects.get(user=user).verified
    assert "set up an authenticator app" in out.getvalue()
    signed_in = client.post(
        reverse("account_login"),
        {"login": "ops@example.com", "password": "a long passphrase 42"},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] != reverse("account_login")
    admin = client.get("/admin/", follow=True)
    assert any(reverse("mfa_activate_totp") in url for url, _ in admin.redirect_chain)
